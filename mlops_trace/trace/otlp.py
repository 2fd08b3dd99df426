"""Export a traced request as OpenTelemetry spans over OTLP/HTTP JSON (`POST <endpoint>/v1/traces`), so it opens
in Jaeger or Tempo: one client span (the traceparent we sent) and one child span per hop.

The hop spans are reconstructed, not recorded by the components: each starts where the time before it ends, in
the order the request crossed them, and lasts the hop's attributed duration (untimed hops are zero-length and say
why). Every span carries the source of its number as an attribute.
"""

from __future__ import annotations

from typing import Any

from mlops_trace import __version__
from mlops_trace.errors import ClusterError
from mlops_trace.trace.ids import random_span_id
from mlops_trace.trace.record import TraceResult

SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
STATUS_OK = 1
STATUS_ERROR = 2


def _attribute(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def spans_document(result: TraceResult, service_name: str = "mlops-trace") -> dict[str, Any]:
    """The OTLP/JSON `ExportTraceServiceRequest` of one traced request."""
    exchange = result.exchange
    trace_id = exchange.traceparent.split("-")[1]
    client_span = exchange.traceparent.split("-")[2]
    start_ns = int(exchange.started_at * 1e9)
    total_ns = int((result.total_ms or 0.0) * 1e6)
    client = {
        "traceId": trace_id,
        "spanId": client_span,
        "name": f"POST {result.target}" if result.protocol.value == "rest" else f"ModelInfer {result.target}",
        "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + total_ns),
        "attributes": [
            _attribute("http.request.header.x-request-id", exchange.request_id),
            _attribute("url.full", exchange.url),
            _attribute("mlops_trace.status", exchange.outcome()),
            _attribute("mlops_trace.route", exchange.route or ""),
            _attribute(
                "mlops_trace.unexplained_ms", result.unexplained_ms if result.unexplained_ms is not None else 0.0
            ),
        ],
        "status": {"code": STATUS_OK if result.ok else STATUS_ERROR},
    }
    spans = [client]
    cursor = start_ns
    for hop in result.hops:
        duration_ns = int((hop.duration_ms or 0.0) * 1e6) if (hop.duration_ms or 0.0) > 0 else 0
        attributes = [
            _attribute("mlops_trace.hop", hop.hop),
            _attribute("mlops_trace.component", hop.component),
            _attribute("mlops_trace.source", hop.source),
            _attribute("mlops_trace.reconstructed", True),
            _attribute("mlops_trace.status", hop.status.value),
        ]
        if hop.duration_ms is not None:
            attributes.append(_attribute("mlops_trace.duration_ms", hop.duration_ms))
        if hop.untimed_reason:
            attributes.append(_attribute("mlops_trace.untimed_reason", hop.untimed_reason))
        if hop.probe_ms is not None:
            attributes.append(_attribute("mlops_trace.probe_ms", hop.probe_ms))
        spans.append(
            {
                "traceId": trace_id,
                "spanId": random_span_id(),
                "parentSpanId": client_span,
                "name": f"hop {hop.hop} {hop.name}",
                "kind": SPAN_KIND_INTERNAL,
                "startTimeUnixNano": str(cursor),
                "endTimeUnixNano": str(cursor + duration_ns),
                "attributes": attributes,
                "status": {"code": STATUS_ERROR if hop.status.value == "failed" else STATUS_OK},
            }
        )
        cursor += duration_ns
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attribute("service.name", service_name)]},
                "scopeSpans": [{"scope": {"name": "mlops-trace", "version": __version__}, "spans": spans}],
            }
        ]
    }


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` → `http://collector:4318/v1/traces` (a full `/v1/traces` URL is kept)."""
    trimmed = endpoint.rstrip("/")
    return trimmed if trimmed.endswith("/v1/traces") else f"{trimmed}/v1/traces"


def export(results: list[TraceResult], endpoint: str, timeout: float = 5.0) -> int:
    """POST the spans of `results`; returns the number of spans sent. ClusterError naming the endpoint on failure."""
    import httpx

    documents = [spans_document(result) for result in results]
    merged = {"resourceSpans": [rs for doc in documents for rs in doc["resourceSpans"]]}
    url = traces_url(endpoint)
    try:
        response = httpx.post(url, json=merged, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        raise ClusterError(f"--otlp {url}: {exc}") from exc
    if response.status_code >= 300:
        raise ClusterError(f"--otlp {url}: HTTP {response.status_code} {response.text[:200]}")
    return sum(len(scope["spans"]) for doc in documents for rs in doc["resourceSpans"] for scope in rs["scopeSpans"])
