"""Differential probes: the same request sent straight to each hop's entry point (ingress, Envoy, agent proxy,
MLServer), on warm keep-alive connections, in interleaved rounds so drift hits every entry alike. The median of an
entry minus the median of the next one in is the share of the hop between them:

    NGINX = ingress − Envoy;  Envoy = Envoy − agent;  agent = agent − MLServer;  model = MLServer (its HTTP included)

Each probe is pinned to the model version the traced request reached: Envoy's entries get the request's
`x-seldon-route` (so an experiment's sticky route takes them to that one cluster), the agent gets
`seldon-internal-model: <m>_<v>` as Envoy would set it, MLServer is called at `/v2/models/<m>_<v>/infer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlops_trace.trace.attribution import ProbeEstimate
from mlops_trace.trace.ids import IdSource
from mlops_trace.trace.rest import TlsOptions, make_client, send
from mlops_trace.analysis.stats import median
from mlops_trace.analysis.routing import INTERNAL_MODEL, STICKY_HEADER
from mlops_trace.trace.target import Target

ORDER = ("ingress", "envoy", "agent", "mlserver")
_HOP_OF_DIFFERENCE = {("ingress", "envoy"): 2, ("envoy", "agent"): 4, ("agent", "mlserver"): 6}


@dataclass(frozen=True)
class EntryPoint:
    name: str  # one of ORDER
    url: str  # the full URL of the inference call at this entry
    headers: Mapping[str, str]


@dataclass(frozen=True)
class ProbeResult:
    entry: str
    url: str
    samples: tuple[float, ...]  # client totals of the successful probes, ms
    failures: int
    failure_example: str | None

    @property
    def median_ms(self) -> float | None:
        value = median(self.samples)
        return round(value, 3) if value is not None else None


def entry_points(
    target: Target, urls: Mapping[str, str], served_model: str | None, route_header: str | None
) -> list[EntryPoint]:
    """Entry points with a base URL in `urls` (`{"envoy": "http://127.0.0.1:9000", ...}`), each with the path and
    headers that reach the same model version as the traced request."""
    base_headers = dict(target.headers)
    if route_header and target.is_experiment:
        base_headers[STICKY_HEADER] = route_header
    points: list[EntryPoint] = []
    for name in ORDER:
        base = urls.get(name)
        if not base:
            continue
        base = base.rstrip("/")
        if name == "ingress":
            points.append(EntryPoint(name, f"{base}{target.infer_path}", {**base_headers, "host": target.authority}))
        elif name == "envoy":
            points.append(
                EntryPoint(name, f"{base}/v2/models/{target.name}/infer", {**base_headers, "host": target.authority})
            )
        elif served_model is None:
            continue  # the agent and MLServer need the model version, known only from an answer
        elif name == "agent":
            points.append(EntryPoint(name, f"{base}/v2/models/{target.name}/infer", {INTERNAL_MODEL: served_model}))
        else:
            points.append(EntryPoint(name, f"{base}/v2/models/{served_model}/infer", {}))
    return points


def run_probes(
    points: Sequence[EntryPoint],
    body: bytes,
    *,
    rounds: int,
    tls: TlsOptions,
    timeout: float,
    ids: IdSource,
    http2: bool = False,
) -> list[ProbeResult]:
    """`rounds` timed probes per entry after one untimed warm-up each (it opens the connection)."""
    samples: dict[str, list[float]] = {point.name: [] for point in points}
    failures: dict[str, int] = {point.name: 0 for point in points}
    examples: dict[str, str] = {}
    clients = {point.name: make_client(http2=http2, tls=tls, timeout=timeout) for point in points}
    try:
        for round_index in range(rounds + 1):
            for point in points:
                rid = ids.next()
                headers = request_headers_for(point, rid.request_id, rid.traceparent)
                exchange = send(
                    clients[point.name],
                    entry=point.name,
                    method="POST",
                    url=point.url,
                    headers=headers,
                    body=body,
                    request_id=rid.request_id,
                    traceparent=rid.traceparent,
                )
                if round_index == 0:
                    continue
                if exchange.ok and exchange.total_ms is not None:
                    samples[point.name].append(exchange.total_ms)
                else:
                    failures[point.name] += 1
                    examples.setdefault(point.name, exchange.outcome())
    finally:
        for client in clients.values():
            client.close()
    return [
        ProbeResult(point.name, point.url, tuple(samples[point.name]), failures[point.name], examples.get(point.name))
        for point in points
    ]


def request_headers_for(point: EntryPoint, request_id: str, traceparent: str) -> dict[str, str]:
    headers = {"content-type": "application/json", **point.headers}
    headers["x-request-id"] = request_id
    headers["traceparent"] = traceparent
    return headers


def estimates(results: Sequence[ProbeResult]) -> dict[int, ProbeEstimate]:
    """Per-hop differences of adjacent entry medians (hop 7: MLServer's own median)."""
    by_entry = {result.entry: result for result in results if result.median_ms is not None}
    found: dict[int, ProbeEstimate] = {}
    for (outer, inner), hop in _HOP_OF_DIFFERENCE.items():
        if outer in by_entry and inner in by_entry:
            a, b = by_entry[outer], by_entry[inner]
            assert a.median_ms is not None and b.median_ms is not None
            found[hop] = ProbeEstimate(
                round(a.median_ms - b.median_ms, 3),
                f"probe: median {outer} {a.median_ms} ms − median {inner} {b.median_ms} ms "
                f"({len(a.samples)}/{len(b.samples)} probes)",
            )
    mlserver = by_entry.get("mlserver")
    if mlserver is not None and mlserver.median_ms is not None:
        found[7] = ProbeEstimate(
            mlserver.median_ms,
            f"probe: median of {len(mlserver.samples)} direct MLServer requests (its HTTP handling included)",
        )
    return found
