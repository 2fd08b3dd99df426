"""Per-hop durations of one request, each from a named source, following DESIGN.md's table:

1. external IP — the client's TCP connect time;
2. NGINX — its access-log line of this request: `$request_time - $upstream_response_time`;
3. Service — resolved by the kernel (kube-proxy DNAT), not timed;
4. Envoy — the ingress's upstream time minus `x-envoy-upstream-service-time` (Envoy's own access-log line,
   `%DURATION%` minus the upstream service time, when the ingress line is missing);
5. experiment router — inside Envoy, part of hop 4;
6. server pod / agent — `x-envoy-upstream-service-time` minus the model time;
7. model — MLServer's metrics (or, without them, a direct probe of MLServer).

The total is the client's; what the timed hops do not add up to is `unexplained` (DNS, TLS, sending and receiving
on the client side, the wire), never spread over the hops. Differential-probe estimates sit beside each hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops_trace.findings import Evidence
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


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _status(hop: int, failure: Failure | None) -> HopStatus:
    if failure is None:
        return HopStatus.OK
    if hop == failure.hop:
        return HopStatus.FAILED
    return HopStatus.NOT_REACHED if hop > failure.hop else HopStatus.OK


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

    def component(hop: int, fallback: str) -> str:
        if path is not None and hop in path.hops:
            return path.hops[hop].component
        return fallback

    def path_evidence(hop: int) -> tuple[Evidence, ...]:
        return tuple(path.hops[hop].evidence) if path is not None and hop in path.hops else ()

    def row(
        hop: int,
        fallback: str,
        duration: float | None,
        source: str,
        kind: SourceKind,
        evidence: tuple[Evidence, ...] = (),
        reason: str | None = None,
        resolution: float | None = None,
    ) -> HopTiming:
        probe = probes.get(hop)
        return HopTiming(
            hop=hop,
            name=HOP_NAMES[hop],
            component=component(hop, fallback),
            duration_ms=None if duration is None else round(duration, 3),
            source=source if duration is not None else "not timed",
            source_kind=kind if duration is not None else SourceKind.NONE,
            evidence=evidence + path_evidence(hop),
            untimed_reason=reason if duration is None else None,
            probe_ms=probe.ms if probe is not None else None,
            probe_source=probe.source if probe is not None else None,
            status=_status(hop, failure),
            resolution_ms=resolution,
        )

    rows: list[HopTiming] = []
    phases = exchange.phases
    # Hop 1: TCP connect.
    if phases.connect_ms is not None:
        connect_source = (
            "client: gRPC channel ready (TCP connect and HTTP/2 preface)"
            if exchange.url.startswith("grpc://")
            else "client: TCP connect (timed around the socket's connect)"
        )
        rows.append(
            row(
                1,
                exchange.url,
                phases.connect_ms,
                connect_source,
                SourceKind.CLIENT,
                (Evidence("client", f"TCP connect took {phases.connect_ms} ms"),),
            )
        )
    else:
        reason = (
            "the connection was reused: no TCP connect for this request"
            if phases.reused_connection
            else "no connect phase was measured"
        )
        rows.append(row(1, exchange.url, None, "", SourceKind.NONE, reason=reason))

    record = nginx.nginx if nginx is not None else None
    nginx_total = _ms(record.request_time) if record is not None else None
    upstream = _ms(record.upstream_response_time) if record is not None else None
    ust = exchange.upstream_service_time_ms
    envoy_record = envoy.envoy if envoy is not None else None
    if ust is None and envoy_record is not None and envoy_record.upstream_service_time_ms is not None:
        ust = envoy_record.upstream_service_time_ms

    # Hop 2: NGINX.
    if record is not None and nginx_total is not None and nginx is not None:
        share = nginx_total - (upstream or 0.0)
        what = (
            f"$request_time={record.request_time} $upstream_response_time="
            f"{record.upstream_response_time if record.upstream_response_time is not None else '-'} "
            f"upstream={','.join(record.upstream_addrs) or '-'} status={record.status}"
        )
        rows.append(
            row(
                2,
                "ingress",
                share,
                "ingress access log: $request_time - $upstream_response_time",
                SourceKind.ACCESS_LOG,
                (Evidence(nginx.where, what),),
                resolution=NGINX_RESOLUTION_MS,
            )
        )
    else:
        rows.append(
            row(
                2,
                "ingress",
                None,
                "",
                SourceKind.NONE,
                reason=f"request id {exchange.request_id} not in the ingress access log ({ingress_log_note})",
            )
        )

    # Hop 3: the Service.
    rows.append(
        row(
            3,
            "Service",
            None,
            "",
            SourceKind.NONE,
            reason="resolved, not timed: kube-proxy's DNAT adds no measurable time and logs nothing",
        )
    )

    # Model time first: hops 4 and 6 are differences against it.
    model_ms = model.ms if model is not None else None
    reached_model = exchange.route is not None and (failure is None or failure.hop >= 7)

    # Hop 4: Envoy.
    envoy_share: float | None = None
    envoy_source = ""
    envoy_evidence: list[Evidence] = []
    if upstream is not None and ust is not None:
        envoy_share = upstream - ust
        envoy_source = "ingress $upstream_response_time - x-envoy-upstream-service-time header"
        envoy_evidence.append(Evidence(f"response to {exchange.request_id}", f"x-envoy-upstream-service-time: {ust:g}"))
    elif upstream is not None and ust is None and failure is not None and failure.hop <= 5:
        envoy_share = upstream  # Envoy answered itself (no route, no cluster): all the upstream time is Envoy's
        envoy_source = "ingress $upstream_response_time (Envoy answered without an upstream)"
    elif envoy_record is not None and envoy_record.duration_ms is not None and envoy is not None:
        envoy_share = envoy_record.duration_ms - (ust or 0.0)
        envoy_source = "Envoy access log: %DURATION% - upstream service time"
    if envoy_record is not None and envoy is not None:
        envoy_evidence.append(Evidence(envoy.where, envoy_record.raw[:300]))
    if envoy_share is not None:
        rows.append(
            row(
                4,
                "Envoy",
                envoy_share,
                envoy_source,
                SourceKind.ACCESS_LOG,
                tuple(envoy_evidence),
                resolution=HEADER_RESOLUTION_MS,
            )
        )
    else:
        missing = []
        if upstream is None:
            missing.append("the ingress upstream time")
        if ust is None:
            missing.append("x-envoy-upstream-service-time (no upstream answered)")
        rows.append(row(4, "Envoy", None, "", SourceKind.NONE, reason="needs " + " and ".join(missing)))

    # Hop 5: inside Envoy.
    rows.append(
        row(
            5,
            "router",
            None,
            "",
            SourceKind.NONE,
            reason="inside hop 4: Envoy's router picks the weighted cluster; its time is part of Envoy's share",
        )
    )

    # Hops 6 and 7.
    model_in_hop6 = False
    if ust is not None and reached_model:
        if model_ms is not None:
            rows.append(
                row(
                    6,
                    "agent",
                    ust - model_ms,
                    f"x-envoy-upstream-service-time - model time ({model.source})" if model else "",
                    SourceKind.HEADER,
                    resolution=HEADER_RESOLUTION_MS,
                )
            )
        else:
            model_in_hop6 = True
            rows.append(
                row(
                    6,
                    "agent",
                    ust,
                    "x-envoy-upstream-service-time (agent, MLServer and model together)",
                    SourceKind.HEADER,
                    resolution=HEADER_RESOLUTION_MS,
                )
            )
    elif ust is not None:
        rows.append(
            row(
                6,
                "agent",
                ust,
                "x-envoy-upstream-service-time (the request failed at or after the agent)",
                SourceKind.HEADER,
                resolution=HEADER_RESOLUTION_MS,
            )
        )
    else:
        rows.append(
            row(
                6,
                "agent",
                None,
                "",
                SourceKind.NONE,
                reason="no x-envoy-upstream-service-time: Envoy did not get an answer from an agent",
            )
        )
    if model is not None and reached_model:
        rows.append(row(7, "model", model.ms, model.source, model.kind, model.evidence))
    else:
        if model_in_hop6:
            reason = "no MLServer metrics endpoint and no direct probe: the model's time is inside hop 6"
        elif not reached_model:
            reason = "the request did not reach a model"
        else:
            reason = "no MLServer metrics endpoint and no direct probe"
        rows.append(row(7, "model", None, "", SourceKind.NONE, reason=reason))

    total = exchange.total_ms
    timed = sum(item.duration_ms for item in rows if item.duration_ms is not None)
    unexplained = round(total - timed, 3) if total is not None else None
    parts = [
        f"{name} {value} ms"
        for name, value in (("tls", phases.tls_ms), ("send", phases.send_ms), ("receive", phases.receive_ms))
        if value
    ]
    unexplained_source = "client total minus the timed hops" + (
        f" (client phases inside it: {', '.join(parts)}; the rest is the wire and time no log covers)" if parts else ""
    )
    return Attribution(tuple(rows), total, unexplained, unexplained_source)
