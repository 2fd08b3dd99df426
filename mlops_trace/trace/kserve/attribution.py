"""Per-hop time of one request to an InferenceService, each from a named source:

- external IP: the client's TCP connect;
- Istio gateway (Standard: the Ingress route when Istio serves it): the ingress gateway's access line of this
  request, `%DURATION%` minus its upstream service time;
- Knative route: the ingress gateway's upstream service time minus the local gateway's (the hop to the local gateway
  and its own routing to the revision);
- activator: inside the queue-proxy share when it is on the path (no line of its own), else not on the path;
- queue-proxy: the local gateway's upstream service time minus queue-proxy's request-log latency;
- transformer: its queue-proxy's latency minus the local gateway's `%DURATION%` for its call to the predictor (its
  own processing and its client); the predictor route: that `%DURATION%` minus the predictor queue-proxy's latency;
- kserve-container: the predictor queue-proxy's latency minus the model's time;
- model: the predictor's `kserve.trace` line (preprocess + explain + predict + postprocess ms).

Envoy's times have 1 ms resolution; the model server's line has microseconds. The client's total minus the timed hops
is `unexplained`, never spread over the hops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.snapshot.roles import Role
from mlops_trace.trace.attribution import HEADER_RESOLUTION_MS, Attribution, HopShare, hop1_external_ip
from mlops_trace.trace.kserve.hops import Hop
from mlops_trace.trace.kserve.logs import GatewayLine, KLogs, QueueLine, RequestLines, ServerLine
from mlops_trace.trace.kserve.path import KPath
from mlops_trace.trace.record import Exchange, Failure, HopStatus, HopTiming, ModelTime, SourceKind

QUEUE_RESOLUTION_MS = 0.001  # queue-proxy's request-log latency is printed in seconds with nanosecond digits


@dataclass(frozen=True)
class _Inputs:
    exchange: Exchange
    path: KPath
    lines: RequestLines
    ingress: GatewayLine | None  # the ingress gateway's pass (the client's Host)
    entry: GatewayLine | None  # the local gateway's pass to the entry component
    predictor: GatewayLine | None  # the local gateway's pass to the predictor, behind a transformer
    entry_queue: QueueLine | None
    predictor_queue: QueueLine | None
    model: ModelTime | None
    reached_model: bool
    notes: dict[Role, str]
    predictor_by_time: bool = False  # the call's gateway line was told apart by its time, not by an id


def _classify(path: KPath, lines: RequestLines, client_host: str | None) -> tuple[GatewayLine | None, ...]:
    """(ingress pass, local pass to the entry component, local pass to the predictor) among the request's lines."""
    host = (client_host or "").lower().split(":", 1)[0]
    ingress = entry = predictor = None
    for line in lines.gateway:
        authority = (line.record.authority or "").lower().split(":", 1)[0]
        if authority == host or "knative-local-gateway" in (line.record.upstream_cluster or ""):
            ingress = ingress or line
        elif path.isvc.transformer and "-predictor." in authority:
            predictor = predictor or line
        else:
            entry = entry or line
    return ingress, entry, predictor


def _line_evidence(*lines: GatewayLine | QueueLine | ServerLine | None) -> tuple[Evidence, ...]:
    found: list[Evidence] = []
    for line in lines:
        if line is None:
            continue
        raw = line.record.raw if isinstance(line, GatewayLine) else line.raw
        found.append(Evidence(line.where, evidence_line(raw)))
    return tuple(found)


def _diff(
    component: str,
    a: float | None,
    b: float | None,
    source: str,
    kind: SourceKind,
    evidence: tuple[Evidence, ...],
    missing: str,
    resolution: float = HEADER_RESOLUTION_MS,
) -> HopShare:
    if a is None or b is None:
        return HopShare.untimed(component, missing)
    return HopShare(component, round(a - b, 3), source, kind, evidence, resolution_ms=resolution)


def _gateway(i: _Inputs) -> HopShare:
    line = i.ingress
    if line is None or line.record.duration_ms is None:
        return HopShare.untimed(
            "Istio gateway",
            f"request id not in the gateway's access log ({i.notes.get(Role.ISTIO_GATEWAY, 'no gateway log')})",
        )
    upstream = line.record.upstream_service_time_ms
    if upstream is None:
        return HopShare(
            "Istio gateway",
            line.record.duration_ms,
            "Istio gateway log: %DURATION% (no upstream answered)",
            SourceKind.ACCESS_LOG,
            _line_evidence(line),
            resolution_ms=HEADER_RESOLUTION_MS,
        )
    return _diff(
        "Istio gateway",
        line.record.duration_ms,
        upstream,
        "Istio gateway log: %DURATION% - upstream service time",
        SourceKind.ACCESS_LOG,
        _line_evidence(line),
        "",
    )


def _knative_route(i: _Inputs) -> HopShare:
    outer = i.ingress.record.upstream_service_time_ms if i.ingress is not None else None
    if i.entry is None:
        return HopShare.untimed("local gateway", "no local gateway line for this request in the gateway's access log")
    inner = i.entry.record.upstream_service_time_ms
    if inner is None and i.entry.record.duration_ms is not None and outer is not None:
        return HopShare(
            "local gateway",
            round(outer, 3),
            "gateway log: the ingress gateway's upstream service time (the local gateway answered itself)",
            SourceKind.ACCESS_LOG,
            _line_evidence(i.entry),
            resolution_ms=HEADER_RESOLUTION_MS,
        )
    return _diff(
        "local gateway",
        outer,
        inner,
        "gateway log, two passes: ingress gateway upstream time - local gateway upstream time",
        SourceKind.ACCESS_LOG,
        _line_evidence(i.entry),
        "missing a gateway line's upstream service times",
    )


def _activator(i: _Inputs) -> HopShare:
    if i.path.activator:
        return HopShare.untimed(
            "activator",
            f"inside hop {i.path.number(Hop.QUEUE_PROXY)}: the activator writes no "
            "line of this request; its time is in the local gateway's upstream time",
        )
    return HopShare.untimed("activator", "not on the path: the revision has ready pods, the gateway sends to them")


def _queue_proxy(i: _Inputs) -> HopShare:
    if i.entry_queue is None:
        return HopShare.untimed(
            "queue-proxy",
            f"no queue-proxy request-log line with this request's trace id "
            f"({i.notes.get(Role.QUEUE_PROXY, 'no queue-proxy log')})",
        )
    upstream = i.entry.record.upstream_service_time_ms if i.entry is not None else None
    return _diff(
        "queue-proxy",
        upstream,
        i.entry_queue.latency_ms,
        "gateway − queue-proxy log: local gateway upstream time - queue-proxy request-log latency",
        SourceKind.ACCESS_LOG,
        _line_evidence(i.entry_queue),
        "missing the local gateway's upstream service time",
    )


def _transformer(i: _Inputs) -> HopShare:
    latency = i.entry_queue.latency_ms if i.entry_queue is not None else None
    call = i.predictor.record.duration_ms if i.predictor is not None else None
    upstream = i.entry.record.upstream_service_time_ms if i.entry is not None else None
    if latency is None and call is not None and upstream is not None:
        # No request-log line of the transformer's queue-proxy (a gRPC call: the line, if any, has no B3 trace id):
        # the local gateway's wait for the transformer's revision bounds it, queue-proxy's share included.
        return _diff(
            "transformer",
            upstream,
            call,
            "gateway log, two passes: local gateway upstream time of the pass to the transformer - %DURATION% of "
            "its call to the predictor (queue-proxy's share included)" + _by_time(i),
            SourceKind.ACCESS_LOG,
            _line_evidence(i.entry, i.predictor),
            "",
        )
    if call is None and latency is not None:
        inner = i.predictor_queue.latency_ms if i.predictor_queue is not None else None
        if inner is not None:
            return HopShare(
                "transformer",
                round(latency - inner, 3),
                "queue-proxy logs: transformer latency - "
                "predictor latency (its call through the local gateway included)",
                SourceKind.ACCESS_LOG,
                _line_evidence(i.entry_queue, i.predictor_queue),
                resolution_ms=QUEUE_RESOLUTION_MS,
            )
        return HopShare(
            "transformer",
            latency,
            "queue-proxy log: the transformer's whole request-log latency (no call "
            "of it to the predictor reached the gateway)",
            SourceKind.ACCESS_LOG,
            _line_evidence(i.entry_queue),
            resolution_ms=QUEUE_RESOLUTION_MS,
        )
    return _diff(
        "transformer",
        latency,
        call,
        "queue-proxy − gateway log: transformer queue-proxy "
        "latency - local gateway %DURATION% of its call to the predictor" + _by_time(i),
        SourceKind.ACCESS_LOG,
        _line_evidence(i.predictor),
        "missing the transformer's queue-proxy line",
    )


def _by_time(i: _Inputs) -> str:
    return " (the call's gateway line matched by its time within the transformer's pass)" if i.predictor_by_time else ""


def _predictor_route(i: _Inputs) -> HopShare:
    call = i.predictor.record.duration_ms if i.predictor is not None else None
    latency = i.predictor_queue.latency_ms if i.predictor_queue is not None else None
    if call is None and latency is not None and i.entry_queue is not None:
        return HopShare.untimed(
            "→ predictor",
            f"inside hop {i.path.number(Hop.TRANSFORMER)}: no gateway line of the "
            "call was told apart, so the transformer's share holds it",
        )
    return _diff(
        "→ predictor",
        call,
        latency,
        "gateway − queue-proxy log: %DURATION% of the call - predictor queue-proxy latency" + _by_time(i),
        SourceKind.ACCESS_LOG,
        _line_evidence(i.predictor_queue),
        "missing the gateway line of the call or the predictor's queue-proxy line",
    )


def _server(i: _Inputs) -> HopShare:
    queue = i.predictor_queue if i.path.isvc.transformer else i.entry_queue
    latency = queue.latency_ms if queue is not None else None
    if latency is None:
        upstream = (
            i.ingress.record.upstream_service_time_ms if i.ingress is not None and not i.path.isvc.knative else None
        )
        if upstream is not None and i.model is not None:
            return HopShare(
                "server",
                round(upstream - i.model.ms, 3),
                "gateway log − model: upstream service time - model server time",
                SourceKind.ACCESS_LOG,
                resolution_ms=HEADER_RESOLUTION_MS,
            )
        return HopShare.untimed("server", "no queue-proxy request-log line of this request")
    if i.model is None or not i.reached_model:
        return HopShare(
            "server",
            latency,
            "queue-proxy log: request-log latency (server and model together)",
            SourceKind.ACCESS_LOG,
            _line_evidence(queue),
            resolution_ms=QUEUE_RESOLUTION_MS,
        )
    return HopShare(
        "server",
        round(latency - i.model.ms, 3),
        "queue-proxy log − model: request-log latency - model server time",
        SourceKind.ACCESS_LOG,
        _line_evidence(queue),
        resolution_ms=QUEUE_RESOLUTION_MS,
    )


def _model(i: _Inputs) -> HopShare:
    if not i.reached_model:
        return HopShare.untimed("model", "the request did not reach a model")
    if i.model is None:
        return HopShare.untimed(
            "model",
            f"no kserve.trace line of the predictor during the run "
            f"({i.notes.get(Role.KSERVE_CONTAINER, 'no model server log')})",
        )
    model = i.model
    return HopShare(
        "model",
        round(model.ms, 3),
        model.source,
        model.kind,
        model.evidence,
        resolution_ms=0.001,
        per_request=model.per_request,
    )


def model_time(lines: RequestLines, logs: KLogs, requests: int) -> ModelTime | None:
    """The predictor's own time for a request: its `kserve.trace requestId:` line (per request); else the wall-time
    lines (`kserve.trace <route>: <s> [... 'time:wall']`, no id) the predictor wrote during the run: this request's
    own when the run sent one request and there is one line, else their mean."""
    line = lines.server_of("predictor")
    if line is not None:
        return ModelTime(
            round(line.total_ms, 3),
            "model server log: kserve.trace preprocess + explain + predict + postprocess ms",
            SourceKind.ACCESS_LOG,
            _line_evidence(line),
            per_request=True,
        )
    walls = logs.walls_of("predictor")
    if not walls:
        return None
    mean = sum(w.ms for w in walls) / len(walls)
    own = requests == 1 and len(walls) == 1
    evidence = tuple(Evidence(w.where, f"{w.route}: {w.ms / 1000.0:g} s wall") for w in walls[:3])
    source = (
        "model server log: kserve.trace wall time of the predict route (the run's only request)"
        if own
        else f"model server log: mean kserve.trace wall time over {len(walls)} predict lines of the run"
    )
    return ModelTime(round(mean, 3), source, SourceKind.ACCESS_LOG, evidence, per_request=own, samples=len(walls))


def _untimed_standard(component: str, reason: str) -> Callable[[_Inputs], HopShare]:
    return lambda _: HopShare.untimed(component, reason)


_SOURCES: dict[Hop, Callable[[_Inputs], HopShare]] = {
    Hop.EXTERNAL_IP: lambda i: hop1_external_ip(i.exchange),
    Hop.GATEWAY: _gateway,
    Hop.INGRESS: _gateway,
    Hop.KNATIVE_ROUTE: _knative_route,
    Hop.SERVICE: _untimed_standard(
        "Service", "resolved, not timed: kube-proxy's DNAT adds no measurable time and logs nothing"
    ),
    Hop.ACTIVATOR: _activator,
    Hop.QUEUE_PROXY: _queue_proxy,
    Hop.TRANSFORMER: _transformer,
    Hop.PREDICTOR_ROUTE: _predictor_route,
    Hop.SERVER: _server,
    Hop.POD: _server,
    Hop.MODEL: _model,
}


def _status(number: int, failure: Failure | None) -> HopStatus:
    if failure is None or number < failure.hop:
        return HopStatus.OK
    return HopStatus.FAILED if number == failure.hop else HopStatus.NOT_REACHED


def attribute(
    exchange: Exchange,
    path: KPath,
    logs: KLogs,
    failure: Failure | None,
    client_host: str | None,
    model: ModelTime | None = None,
) -> Attribution:
    """Hop timings of one exchange; `client_host` is the Host it was sent with."""
    lines = logs.of(exchange.request_id)
    ingress, entry, predictor = _classify(path, lines, client_host or path.isvc.host)
    model_line = model if model is not None else model_time(lines, logs, 1)
    reached = failure is None or failure.hop >= path.number(Hop.MODEL)
    inputs = _Inputs(
        exchange,
        path,
        lines,
        ingress,
        entry,
        predictor,
        lines.queue_of(path.isvc.entry_component),
        lines.queue_of("predictor") if path.isvc.transformer else None,
        model_line,
        reached,
        {role: f"searched {logs.describe(role)}" for role in Role},
        predictor is not None and predictor.where in logs.by_time,
    )
    rows: list[HopTiming] = []
    for number, key in enumerate(path.keys, start=1):
        share = _SOURCES[key](inputs)
        if failure is not None and number > failure.hop:
            share = HopShare.untimed(share.component, "the request did not reach this hop")
        path_hop = path.hop(key)
        timed = share.duration_ms is not None
        rows.append(
            HopTiming(
                hop=number,
                name=key.value,
                component=path_hop.component if path_hop is not None else share.component,
                duration_ms=share.duration_ms if timed else None,
                source=share.source if timed else "not timed",
                source_kind=share.kind if timed else SourceKind.NONE,
                evidence=share.evidence + (tuple(path_hop.evidence) if path_hop is not None else ()),
                untimed_reason=None if timed else share.untimed_reason,
                status=_status(number, failure),
                resolution_ms=share.resolution_ms,
                per_request=share.per_request,
            )
        )
    total = exchange.total_ms
    timed_sum = sum(row.duration_ms for row in rows if row.duration_ms is not None)
    unexplained = round(total - timed_sum, 3) if total is not None else None
    return Attribution(
        tuple(rows),
        total,
        unexplained,
        "client total minus the timed hops (client phases, the wire, time no log covers)",
    )
