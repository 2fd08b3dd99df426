"""Run `request --isvc`: one request to an InferenceService traced in full, or `--count N` summarised (percentiles
per hop, errors by hop, the canary split). The same TraceResult / RunSummary, hop table and JSON keys as the Seldon
path; the hops are the KServe path's own (`hops.plan`).

Each request carries `x-request-id` (the gateway logs it; the transformer forwards it; the model server logs it as
`requestId`), a W3C `traceparent`, and `x-b3-traceid`/`x-b3-spanid` (Knative's request-log template prints
`X-B3-Traceid`, so queue-proxy's line of the request can be found). Logs are scanned once after the run, the path is
rebuilt once, and every exchange is recorded into the Snapshot for the catalog, as for Seldon.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_trace.analysis.objectives import DEFAULT_SPLIT_ALPHA, DEFAULT_SPLIT_TOLERANCE
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.findings import Report
from mlops_trace.snapshot.snapshot import LogSource, Snapshot
from mlops_trace.trace import payload
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.diagnose import diagnose, explained, record_display, record_of, sent_headers
from mlops_trace.trace.hop_tally import HopTally
from mlops_trace.trace.ids import IdSource, RequestIds
from mlops_trace.trace.kserve import canary, logs
from mlops_trace.trace.kserve import metrics as server_metrics
from mlops_trace.trace.kserve.attribution import attribute, model_time
from mlops_trace.trace.kserve.body import v1_body, v2_body
from mlops_trace.trace.kserve.explain import UNREACHABLE, explain
from mlops_trace.trace.kserve.path import KPath, KRequest, unknown_path
from mlops_trace.trace.kserve.reconstruct import reconstruct
from mlops_trace.trace.kserve.target import Isvc, build_isvc_target, default_api, read_isvc
from mlops_trace.trace.metrics import DurationTotals
from mlops_trace.trace.record import Exchange, ModelTime, Protocol, RunSummary, TraceResult
from mlops_trace.trace.rest import TlsOptions, make_async_client, make_client, send_async
from mlops_trace.trace.send_one import send_one
from mlops_trace.trace.sources import ClusterSource, open_source
from mlops_trace.trace.target import Target, request_headers


@dataclass(frozen=True)
class KServeRun:
    """What `request --isvc` was asked to do."""

    url: str
    isvc: str
    namespace: str | None = None
    api: str | None = None  # v1 / v2; None: the InferenceService's protocolVersion, else v1
    protocol: Protocol = Protocol.REST
    model: str | None = None
    host: str | None = None
    headers: tuple[str, ...] = ()
    data: Path | None = None
    example: Path | None = None  # the reference stack's V1 example request
    http2: bool = False
    timeout: float = 10.0
    tls: TlsOptions = field(default_factory=TlsOptions)
    count: int = 0
    concurrency: int = 1
    rate: float | None = None
    split_alpha: float = DEFAULT_SPLIT_ALPHA
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    log_wait_s: float = 3.0
    source: ClusterSource = field(default_factory=ClusterSource)
    notes: tuple[str, ...] = ()
    metrics_url: str | None = None  # the predictor's /metrics (request_predict_seconds)


@dataclass
class _Ctx:
    run: KServeRun
    isvc: Isvc
    target: Target
    body: bytes
    document: dict[str, Any]
    ids: IdSource = field(default_factory=IdSource)
    snap: Snapshot | None = None
    sources: list[LogSource] = field(default_factory=list)
    offsets: dict[Path, int] = field(default_factory=dict)
    traces: dict[str, str] = field(default_factory=dict)  # trace id → request id
    notes: list[str] = field(default_factory=list)
    sent: int = 0
    metrics_before: DurationTotals | None = None
    metric_model: ModelTime | None = None


def _metadata(run: KServeRun, target: Target) -> dict[str, Any] | None:
    """The model's V2 metadata through the gateway, or None."""
    import httpx

    headers = {"host": target.host_header} if target.host_header else {}
    try:
        with make_client(http2=run.http2, tls=run.tls, timeout=run.timeout) as client:
            response = client.get(f"{target.base_url}{target.prefix}/v2/models/{target.name}", headers=headers)
    except httpx.ConnectError as exc:
        raise ClusterError(f"cannot connect to {target.base_url}: {exc}") from exc
    except httpx.HTTPError:
        return None
    try:
        document = response.json() if response.status_code == 200 else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _context(run: KServeRun, snap: Snapshot | None) -> _Ctx:
    isvc = read_isvc(snap, run.isvc, run.namespace)
    api = run.api or ("v2" if run.protocol is Protocol.GRPC else default_api(isvc))
    target = build_isvc_target(
        run.url, isvc, api=api, protocol=run.protocol, model=run.model, host=run.host, extra_headers=run.headers
    )
    notes = list(run.notes)
    if isvc.url_where.startswith("no .status.url"):
        notes.append(f"{isvc.describe()} {isvc.url_where}: {isvc.host}")
    if isvc.obj is None:
        notes.append(f"InferenceService {run.isvc} not in the cluster source: the path's objects are unknown")
    if api == "v1":
        document = v1_body(run.data, run.example)
    else:
        metadata = _metadata(run, target) if run.data is None and run.protocol is Protocol.REST else None
        document = v2_body(run.data, metadata, run.example, notes)
    ctx = _Ctx(run, isvc, target, payload.encode(document), document, notes=notes)
    ctx.snap = snap
    ctx.sources = logs.log_sources(snap)
    ctx.offsets = logs.mark(ctx.sources)
    if run.metrics_url:
        ctx.metrics_before = server_metrics.scrape(run.metrics_url, run.timeout)
    return ctx


def _after_sending(ctx: _Ctx, sent: int) -> None:
    """The run's model time from the model server's metrics, read once the requests are answered."""
    ctx.sent = sent
    url = ctx.run.metrics_url
    if url and ctx.metrics_before is not None:
        after = server_metrics.scrape(url, ctx.run.timeout)
        if after is None:
            ctx.notes.append(f"model server metrics at {url} could not be read after the run")
        else:
            ctx.metric_model = server_metrics.model_time(ctx.metrics_before, after, url, sent)


@contextlib.contextmanager
def _session(run: KServeRun) -> Iterator[_Ctx]:
    """A bundle (or a live cluster when no --host says the Host) is read before the run, so the InferenceService's
    Host is known and its logs are read from their current ends; a live cluster's logs are collected after it."""
    if run.source.bundle is not None or (run.source.live and not run.host):
        with open_source(run.source) as snap:
            yield _context(run, snap)
        return
    yield _context(run, None)


@contextlib.contextmanager
def _after(ctx: _Ctx, started: float) -> Iterator[None]:
    if not ctx.run.source.live:
        yield
        return
    with open_source(ctx.run.source, since_s=time.time() - started) as snap:
        if snap is not None:
            ctx.snap = snap
            ctx.sources = logs.log_sources(snap)
            ctx.offsets = {}
        yield


def _user_agent(ctx: _Ctx, rid: RequestIds) -> str:
    """The request's id in its User-Agent, and its trace id known: a gateway that replaces x-request-id keeps it."""
    ctx.traces[rid.trace_id] = rid.request_id
    return f"{logs.USER_AGENT} ({rid.request_id})"


def _b3(rid: RequestIds) -> tuple[tuple[str, str], ...]:
    """B3 ids as gRPC metadata: a transformer forwards x-b3-traceid to its predictor, whose queue-proxy logs it."""
    return (("x-b3-traceid", rid.trace_id), ("x-b3-spanid", rid.span_id))


def _headers(ctx: _Ctx, rid: RequestIds) -> dict[str, str]:
    headers = request_headers(ctx.target, rid.request_id, rid.traceparent)
    headers["x-b3-traceid"] = rid.trace_id
    headers["x-b3-spanid"] = rid.span_id
    headers.setdefault("user-agent", f"{logs.USER_AGENT} ({rid.request_id})")
    ctx.traces[rid.trace_id] = rid.request_id
    return headers


def _send_one(ctx: _Ctx) -> Exchange:
    target, run = ctx.target, ctx.run
    rid = ctx.ids.next()
    grpc = target.protocol is Protocol.GRPC
    return send_one(
        target, rid, tls=run.tls, http2=run.http2, timeout=run.timeout, body=ctx.body, document=ctx.document,
        headers={} if grpc else _headers(ctx, rid), user_agent=_user_agent(ctx, rid) if grpc else None,
        extra_metadata=_b3(rid) if grpc else (),
    )


async def _send_many(ctx: _Ctx) -> tuple[list[Exchange], float]:
    run, target = ctx.run, ctx.target
    results: list[Exchange | None] = [None] * run.count
    state = {"next": 0}
    url = f"{target.base_url}{target.infer_path}"
    grpc_request: Any = None
    client: Any = None
    if target.protocol is Protocol.GRPC:
        grpc_request = payload.to_grpc_request(ctx.document, target.name)
    else:
        client = make_async_client(http2=run.http2, tls=run.tls, timeout=run.timeout, connections=run.concurrency)
    start = time.perf_counter()

    async def worker() -> None:
        while state["next"] < run.count:
            index = state["next"]
            state["next"] = index + 1
            if run.rate:
                delay = start + index / run.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            rid = ctx.ids.next()
            if grpc_request is not None:
                results[index] = await _grpc_async(ctx, rid, grpc_request)
            else:
                results[index] = await send_async(
                    client,
                    entry="ingress",
                    method="POST",
                    url=url,
                    headers=_headers(ctx, rid),
                    body=ctx.body,
                    request_id=rid.request_id,
                    traceparent=rid.traceparent,
                    keep_body=index == 0,
                )

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, run.concurrency))))
    finally:
        duration = time.perf_counter() - start
        if client is not None:
            await client.aclose()
    return [item for item in results if item is not None], duration


async def _grpc_async(ctx: _Ctx, rid: RequestIds, request: Any) -> Exchange:
    """One ModelInfer on a channel of its own: gRPC's User-Agent is per channel, and it carries the request's id
    (the gateway replaces x-request-id), so each call pays its own connect, which its total includes."""
    from mlops_trace.trace.grpc_client import infer_async, infer_callable, open_aio_channel

    channel = open_aio_channel(ctx.target, ctx.run.tls, _user_agent(ctx, rid))
    try:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=ctx.run.timeout)
            connect_ms: float | None = round((time.perf_counter() - start) * 1000.0, 3)
        except TimeoutError:
            connect_ms = None  # the call below fails UNAVAILABLE and says so
        exchange = await infer_async(
            infer_callable(channel),
            ctx.target,
            request,
            request_id=rid.request_id,
            traceparent=rid.traceparent,
            timeout=ctx.run.timeout,
            reused_connection=False,
            extra_metadata=_b3(rid),
        )
    finally:
        await channel.close()
    if connect_ms is None or exchange.total_ms is None:
        return exchange
    return replace(
        exchange,
        total_ms=round(exchange.total_ms + connect_ms, 3),
        phases=replace(exchange.phases, connect_ms=connect_ms),
    )


# --- after the run -----------------------------------------------------------------------------------------------


def _path(ctx: _Ctx, found: logs.KLogs, first: Exchange | None) -> KPath:
    if ctx.snap is None:
        return unknown_path(ctx.isvc, "no cluster source: give --bundle DIR or --kubeconfig")
    served: dict[str, str] = {}
    if first is not None:
        lines = found.of(first.request_id)
        revision = canary.served_revision(lines, ctx.isvc.transformer)
        if revision:
            served["predictor"] = revision
        entry = lines.queue_of("transformer")
        if entry is not None and entry.revision and ctx.isvc.transformer:
            served["transformer"] = entry.revision
    request = KRequest(
        ctx.target.url_host,
        ctx.target.url_port,
        ctx.target.authority,
        ctx.target.infer_path if ctx.target.protocol is Protocol.REST else "/inference.GRPCInferenceService/ModelInfer",
        ctx.target.name,
    )
    return reconstruct(ctx.snap, ctx.isvc, request, served)


def _gateway_found(lines: logs.RequestLines) -> Found | None:
    """The request's gateway line as the Seldon path's records carry it (its flags go into the request record):
    the failing pass, else the ingress gateway's."""
    failing = [g for g in lines.gateway if g.record.response_flags]
    chosen = failing[-1] if failing else (lines.gateway[0] if lines.gateway else None)
    return Found(chosen.where, chosen.record.raw, envoy=chosen.record) if chosen is not None else None


def _diagnosis(ctx: _Ctx, exchanges: list[Exchange], found: logs.KLogs) -> Report:
    sent = sent_headers(ctx.target)
    records = [
        record_of(ex, ctx.target, sent, ctx.isvc.namespace, _gateway_found(found.of(ex.request_id))) for ex in exchanges
    ]
    options = {"split_alpha": ctx.run.split_alpha, "split_tolerance": ctx.run.split_tolerance}
    return diagnose(ctx.snap, records, options, source=f"requests to {ctx.target.base_url}")


def _trace(ctx: _Ctx, exchange: Exchange, path: KPath, found: logs.KLogs, report: Report | None) -> TraceResult:
    lines = found.of(exchange.request_id)
    failure = explain(exchange, ctx.target, path, lines)
    if failure is not None and failure.code == UNREACHABLE:
        raise ClusterError(f"cannot connect to {exchange.url}: {exchange.error}")
    if report is not None:
        failure = explained(failure, report, record_display(exchange))
    model = model_time(lines, found, ctx.sent or 1)
    if (model is None or not model.per_request) and ctx.metric_model is not None:
        model = ctx.metric_model
    attribution = attribute(exchange, path, found, failure, ctx.target.host_header, model)
    revision = canary.served_revision(lines, ctx.isvc.transformer)
    served = payload.served_model(exchange.body, exchange.headers) or (ctx.target.name if exchange.ok else None)
    return TraceResult(
        exchange=exchange,
        protocol=ctx.target.protocol,
        target=ctx.target.describe(),
        served_model=f"{served} ({revision})" if served and revision else served,
        total_ms=attribution.total_ms,
        unexplained_ms=attribution.unexplained_ms,
        unexplained_source=attribution.unexplained_source,
        hops=attribution.hops,
        failure=failure,
        findings=report.findings if report is not None else (),
        path_source=path.source,
        notes=tuple(ctx.notes),
    )


def _find(ctx: _Ctx) -> logs.KLogs:
    return logs.find(
        ctx.snap,
        ctx.sources,
        ctx.offsets,
        ctx.ids.run_prefix,
        ctx.traces,
        client_host=ctx.target.host_header,
        wait_s=ctx.run.log_wait_s,
    )


def run_one(run: KServeRun) -> TraceResult:
    with _session(run) as ctx:
        started = time.time()
        exchange = _send_one(ctx)
        _after_sending(ctx, 1)
        with _after(ctx, started):
            found = _find(ctx)
            path = _path(ctx, found, exchange)
            report = _diagnosis(ctx, [exchange], found)
            return _trace(ctx, exchange, path, found, report)


def run_many(run: KServeRun, on_trace: Callable[[TraceResult], None] | None = None) -> RunSummary:
    if run.count < 1:
        raise UsageError("--count must be at least 1")
    with _session(run) as ctx:
        started = time.time()
        exchanges, duration = asyncio.run(_send_many(ctx))
        _after_sending(ctx, len(exchanges))
        if exchanges and all(ex.error_kind is not None and ex.error_kind.value == "connect" for ex in exchanges):
            raise ClusterError(f"cannot connect to {exchanges[0].url}: {exchanges[0].error}")
        with _after(ctx, started):
            found = _find(ctx)
            path = _path(ctx, found, exchanges[0] if exchanges else None)
            report = _diagnosis(ctx, exchanges, found)
            return _summarise(ctx, exchanges, duration, path, found, report, on_trace)


def _summarise(
    ctx: _Ctx,
    exchanges: list[Exchange],
    duration: float,
    path: KPath,
    found: logs.KLogs,
    report: Report,
    on_trace: Callable[[TraceResult], None] | None,
) -> RunSummary:
    tally = HopTally()
    revisions: Counter[str] = Counter()
    first: TraceResult | None = None
    for index, exchange in enumerate(exchanges):
        trace = _trace(ctx, exchange, path, found, report if index == 0 else None)
        if index == 0:
            first = trace
        if on_trace is not None:
            on_trace(trace if index == 0 else replace(trace, findings=(), notes=()))
        if exchange.ok and exchange.total_ms is not None:
            revision = canary.served_revision(found.of(exchange.request_id), ctx.isvc.transformer)
            if revision:
                revisions[revision] += 1
        failed_name = path.keys[trace.failure.hop - 1].value if trace.failure is not None else ""
        tally.add(exchange, trace.hops, trace.failure, failed_name)
    stats = tally.hop_stats([(number, key.value) for number, key in enumerate(path.keys, start=1)])
    spec = canary.spec_weights(path)
    route = canary.route_weights(ctx.snap, path)
    split = None
    if spec is not None or (route is not None and len(route.shares) > 1) or len(revisions) > 1:
        split = canary.build(dict(revisions), spec, route, alpha=ctx.run.split_alpha)
    return RunSummary(
        count=len(exchanges),
        succeeded=sum(1 for ex in exchanges if ex.ok),
        duration_s=duration,
        latency=tally.latency(),
        hops=stats,
        errors=tally.error_counts(),
        split=split,
        findings=report.findings,
        first=first,
        notes=tuple(ctx.notes),
        concurrency=ctx.run.concurrency,
        target_rate=ctx.run.rate,
    )
