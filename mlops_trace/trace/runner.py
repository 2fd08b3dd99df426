"""Run `request`: one request traced in full, or `--count N` requests (asyncio, `--concurrency` in flight, optional
`--rate`, connection reuse) summarised with percentiles, errors by hop and the A/B split.

The sending loop does no per-request work beyond building two headers and storing the exchange; logs are scanned
once after the run (from the offsets they had before it), metrics are read twice (before and after), the path is
rebuilt once, and the differential probes run after the measured requests so they do not disturb them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_trace.analysis.objectives import DEFAULT_SPLIT_ALPHA, DEFAULT_SPLIT_TOLERANCE
from mlops_trace.analysis.routing import candidate_of_route
from mlops_trace.analysis.stats import Decision, SplitSprt
from mlops_trace.errors import ClusterError, InputError, UsageError
from mlops_trace.findings import Report
from mlops_trace.parsers.envoy_config import EnvoyConfig
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot
from mlops_trace.trace import accesslogs, fastclient, metrics, payload, probes
from mlops_trace.trace.attribution import ProbeEstimate, attribute
from mlops_trace.trace.diagnose import diagnose, explained, record_display, record_of, sent_headers, with_fresh_envoy
from mlops_trace.trace.explain import UNREACHABLE, explain
from mlops_trace.trace.hop_tally import HopTally
from mlops_trace.trace.ids import IdSource
from mlops_trace.trace.path import PathRequest, RequestPath, reconstruct
from mlops_trace.trace.record import (
    HOP_NAMES,
    Exchange,
    ModelTime,
    Protocol,
    RunSummary,
    SourceKind,
    TraceResult,
)
from mlops_trace.trace.rest import TlsOptions, make_async_client, make_client, send_async
from mlops_trace.trace.send_one import send_one
from mlops_trace.trace.sources import ClusterSource, StackDefaults, open_source
from mlops_trace.trace.split import Weights, build_report, experiment_weights, normalise, route_weights
from mlops_trace.trace.target import Target, request_headers

PLACEHOLDER_INPUT = {"name": "input-0", "datatype": "FP32", "shape": [1, 1], "data": [0.0]}


@dataclass(frozen=True)
class RunOptions:
    target: Target
    data: Path | None = None
    http2: bool = False
    timeout: float = 10.0
    tls: TlsOptions = field(default_factory=TlsOptions)
    count: int = 0  # 0: one request, traced in full
    concurrency: int = 1
    rate: float | None = None
    until_decided: bool = False
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    split_alpha: float = DEFAULT_SPLIT_ALPHA  # error rate of the split's tests: p-value threshold and the SPRT's α
    probes: int = 20
    log_wait_s: float = 3.0
    source: ClusterSource = field(default_factory=ClusterSource)
    entry_points: Mapping[str, str] = field(default_factory=dict)  # envoy/agent/mlserver base URLs for probes
    metrics_url: str | None = None
    envoy_admin_url: str | None = None
    stack: StackDefaults | None = None
    progress: bool = False
    lean_client: bool = True  # `--count` over REST/HTTP/1.1: the lean client (fastclient), else httpx


@dataclass
class _Context:
    """What a run gathers around the requests it sends."""

    options: RunOptions
    ids: IdSource
    body: bytes
    payload_doc: dict[str, Any]
    snap: Snapshot | None = None
    log_files: list[accesslogs.LogFile] = field(default_factory=list)
    offsets: dict[Path, int] = field(default_factory=dict)
    metrics_before: metrics.DurationTotals | None = None
    notes: list[str] = field(default_factory=list)


# --- payload -----------------------------------------------------------------------------------------------------


def _fetch_metadata(options: RunOptions) -> tuple[dict[str, Any] | None, str]:
    """The model's V2 metadata through the same path as the request; (None, why) when it cannot be had."""
    target = options.target
    if target.protocol is Protocol.GRPC:
        import grpc

        from mlops_trace.trace.grpc_client import model_metadata, open_channel

        channel = open_channel(target, options.tls)
        try:
            return model_metadata(channel, target, timeout=options.timeout), ""
        except grpc.RpcError as exc:
            rpc: Any = exc
            return None, f"gRPC ModelMetadata failed ({rpc.code().name}: {rpc.details()})"
        finally:
            channel.close()
    import httpx

    headers = request_headers(target, "metadata", "")
    headers.pop("traceparent", None)
    headers.pop("content-type", None)
    url = f"{target.base_url}{target.metadata_path}"
    try:
        with make_client(http2=options.http2, tls=options.tls, timeout=options.timeout) as client:
            response = client.get(url, headers=headers)
    except httpx.ConnectError as exc:
        raise ClusterError(f"cannot connect to {target.base_url}: {exc}") from exc
    except httpx.HTTPError as exc:
        return None, f"GET {url} failed: {exc}"
    if response.status_code != 200:
        return None, f"GET {url} answered {response.status_code}"
    try:
        document = response.json()
    except ValueError:
        return None, f"GET {url} did not answer JSON"
    return (document, "") if isinstance(document, dict) else (None, f"GET {url} did not answer an object")


def build_payload(options: RunOptions, notes: list[str]) -> dict[str, Any]:
    if options.data is not None:
        return payload.load_payload(options.data)
    metadata, why = _fetch_metadata(options)
    where = f"{options.target.base_url}{options.target.metadata_path}"
    if metadata is not None:
        try:
            return payload.payload_from_metadata(metadata, where)
        except InputError as exc:
            why = str(exc)
    example = options.stack.example_input if options.stack is not None else None
    if example is not None:
        notes.append(f"payload from the reference stack's input shape ({why or 'no metadata'})")
        return payload.payload_from_metadata({"inputs": [dict(example)]}, "stack")
    notes.append(f"no model metadata ({why}); sent a one-element placeholder payload — give --data FILE")
    return {"inputs": [dict(PLACEHOLDER_INPUT)]}


# --- before and after --------------------------------------------------------------------------------------------


def _prepare(ctx: _Context) -> None:
    if ctx.snap is not None:
        ctx.log_files = accesslogs.log_files(ctx.snap)
        ctx.offsets = accesslogs.mark(ctx.log_files)
    if ctx.options.metrics_url:
        ctx.metrics_before = metrics.scrape(ctx.options.metrics_url, ctx.options.timeout)


def _envoy_override(options: RunOptions) -> tuple[EnvoyConfig | None, str | None]:
    """A fresh config_dump from Envoy's admin endpoint, when one is known."""
    if not options.envoy_admin_url:
        return None, None
    import httpx

    from mlops_trace.parsers.envoy_config import parse_config_dump

    url = options.envoy_admin_url.rstrip("/") + "/config_dump"
    try:
        response = httpx.get(url, timeout=options.timeout, trust_env=False)
        return parse_config_dump(response.json()), url
    except (httpx.HTTPError, ValueError, InputError):
        return None, None


def _path_request(target: Target, headers: Mapping[str, str]) -> PathRequest:
    return PathRequest(
        url_host=target.url_host,
        url_port=target.url_port,
        authority=target.authority,
        path=target.infer_path if target.protocol is Protocol.REST else "/inference.GRPCInferenceService/ModelInfer",
        headers=dict(headers),
        grpc=target.protocol is Protocol.GRPC,
    )


def _model_time(ctx: _Context, exchanges: Sequence[Exchange]) -> ModelTime | None:
    if ctx.metrics_before is None or not ctx.options.metrics_url:
        return None
    after = metrics.scrape(ctx.options.metrics_url, ctx.options.timeout)
    if after is None:
        ctx.notes.append(f"MLServer metrics at {ctx.options.metrics_url} could not be read after the run")
        return None
    served = sorted({payload.served_model(ex.body, ex.headers) or "" for ex in exchanges if ex.ok} - {""})
    return metrics.model_time(ctx.metrics_before, after, served, ctx.options.metrics_url, len(exchanges))


def _probe_estimates(ctx: _Context, served: str | None, route: str | None) -> dict[int, ProbeEstimate]:
    options = ctx.options
    if options.probes <= 0 or options.target.protocol is Protocol.GRPC:
        return {}
    urls = {"ingress": options.target.base_url, **options.entry_points}
    points = probes.entry_points(options.target, urls, served, route)
    if len(points) < 2:
        return {}
    results = probes.run_probes(
        points,
        ctx.body,
        rounds=options.probes,
        tls=options.tls,
        timeout=options.timeout,
        ids=ctx.ids,
        http2=options.http2,
    )
    for result in results:
        if result.failures:
            ctx.notes.append(
                f"probe {result.entry} ({result.url}): {result.failures} of {options.probes} failed "
                f"({result.failure_example})"
            )
    return probes.estimates(results)


def _ingress_error(logs: accesslogs.AccessLogs, exchange: Exchange) -> accesslogs.Found | None:
    """The ingress controller's error line that explains this exchange's 502/504, if its log has one."""
    if exchange.status not in (502, 504):
        return None
    return logs.ingress_error_for(urlsplit(exchange.url).path, exchange.status)


def _trace(
    ctx: _Context,
    exchange: Exchange,
    logs: accesslogs.AccessLogs,
    path: RequestPath | None,
    model: ModelTime | None,
    probe_estimates: Mapping[int, ProbeEstimate],
    report: Report,
) -> TraceResult:
    options = ctx.options
    nginx = logs.ingress.get(exchange.request_id)
    envoy = logs.envoy.get(exchange.request_id)
    failure = explain(exchange, options.target, path, ctx.snap, nginx, envoy, _ingress_error(logs, exchange))
    if failure is not None and failure.code == UNREACHABLE:
        raise ClusterError(f"cannot connect to {exchange.url}: {exchange.error}")
    failure = explained(failure, report, record_display(exchange))
    attribution = attribute(
        exchange,
        path=path,
        nginx=nginx,
        envoy=envoy,
        model=model,
        probes=probe_estimates,
        failure=failure,
        ingress_log_note=_log_note(ctx, logs, accesslogs.LogKind.INGRESS),
        envoy_log_note=_log_note(ctx, logs, accesslogs.LogKind.ENVOY),
    )
    return TraceResult(
        exchange=exchange,
        protocol=options.target.protocol,
        target=options.target.describe(),
        served_model=payload.served_model(exchange.body, exchange.headers),
        total_ms=attribution.total_ms,
        unexplained_ms=attribution.unexplained_ms,
        unexplained_source=attribution.unexplained_source,
        hops=attribution.hops,
        failure=failure,
        findings=report.findings,
        path_source=path.source if path is not None else None,
        notes=tuple(ctx.notes),
    )


def _diagnosis(
    ctx: _Context,
    path: RequestPath | None,
    envoy_override: tuple[EnvoyConfig | None, str | None],
    exchanges: Sequence[Exchange],
    logs: accesslogs.AccessLogs,
) -> tuple[Report, tuple[RequestRecord, ...]]:
    """The catalog's findings on the snapshot with these exchanges recorded in it (see `diagnose`), and the records."""
    options = ctx.options
    namespace = path.namespace if path is not None else None
    sent = sent_headers(options.target)
    records: list[RequestRecord] = [
        record_of(exchange, options.target, sent, namespace, logs.envoy.get(exchange.request_id))
        for exchange in exchanges
    ]
    snap = ctx.snap
    if snap is not None:
        snap = with_fresh_envoy(snap, *envoy_override, namespace)
    check_options: dict[str, float] = {"split_alpha": options.split_alpha, "split_tolerance": options.split_tolerance}
    if options.until_decided:
        check_options["min_split_requests"] = 0  # the sequential test chose how many requests decide the split
    report = diagnose(snap, records, check_options, source=f"requests to {options.target.base_url}")
    return report, tuple(records)


def _log_note(ctx: _Context, logs: accesslogs.AccessLogs, kind: accesslogs.LogKind) -> str:
    if ctx.snap is None:
        return "no cluster source: give --bundle DIR or --kubeconfig, or run against the reference stack"
    return f"searched {logs.describe_files(kind)}"


# --- one request -------------------------------------------------------------------------------------------------


def _send_one(ctx: _Context) -> Exchange:
    options = ctx.options
    rid = ctx.ids.next()
    return send_one(
        options.target, rid, tls=options.tls, http2=options.http2, timeout=options.timeout, body=ctx.body,
        document=ctx.payload_doc, headers=request_headers(options.target, rid.request_id, rid.traceparent),
    )


@contextlib.contextmanager
def _context(options: RunOptions) -> Iterator[_Context]:
    notes: list[str] = list(options.target.warnings)
    document = build_payload(options, notes)
    ctx = _Context(options=options, ids=IdSource(), body=payload.encode(document), payload_doc=document, notes=notes)
    # A bundle on disk (the stack's live one, or a collected one) is read before the run, so its logs can be read
    # from their current ends afterwards; a live cluster is collected after the run.
    if options.source.bundle is not None:
        with open_source(options.source) as snap:
            ctx.snap = snap
            yield ctx
        return
    yield ctx


@contextlib.contextmanager
def _after_snapshot(ctx: _Context, started: float) -> Iterator[None]:
    if ctx.snap is not None or not ctx.options.source.live:
        yield
        return
    with open_source(ctx.options.source, since_s=time.time() - started) as snap:
        ctx.snap = snap
        if snap is not None:
            ctx.log_files = accesslogs.log_files(snap)
            ctx.offsets = {}
        yield


def run_one(options: RunOptions) -> TraceResult:
    with _context(options) as ctx:
        _prepare(ctx)
        started = time.time()
        exchange = _send_one(ctx)
        model = _model_time(ctx, [exchange]) if exchange.route else None
        with _after_snapshot(ctx, started):
            logs = accesslogs.find(
                ctx.log_files,
                ctx.offsets,
                ctx.ids.run_prefix,
                [exchange.request_id],
                wait_s=options.log_wait_s,
                envoy_logs_everything=False,
            )
            override, override_where = _envoy_override(options)
            path = None
            if ctx.snap is not None:
                path = reconstruct(
                    ctx.snap,
                    _path_request(options.target, options.target.header_map()),
                    exchange.route,
                    envoy_override=override,
                    envoy_override_where=override_where,
                )
            estimates = _probe_estimates(ctx, payload.served_model(exchange.body, exchange.headers), exchange.route)
            if model is None and 7 in estimates and exchange.route:
                estimate = estimates[7]
                model = ModelTime(estimate.ms, estimate.source, SourceKind.PROBE, per_request=False)
            report, _ = _diagnosis(ctx, path, (override, override_where), [exchange], logs)
            return _trace(ctx, exchange, logs, path, model, estimates, report)


# --- many requests -----------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    exchanges: list[Exchange]
    duration_s: float
    decision: Decision | None


async def _run_batch(
    ctx: _Context,
    count: int,
    sprt: SplitSprt | None,
    advance: Callable[[], None],
) -> _Batch:
    options = ctx.options
    target = options.target
    results: list[Exchange | None] = [None] * count
    state = {"next": 0, "stop": False}
    url = f"{target.base_url}{target.infer_path}"
    base_headers = request_headers(target, "", "")
    grpc_call: Any = None
    grpc_request: Any = None
    channel: Any = None
    client: Any = None
    lean: fastclient.FastClient | None = None
    if target.protocol is Protocol.GRPC:
        from mlops_trace.trace.grpc_client import infer_callable, open_aio_channel

        channel = open_aio_channel(target, options.tls)
        grpc_call = infer_callable(channel)
        grpc_request = payload.to_grpc_request(ctx.payload_doc, target.name)
    elif options.lean_client and fastclient.supports(url, http2=options.http2):
        # httpx costs ~1 ms of CPU per request: enough to make the prober the bottleneck of what it measures.
        lean = fastclient.FastClient(url, base_headers, ctx.body, tls=options.tls, timeout=options.timeout)
    else:
        client = make_async_client(
            http2=options.http2, tls=options.tls, timeout=options.timeout, connections=options.concurrency
        )
    start = time.perf_counter()

    async def worker() -> None:
        while not state["stop"] and state["next"] < count:
            index = int(state["next"])
            state["next"] = index + 1
            if options.rate:
                delay = start + index / options.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            rid = ctx.ids.next()
            if grpc_call is not None:
                from mlops_trace.trace.grpc_client import infer_async

                exchange = await infer_async(
                    grpc_call,
                    target,
                    grpc_request,
                    request_id=rid.request_id,
                    traceparent=rid.traceparent,
                    timeout=options.timeout,
                )
            elif lean is not None:
                exchange = await lean.send(rid.request_id, rid.traceparent, keep_body=index == 0)
            else:
                headers = dict(base_headers)
                headers["x-request-id"] = rid.request_id
                headers["traceparent"] = rid.traceparent
                exchange = await send_async(
                    client,
                    entry="ingress",
                    method="POST",
                    url=url,
                    headers=headers,
                    body=ctx.body,
                    request_id=rid.request_id,
                    traceparent=rid.traceparent,
                    keep_body=index == 0,
                )
            results[index] = exchange
            advance()
            route = exchange.route if exchange.ok else None
            if sprt is not None and route and sprt.add(candidate_of_route(route)) is not Decision.CONTINUE:
                state["stop"] = True

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, options.concurrency))))
    finally:
        duration = time.perf_counter() - start
        if client is not None:
            await client.aclose()
        if lean is not None:
            await lean.aclose()
        if channel is not None:
            await channel.close()
    done = [item for item in results if item is not None]
    return _Batch(done, duration, sprt.decision if sprt is not None else None)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("requests"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as progress:
        task = progress.add_task("requests", total=total)

        def advance() -> None:
            progress.advance(task)

        yield advance


def _weights_before(ctx: _Context, path: RequestPath | None) -> tuple[Weights | None, Weights | None]:
    """(Experiment weights, Envoy weights) for the split, from the path or, failing that, the stack's status."""
    expected = experiment_weights(path.experiment) if path is not None and path.experiment is not None else None
    envoy = route_weights(path.route, path.envoy_where or "config_dump") if path is not None and path.route else None
    stack = ctx.options.stack
    if stack is not None and ctx.options.target.is_experiment and ctx.options.target.name == stack.experiment:
        if expected is None and stack.experiment_weights:
            expected = Weights(normalise(stack.experiment_weights), "stack status: experiment.weights")
        if envoy is None and stack.envoy_weights:
            envoy = Weights(normalise(stack.envoy_weights), "stack status: experiment.envoy_weights")
    if envoy is not None and path is not None and path.route is not None and len(path.route.clusters) < 2:
        envoy = None  # a single cluster is no split
    return expected, envoy


def run_many(options: RunOptions, on_trace: Callable[[TraceResult], None] | None = None) -> RunSummary:
    """`--count` requests; `on_trace` (the OTLP exporter) is handed every request as a TraceResult once it is
    attributed, after the measured requests are done."""
    if options.count < 1:
        raise UsageError("--count must be at least 1")
    with _context(options) as ctx:
        _prepare(ctx)
        override, override_where = _envoy_override(options)
        request_view = _path_request(options.target, options.target.header_map())
        path_before = (
            reconstruct(ctx.snap, request_view, None, envoy_override=override, envoy_override_where=override_where)
            if ctx.snap is not None
            else None
        )
        expected, envoy = _weights_before(ctx, path_before)
        sprt = None
        if options.until_decided:
            reference = expected or envoy
            if reference is None:
                raise UsageError(
                    "--until-decided needs the configured split: target an Experiment whose weights the "
                    "bundle, cluster or reference stack shows"
                )
            sprt = SplitSprt(reference.shares, tolerance=options.split_tolerance, alpha=options.split_alpha)
        started = time.time()
        with _progress(options.progress, options.count) as advance:
            batch = asyncio.run(_run_batch(ctx, options.count, sprt, advance))
        exchanges = batch.exchanges
        if exchanges and all(ex.error_kind is not None and ex.error_kind.value == "connect" for ex in exchanges):
            raise ClusterError(f"cannot connect to {exchanges[0].url}: {exchanges[0].error}")
        model = _model_time(ctx, exchanges)
        with _after_snapshot(ctx, started):
            logs = accesslogs.find(
                ctx.log_files,
                ctx.offsets,
                ctx.ids.run_prefix,
                [ex.request_id for ex in exchanges],
                wait_s=options.log_wait_s,
                envoy_logs_everything=False,
            )
            first = exchanges[0] if exchanges else None
            path = None
            if ctx.snap is not None and first is not None:
                path = reconstruct(
                    ctx.snap, request_view, first.route, envoy_override=override, envoy_override_where=override_where
                )
                if path_before is None:
                    expected, envoy = _weights_before(ctx, path)
            served = payload.served_model(first.body, first.headers) if first is not None else None
            estimates = _probe_estimates(ctx, served, first.route if first else None)
            if model is None and 7 in estimates:
                model = ModelTime(estimates[7].ms, estimates[7].source, SourceKind.PROBE)
            report, records = _diagnosis(ctx, path, (override, override_where), exchanges, logs)
            summary = _summarise(ctx, batch, logs, path, model, estimates, expected, envoy, report, on_trace)
            return dataclasses.replace(summary, records=records)


def _summarise(
    ctx: _Context,
    batch: _Batch,
    logs: accesslogs.AccessLogs,
    path: RequestPath | None,
    model: ModelTime | None,
    estimates: Mapping[int, ProbeEstimate],
    expected: Weights | None,
    envoy: Weights | None,
    report: Report,
    on_trace: Callable[[TraceResult], None] | None = None,
) -> RunSummary:
    options = ctx.options
    exchanges = batch.exchanges
    tally = HopTally()
    routes: Counter[str] = Counter()
    first_trace: TraceResult | None = None
    for index, exchange in enumerate(exchanges):
        if index == 0:
            first_trace = _trace(ctx, exchange, logs, path, model, estimates, report)
            if on_trace is not None:
                on_trace(first_trace)
            hops = first_trace.hops
            failure = first_trace.failure
        else:
            nginx = logs.ingress.get(exchange.request_id)
            envoy_line = logs.envoy.get(exchange.request_id)
            failure = None if exchange.ok else explain(
                exchange, options.target, path, ctx.snap, nginx, envoy_line, _ingress_error(logs, exchange)
            )
            attribution = attribute(exchange, path=path, nginx=nginx, envoy=envoy_line, model=model, failure=failure)
            hops = attribution.hops
            if on_trace is not None:
                on_trace(
                    TraceResult(
                        exchange=exchange,
                        protocol=options.target.protocol,
                        target=options.target.describe(),
                        served_model=None,
                        total_ms=attribution.total_ms,
                        unexplained_ms=attribution.unexplained_ms,
                        unexplained_source=attribution.unexplained_source,
                        hops=hops,
                        failure=failure,
                        findings=(),
                        path_source=None,
                    )
                )
        if exchange.ok and exchange.route:
            routes[exchange.route] += 1
        tally.add(exchange, hops, failure, HOP_NAMES[failure.hop] if failure is not None else "")
    hop_stats = tally.hop_stats(
        [(number, HOP_NAMES[number]) for number in sorted(HOP_NAMES)],
        {number: estimate.ms for number, estimate in estimates.items()},
    )
    split = None
    if options.target.is_experiment and (routes or expected or envoy):
        decision = batch.decision.value if batch.decision is not None else None
        split = build_report(routes, expected, envoy, decision, alpha=options.split_alpha)
    succeeded = sum(1 for exchange in exchanges if exchange.ok)
    notes = list(ctx.notes)
    if batch.decision is not None:
        notes.append(f"sequential test stopped after {len(exchanges)} requests: {batch.decision.value}")
    return RunSummary(
        count=len(exchanges),
        succeeded=succeeded,
        duration_s=batch.duration_s,
        latency=tally.latency(),
        hops=hop_stats,
        errors=tally.error_counts(),
        split=split,
        findings=report.findings,
        first=first_trace,
        notes=tuple(notes),
        concurrency=options.concurrency,
        target_rate=options.rate,
    )
