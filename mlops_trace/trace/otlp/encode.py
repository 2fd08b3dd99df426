"""A traced request as OTLP spans, encoded with the official protobuf messages (opentelemetry-proto): one client span
(the traceparent we sent) and one child span per hop.

The hop spans are reconstructed, not recorded by the components: each starts where the time before it ends, in the
order the request crossed them, and lasts the hop's attributed duration (untimed hops are zero-length and say why).
Every span carries the source of its number as an attribute. A batch is one `ExportTraceServiceRequest` with one
ResourceSpans (our resource) and one ScopeSpans holding the spans of many requests, as an SDK would send them.

`http/json` is the same message in OTLP's JSON form: trace and span ids as hex, not base64, and enums as integers
(opentelemetry-specification protocol/otlp.md, "JSON Protobuf Encoding").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from mlops_trace import __version__
from mlops_trace.trace.ids import random_span_id
from mlops_trace.trace.record import HopStatus, Protocol, TraceResult

SCOPE_NAME = "mlops-trace"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_OK = Status.StatusCode.STATUS_CODE_OK
_ERROR = Status.StatusCode.STATUS_CODE_ERROR


def _put(attributes: Any, key: str, value: object) -> None:
    """Append one attribute in place (building messages and copying them in costs twice as much)."""
    if value is None:
        return
    item = attributes.add()
    item.key = key
    if isinstance(value, bool):
        item.value.bool_value = value
    elif isinstance(value, int):
        item.value.int_value = value
    elif isinstance(value, float):
        item.value.double_value = value
    else:
        item.value.string_value = str(value)


def trace_ids(result: TraceResult) -> tuple[str, str]:
    """(trace id, client span id) of the traceparent the request carried."""
    _, trace_id, span_id, _ = result.exchange.traceparent.split("-")
    return trace_id, span_id


def span_count(result: TraceResult) -> int:
    return 1 + len(result.hops)


class Batch:
    """One `ExportTraceServiceRequest` being filled: our resource and scope, the spans of each request added."""

    def __init__(self, resource: Sequence[tuple[str, str]]) -> None:
        self.request = ExportTraceServiceRequest()
        resource_spans = self.request.resource_spans.add()
        for key, value in resource:
            _put(resource_spans.resource.attributes, key, value)
        self._scope = resource_spans.scope_spans.add()
        self._scope.scope.name = SCOPE_NAME
        self._scope.scope.version = __version__
        self.spans = 0
        self.requests = 0

    def add(self, result: TraceResult) -> None:
        """The client span and the hop spans of one traced request."""
        exchange = result.exchange
        trace_hex, client_hex = trace_ids(result)
        trace_id, client_id = bytes.fromhex(trace_hex), bytes.fromhex(client_hex)
        start_ns = int(exchange.started_at * 1e9)
        failure = result.failure
        client = self._scope.spans.add()
        client.trace_id = trace_id
        client.span_id = client_id
        client.name = f"POST {result.target}" if result.protocol is Protocol.REST else f"ModelInfer {result.target}"
        client.kind = Span.SpanKind.SPAN_KIND_CLIENT
        client.start_time_unix_nano = start_ns
        client.end_time_unix_nano = start_ns + int((result.total_ms or 0.0) * 1e6)
        attributes = client.attributes
        _put(attributes, "http.request.header.x-request-id", exchange.request_id)
        _put(attributes, "url.full", exchange.url)
        _put(attributes, "http.response.status_code", exchange.status)
        _put(attributes, "rpc.grpc.status", exchange.grpc_status)
        _put(attributes, "mlops_trace.status", exchange.outcome())
        _put(attributes, "mlops_trace.route", exchange.route or "")
        _put(attributes, "mlops_trace.unexplained_ms", result.unexplained_ms or 0.0)
        if failure is not None:
            _put(attributes, "mlops_trace.failure.hop", failure.hop)
            _put(attributes, "mlops_trace.failure.code", failure.code)
        client.status.code = _OK if result.ok else _ERROR
        cursor = start_ns
        for hop in result.hops:
            duration_ns = int(hop.duration_ms * 1e6) if hop.duration_ms is not None and hop.duration_ms > 0 else 0
            span = self._scope.spans.add()
            span.trace_id = trace_id
            span.span_id = bytes.fromhex(random_span_id())
            span.parent_span_id = client_id
            span.name = f"hop {hop.hop} {hop.name}"
            span.kind = Span.SpanKind.SPAN_KIND_INTERNAL
            span.start_time_unix_nano = cursor
            span.end_time_unix_nano = cursor + duration_ns
            attributes = span.attributes
            _put(attributes, "mlops_trace.hop", hop.hop)
            _put(attributes, "mlops_trace.component", hop.component)
            _put(attributes, "mlops_trace.source", hop.source)
            _put(attributes, "mlops_trace.reconstructed", True)
            _put(attributes, "mlops_trace.status", hop.status.value)
            _put(attributes, "mlops_trace.duration_ms", hop.duration_ms)
            _put(attributes, "mlops_trace.untimed_reason", hop.untimed_reason or None)
            _put(attributes, "mlops_trace.probe_ms", hop.probe_ms)
            span.status.code = _ERROR if hop.status is HopStatus.FAILED else _OK
            cursor += duration_ns
        self.spans += 1 + len(result.hops)
        self.requests += 1


def to_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: the proto3 JSON mapping with ids in hex and enums as integers."""
    document = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in _ID_FIELDS:
                    if name in span:
                        span[name] = _base64_to_hex(span[name])
    return json.dumps(document, separators=(",", ":")).encode()


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()
