"""The values a trace is made of: one exchange with an endpoint, per-hop timings with their sources, a traced
request, and the summary of a run of many. Every duration is in milliseconds and names where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlops_trace.analysis.routing import STICKY_HEADER
from mlops_trace.findings import Evidence, Finding
from mlops_trace.snapshot.snapshot import RequestRecord

HOP_NAMES: Mapping[int, str] = {
    1: "external IP",
    2: "NGINX ingress",
    3: "Kubernetes Service",
    4: "Seldon Envoy",
    5: "experiment router",
    6: "server pod / agent",
    7: "model (MLServer)",
}


class Protocol(StrEnum):
    REST = "rest"
    GRPC = "grpc"


class SourceKind(StrEnum):
    """Where a duration came from."""

    CLIENT = "client"  # measured by our own client (TCP connect)
    ACCESS_LOG = "access-log"  # a log line of this very request, found by its request id
    HEADER = "header"  # a response header of this request
    METRIC = "metric"  # a metrics delta (MLServer's model_infer_request_duration)
    PROBE = "probe"  # differential probes: medians of direct requests to each hop's entry point
    NONE = "none"  # not timed; `untimed_reason` says why


class HopStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the request failed here
    NOT_REACHED = "not-reached"  # the request failed before this hop
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClientPhases:
    """What the client saw, from httpx's trace events (gRPC: connect and the call only). None: not measured."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    send_ms: float | None = None
    wait_ms: float | None = None
    receive_ms: float | None = None
    reused_connection: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "dns_ms": self.dns_ms,
            "connect_ms": self.connect_ms,
            "tls_ms": self.tls_ms,
            "send_ms": self.send_ms,
            "wait_ms": self.wait_ms,
            "receive_ms": self.receive_ms,
            "reused_connection": self.reused_connection,
        }


class ErrorKind(StrEnum):
    CONNECT = "connect"  # could not open a connection (refused, unreachable, DNS)
    TLS = "tls"
    TIMEOUT = "timeout"  # no complete answer within --timeout
    PROTOCOL = "protocol"  # the peer broke HTTP/2 or HTTP/1.1 framing
    GRPC = "grpc"  # a gRPC status other than OK


@dataclass(frozen=True)
class Exchange:
    """One request sent to one endpoint and what came back. Headers are lower-cased; the body is cut at 4 KiB."""

    entry: str  # "ingress", "envoy", "agent", "mlserver"
    url: str
    request_id: str
    traceparent: str
    started_at: float  # wall-clock seconds (time.time()) when the request was sent
    status: int | None
    headers: Mapping[str, str]
    body: bytes
    total_ms: float | None
    phases: ClientPhases
    http_version: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    grpc_status: str | None = None  # gRPC status name ("OK", "UNIMPLEMENTED", ...)
    grpc_message: str | None = None

    @classmethod
    def failed(
        cls,
        *,
        entry: str,
        url: str,
        request_id: str,
        traceparent: str,
        started_at: float,
        total_ms: float | None,
        phases: ClientPhases,
        kind: ErrorKind,
        message: str,
    ) -> Exchange:
        """A request that got no answer: no status, no headers, no body, and why."""
        return cls(
            entry=entry,
            url=url,
            request_id=request_id,
            traceparent=traceparent,
            started_at=started_at,
            status=None,
            headers={},
            body=b"",
            total_ms=total_ms,
            phases=phases,
            error=message,
            error_kind=kind,
        )

    @property
    def ok(self) -> bool:
        if self.error_kind is not None and self.error_kind is not ErrorKind.GRPC:
            return False
        if self.grpc_status is not None:
            return self.grpc_status == "OK"
        return self.status is not None and 200 <= self.status < 300

    @property
    def route(self) -> str | None:
        """The `x-seldon-route` Envoy answered with (which weighted cluster served the request)."""
        return self.headers.get(STICKY_HEADER)

    @property
    def upstream_service_time_ms(self) -> float | None:
        value = self.headers.get("x-envoy-upstream-service-time")
        if value is None:
            return None
        try:
            return float(value.split(",")[0].strip())
        except ValueError:
            return None

    def outcome(self) -> str:
        """`200`, `404`, `grpc UNIMPLEMENTED`, `timeout`…: one word for tables and error breakdowns."""
        if self.grpc_status is not None and self.error_kind in (None, ErrorKind.GRPC):
            return f"grpc {self.grpc_status}"
        if self.error_kind is not None:
            return self.error_kind.value
        return str(self.status)


@dataclass(frozen=True)
class HopTiming:
    """One row of the waterfall: a hop, the component that served it, its duration (or why there is none)."""

    hop: int
    name: str
    component: str
    duration_ms: float | None
    source: str  # words naming the source: "ingress access log: $request_time - $upstream_response_time"
    source_kind: SourceKind
    evidence: tuple[Evidence, ...] = ()
    untimed_reason: str | None = None
    probe_ms: float | None = None  # the differential-probe estimate of the same hop, when probes ran
    probe_source: str | None = None
    status: HopStatus = HopStatus.OK
    resolution_ms: float | None = None  # the coarsest input's resolution (1 ms for Envoy's header)
    # False: the duration is (or is derived from) a run mean, the same for every request of the run (MLServer's
    # metric over several inferences, a probe median): percentiles over the run mean nothing for it.
    per_request: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "name": self.name,
            "component": self.component,
            "duration_ms": self.duration_ms,
            "source": self.source,
            "source_kind": self.source_kind.value,
            "evidence": [item.to_dict() for item in self.evidence],
            "untimed_reason": self.untimed_reason,
            "probe_ms": self.probe_ms,
            "probe_source": self.probe_source,
            "status": self.status.value,
            "resolution_ms": self.resolution_ms,
            "per_request": self.per_request,
        }


@dataclass(frozen=True)
class Failure:
    """Where a request failed and what its answer said there. `code` names the answer's shape (`no-route`,
    `ingress-no-match`, `agent-cannot-serve`); `checks` are the ids of the catalog's findings whose evidence cites
    this request: why it failed."""

    hop: int
    code: str
    summary: str
    evidence: tuple[Evidence, ...]
    checks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "code": self.code,
            "summary": self.summary,
            "evidence": [item.to_dict() for item in self.evidence],
            "checks": list(self.checks),
        }


@dataclass(frozen=True)
class TraceResult:
    """One request followed through the hops."""

    exchange: Exchange
    protocol: Protocol
    target: str  # "experiment ab-test" / "model iris"
    served_model: str | None  # `<model>_<version>` that answered, from the body or the route header
    total_ms: float | None
    unexplained_ms: float | None
    unexplained_source: str
    hops: tuple[HopTiming, ...]
    failure: Failure | None
    findings: tuple[Finding, ...]
    path_source: str | None  # the Snapshot the path was read from, or None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exchange.ok

    def to_dict(self) -> dict[str, Any]:
        exchange = self.exchange
        return {
            "request_id": exchange.request_id,
            "traceparent": exchange.traceparent,
            "url": exchange.url,
            "protocol": self.protocol.value,
            "http_version": exchange.http_version,
            "target": self.target,
            "status": exchange.status if exchange.grpc_status is None else exchange.grpc_status,
            "ok": self.ok,
            "error": exchange.error,
            "route": exchange.route,
            "served_model": self.served_model,
            "total_ms": self.total_ms,
            "unexplained_ms": self.unexplained_ms,
            "unexplained_source": self.unexplained_source,
            "client_phases": exchange.phases.to_dict(),
            "hops": [hop.to_dict() for hop in self.hops],
            "failure": self.failure.to_dict() if self.failure is not None else None,
            "findings": [finding.to_dict() for finding in self.findings],
            "path_source": self.path_source,
            "response_headers": dict(exchange.headers),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class HopStats:
    """Percentiles of one hop over a run; `samples` counts the requests that had a duration for it."""

    hop: int
    name: str
    component: str
    source: str
    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    untimed_reason: str | None = None
    probe_ms: float | None = None
    mean: float | None = None  # unlike percentiles, means of hops add up to the mean of their sum

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "name": self.name,
            "component": self.component,
            "source": self.source,
            "samples": self.samples,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "mean": self.mean,
            "untimed_reason": self.untimed_reason,
            "probe_ms": self.probe_ms,
        }


@dataclass(frozen=True)
class SplitLabels:
    """What the split's columns hold, for the renderers: Seldon's Experiment and Envoy by default, a KServe canary's
    InferenceService spec and Knative Route when `trace.kserve.canary` builds it."""

    candidate: str = "candidate"
    expected: str = "experiment"
    envoy: str = "envoy"
    title: str = "A/B split"

    def to_dict(self) -> dict[str, str]:
        return {"candidate": self.candidate, "expected": self.expected, "envoy": self.envoy, "title": self.title}


@dataclass(frozen=True)
class SplitReport:
    """The A/B split three ways: the Experiment's weights, Envoy's weights, and what the answers said."""

    expected: Mapping[str, float]  # candidate → share (0–1), from the Experiment
    envoy: Mapping[str, float]  # candidate → share, from Envoy's weighted clusters
    observed: Mapping[str, int]  # candidate → requests it answered
    routes: Mapping[str, int]  # raw x-seldon-route value → count
    intervals: Mapping[str, tuple[float, float]]  # candidate → 95 % Wilson interval of its observed share
    reference: str  # "envoy" or "experiment": what `p_value` tested the observations against
    method: str
    p_value: float | None
    consistent: bool | None
    envoy_matches_experiment: bool | None
    sequential: str | None = None  # the SPRT decision with --until-decided
    expected_source: str = ""
    envoy_source: str = ""
    labels: SplitLabels = field(default_factory=SplitLabels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expected": dict(self.expected),
            "envoy": dict(self.envoy),
            "observed": dict(self.observed),
            "routes": dict(self.routes),
            "intervals": {key: list(value) for key, value in self.intervals.items()},
            "reference": self.reference,
            "method": self.method,
            "p_value": self.p_value,
            "consistent": self.consistent,
            "envoy_matches_experiment": self.envoy_matches_experiment,
            "sequential": self.sequential,
            "expected_source": self.expected_source,
            "envoy_source": self.envoy_source,
            "reference_labels": self.labels.to_dict(),
        }


@dataclass(frozen=True)
class RunSummary:
    """A run of `--count` requests."""

    count: int
    succeeded: int
    duration_s: float
    latency: Mapping[str, float | int] | None  # LatencySummary.to_dict() of client totals
    hops: tuple[HopStats, ...]
    errors: Mapping[str, Mapping[str, int]]  # hop name → outcome → count
    split: SplitReport | None
    findings: tuple[Finding, ...]
    first: TraceResult | None  # the first request, traced in full
    notes: tuple[str, ...] = ()
    concurrency: int = 1
    target_rate: float | None = None
    records: tuple[RequestRecord, ...] = field(default=(), repr=False)  # the exchanges as the checks read them

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "succeeded": self.succeeded,
            "success_rate": round(self.success_rate, 6),
            "duration_s": round(self.duration_s, 3),
            "rate_rps": round(self.count / self.duration_s, 1) if self.duration_s > 0 else None,
            "concurrency": self.concurrency,
            "target_rate": self.target_rate,
            "latency_ms": dict(self.latency) if self.latency is not None else None,
            "hops": [hop.to_dict() for hop in self.hops],
            "errors": {hop: dict(counts) for hop, counts in self.errors.items()},
            "split": self.split.to_dict() if self.split is not None else None,
            "findings": [finding.to_dict() for finding in self.findings],
            "trace": self.first.to_dict() if self.first is not None else None,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelTime:
    """Time the model itself took (MLServer's own measurement, or a probe)."""

    ms: float
    source: str
    kind: SourceKind
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    per_request: bool = False  # True: exactly this request's time; False: a mean over `samples` inferences
    samples: int = 1
