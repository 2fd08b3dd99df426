"""Per-hop durations of one request, each from a named source, following DESIGN.md's table:

1. external IP — the client's TCP connect time;
2. NGINX — its access-log line of this request: `$request_time - $upstream_response_time`;
3. Service — resolved by the kernel (kube-proxy DNAT), not timed;
4. Envoy — the ingress's upstream time minus `x-envoy-upstream-service-time` (Envoy's own access-log line,
   `%DURATION%` minus the upstream service time, when the ingress line is missing);
5. experiment router — inside Envoy, part of hop 4;
6. server pod / agent — `x-envoy-upstream-service-time` minus the model time;
7. model — MLServer's metrics (or, without them, a direct probe of MLServer).

Each hop has one function (`hop1_external_ip` … `hop7_model`) that takes only the inputs that hop reads and returns
a `HopShare`: its duration and source, or why it has none. `attribute()` derives the shared inputs once, asks the
seven functions, and adds what is common to every row (the component and evidence the request path names, the probe
estimate, the status against the failure).

The total is the client's; what the timed hops do not add up to is `unexplained` (DNS, TLS, sending and receiving
on the client side, the wire), never spread over the hops. Differential-probe estimates sit beside each hop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.path import RequestPath
from mlops_trace.trace.record import (
    HOP_NAMES,
    Exchange,
    Failure,
    HopStatus,
    HopTiming,
    ModelTime,
    SourceKind,
)

HEADER_RESOLUTION_MS = 1.0  # Envoy writes x-envoy-upstream-service-time in whole milliseconds
NGINX_RESOLUTION_MS = 1.0  # $request_time and $upstream_response_time have millisecond resolution


@dataclass(frozen=True)
class ProbeEstimate:
    ms: float
    source: str


@dataclass(frozen=True)
class Attribution:
    hops: tuple[HopTiming, ...]
    total_ms: float | None
    unexplained_ms: float | None
    unexplained_source: str


@dataclass(frozen=True)
class HopShare:
    """One hop's own account: its duration and the source it came from, or (duration None) why it has none.

    `component` names what served the hop when the request path does not (the path's name wins)."""

    component: str
    duration_ms: float | None
    source: str = ""
    kind: SourceKind = SourceKind.NONE
    evidence: tuple[Evidence, ...] = ()
    untimed_reason: str | None = None
    resolution_ms: float | None = None
    per_request: bool = True  # False: a run mean (or derived from one), not this request's own time

    @classmethod
    def untimed(cls, component: str, reason: str) -> HopShare:
        return cls(component, None, untimed_reason=reason)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


# --- the seven hops ------------------------------------------------------------------------------------------------


def hop1_external_ip(exchange: Exchange) -> HopShare:
    """The client's TCP connect (gRPC: the channel becoming ready), or why there was none."""
    phases = exchange.phases
    if phases.connect_ms is None:
        reason = (
            "the connection was reused: no TCP connect for this request"
            if phases.reused_connection
            else "no connect phase was measured"
        )
        return HopShare.untimed(exchange.url, reason)
    source = (
        "client: gRPC channel ready (TCP connect and HTTP/2 preface)"
        if exchange.url.startswith("grpc://")
        else "client: TCP connect (timed around the socket's connect)"
    )
    return HopShare(
        exchange.url,
        phases.connect_ms,
        source,
        SourceKind.CLIENT,
        (Evidence("client", f"TCP connect took {phases.connect_ms} ms"),),
    )


def hop2_ingress(request_id: str, nginx: Found | None, ingress_log_note: str) -> HopShare:
    """NGINX's own time from its access-log line: `$request_time - $upstream_response_time`."""
    record = nginx.nginx if nginx is not None else None
    request_ms = _ms(record.request_time) if record is not None else None
    if nginx is None or record is None or request_ms is None:
        return HopShare.untimed(
            "ingress", f"request id {request_id} not in the ingress access log ({ingress_log_note})"
        )
    upstream_ms = _ms(record.upstream_response_time)
    what = (
        f"$request_time={record.request_time} $upstream_response_time="
        f"{record.upstream_response_time if record.upstream_response_time is not None else '-'} "
        f"upstream={','.join(record.upstream_addrs) or '-'} status={record.status}"
    )
    return HopShare(
        "ingress",
        request_ms - (upstream_ms or 0.0),
        "ingress access log: $request_time - $upstream_response_time",
        SourceKind.ACCESS_LOG,
        (Evidence(nginx.where, what),),
        resolution_ms=NGINX_RESOLUTION_MS,
    )


def hop3_service() -> HopShare:
    """The Service is resolved, never timed: kube-proxy's DNAT happens in the kernel."""
    return HopShare.untimed(
        "Service", "resolved, not timed: kube-proxy's DNAT adds no measurable time and logs nothing"
    )


def hop4_envoy(
    request_id: str,
    ingress_upstream_ms: float | None,
    upstream_service_time_ms: float | None,
    envoy: Found | None,
    failure: Failure | None,
) -> HopShare:
    """Envoy's own time: the ingress's upstream time minus the agent's (the header), or, without the ingress line,
    Envoy's access log `%DURATION%` minus the upstream service time."""
    envoy_record = envoy.envoy if envoy is not None else None
    share: float | None = None
    source = ""
    evidence: list[Evidence] = []
    if ingress_upstream_ms is not None and upstream_service_time_ms is not None:
        share = ingress_upstream_ms - upstream_service_time_ms
        source = "ingress $upstream_response_time - x-envoy-upstream-service-time header"
        evidence.append(
            Evidence(f"response to {request_id}", f"x-envoy-upstream-service-time: {upstream_service_time_ms:g}")
        )
    elif ingress_upstream_ms is not None and failure is not None and failure.hop <= 5:
        share = ingress_upstream_ms  # Envoy answered itself (no route, no cluster): all the upstream time is Envoy's
        source = "ingress $upstream_response_time (Envoy answered without an upstream)"
    elif envoy_record is not None and envoy_record.duration_ms is not None:
        share = envoy_record.duration_ms - (upstream_service_time_ms or 0.0)
        source = "Envoy access log: %DURATION% - upstream service time"
    if share is None:
        missing = []
        if ingress_upstream_ms is None:
            missing.append("the ingress upstream time")
        if upstream_service_time_ms is None:
            missing.append("x-envoy-upstream-service-time (no upstream answered)")
        return HopShare.untimed("Envoy", "needs " + " and ".join(missing))
    if envoy is not None and envoy_record is not None:
        evidence.append(Evidence(envoy.where, evidence_line(envoy_record.raw)))
    return HopShare("Envoy", share, source, SourceKind.ACCESS_LOG, tuple(evidence), resolution_ms=HEADER_RESOLUTION_MS)


def hop5_router() -> HopShare:
    """The experiment router runs inside Envoy: its time is part of hop 4's."""
    return HopShare.untimed(
        "router", "inside hop 4: Envoy's router picks the weighted cluster; its time is part of Envoy's share"
    )


def hop6_agent(upstream_service_time_ms: float | None, model: ModelTime | None, reached_model: bool) -> HopShare:
    """The agent's time: the header (what Envoy waited for upstream) minus the model's own time; without a model
    time, or when the request stopped before the model, the whole header."""
    if upstream_service_time_ms is None:
        return HopShare.untimed("agent", "no x-envoy-upstream-service-time: Envoy did not get an answer from an agent")
    if not reached_model:
        source = "x-envoy-upstream-service-time (the request failed at or after the agent)"
        duration = upstream_service_time_ms
    elif model is None:
        source = "x-envoy-upstream-service-time (agent, MLServer and model together)"
        duration = upstream_service_time_ms
    else:
        source = f"x-envoy-upstream-service-time - model time ({model.source})"
        duration = upstream_service_time_ms - model.ms
    per_request = model is None or not reached_model or model.per_request
    return HopShare(
        "agent", duration, source, SourceKind.HEADER, resolution_ms=HEADER_RESOLUTION_MS, per_request=per_request
    )


def hop7_model(model: ModelTime | None, reached_model: bool, upstream_service_time_ms: float | None) -> HopShare:
    """The model's own time (MLServer's metrics or a direct probe), when the request reached a model."""
    if model is not None and reached_model:
        return HopShare("model", model.ms, model.source, model.kind, model.evidence, per_request=model.per_request)
    if not reached_model:
        reason = "the request did not reach a model"
    elif upstream_service_time_ms is not None:  # hop 6 then took the whole header, model included
        reason = "no MLServer metrics endpoint and no direct probe: the model's time is inside hop 6"
    else:
        reason = "no MLServer metrics endpoint and no direct probe"
    return HopShare.untimed("model", reason)


# --- composing them ------------------------------------------------------------------------------------------------


def _upstream_service_time(exchange: Exchange, envoy: Found | None) -> float | None:
    """`x-envoy-upstream-service-time` from the response, or from Envoy's access-log line when the response lacks it."""
    if exchange.upstream_service_time_ms is not None:
        return exchange.upstream_service_time_ms
    envoy_record = envoy.envoy if envoy is not None else None
    return envoy_record.upstream_service_time_ms if envoy_record is not None else None


def _status(hop: int, failure: Failure | None) -> HopStatus:
    if failure is None:
        return HopStatus.OK
    if hop == failure.hop:
        return HopStatus.FAILED
    return HopStatus.NOT_REACHED if hop > failure.hop else HopStatus.OK


def _timing(
    hop: int,
    share: HopShare,
    path: RequestPath | None,
    probe: ProbeEstimate | None,
    failure: Failure | None,
) -> HopTiming:
    """A hop's share as a waterfall row, with what the request path, the probes and the failure say of that hop."""
    path_hop = path.hops.get(hop) if path is not None else None
    timed = share.duration_ms is not None
    return HopTiming(
        hop=hop,
        name=HOP_NAMES[hop],
        component=path_hop.component if path_hop is not None else share.component,
        duration_ms=None if share.duration_ms is None else round(share.duration_ms, 3),
        source=share.source if timed else "not timed",
        source_kind=share.kind if timed else SourceKind.NONE,
        evidence=share.evidence + (tuple(path_hop.evidence) if path_hop is not None else ()),
        untimed_reason=None if timed else share.untimed_reason,
        probe_ms=probe.ms if probe is not None else None,
        probe_source=probe.source if probe is not None else None,
        status=_status(hop, failure),
        resolution_ms=share.resolution_ms,
        per_request=share.per_request,
    )


def _unexplained(exchange: Exchange, rows: Sequence[HopTiming]) -> tuple[float | None, str]:
    """The client's total minus the timed hops, and words naming the client phases that sit inside it."""
    total = exchange.total_ms
    timed = sum(item.duration_ms for item in rows if item.duration_ms is not None)
    unexplained = round(total - timed, 3) if total is not None else None
    phases = exchange.phases
    parts = [
        f"{name} {value} ms"
        for name, value in (("tls", phases.tls_ms), ("send", phases.send_ms), ("receive", phases.receive_ms))
        if value
    ]
    source = "client total minus the timed hops" + (
        f" (client phases inside it: {', '.join(parts)}; the rest is the wire and time no log covers)" if parts else ""
    )
    return unexplained, source


def attribute(
    exchange: Exchange,
    *,
    path: RequestPath | None,
    nginx: Found | None,
    envoy: Found | None,
    model: ModelTime | None,
    probes: Mapping[int, ProbeEstimate] | None = None,
    failure: Failure | None = None,
    ingress_log_note: str = "",
    envoy_log_note: str = "",
) -> Attribution:
    """Hop timings of one exchange. `*_log_note` say why a log line is missing (which files were searched)."""
    probes = probes or {}
    nginx_record = nginx.nginx if nginx is not None else None
    ingress_upstream_ms = _ms(nginx_record.upstream_response_time) if nginx_record is not None else None
    upstream_service_time_ms = _upstream_service_time(exchange, envoy)
    reached_model = exchange.route is not None and (failure is None or failure.hop >= 7)
    shares = (
        hop1_external_ip(exchange),
        hop2_ingress(exchange.request_id, nginx, ingress_log_note),
        hop3_service(),
        hop4_envoy(exchange.request_id, ingress_upstream_ms, upstream_service_time_ms, envoy, failure),
        hop5_router(),
        hop6_agent(upstream_service_time_ms, model, reached_model),
        hop7_model(model, reached_model, upstream_service_time_ms),
    )
    rows = tuple(_timing(hop, share, path, probes.get(hop), failure) for hop, share in enumerate(shares, start=1))
    unexplained, unexplained_source = _unexplained(exchange, rows)
    return Attribution(rows, exchange.total_ms, unexplained, unexplained_source)
