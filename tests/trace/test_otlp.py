"""OTLP/HTTP JSON export: one client span and one span per hop, posted to /v1/traces."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from mlops_trace.errors import ClusterError
from mlops_trace.trace.attribution import attribute
from mlops_trace.trace.otlp import export, spans_document, traces_url
from mlops_trace.trace.record import Protocol, TraceResult
from tests.trace.helpers import exchange


def _result() -> TraceResult:
    answer = exchange(200, {"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "4"}, total_ms=10.0)
    attribution = attribute(answer, path=None, nginx=None, envoy=None, model=None)
    return TraceResult(
        answer,
        Protocol.REST,
        "experiment ab",
        "a_1",
        attribution.total_ms,
        attribution.unexplained_ms,
        attribution.unexplained_source,
        attribution.hops,
        None,
        (),
        None,
    )


def test_document_has_a_span_per_hop_under_our_traceparent() -> None:
    document = spans_document(_result())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == 8
    client, hops = spans[0], spans[1:]
    assert client["traceId"] == "a" * 32 and client["spanId"] == "b" * 16
    assert all(span["parentSpanId"] == "b" * 16 and span["traceId"] == "a" * 32 for span in hops)
    assert [span["name"].split()[1] for span in hops] == ["1", "2", "3", "4", "5", "6", "7"]
    for span in hops:
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) >= int(client["startTimeUnixNano"])
        keys = {attribute["key"] for attribute in span["attributes"]}
        assert "mlops_trace.source" in keys
    json.dumps(document)


def test_traces_url() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"


@respx.mock
def test_export_posts_json_and_reports_failures() -> None:
    route = respx.post("http://collector:4318/v1/traces").mock(return_value=httpx.Response(200, json={}))
    assert export([_result()], "http://collector:4318") == 8
    body = json.loads(route.calls.last.request.content)
    assert body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] == "mlops-trace"
    respx.post("http://down:4318/v1/traces").mock(return_value=httpx.Response(503, text="busy"))
    with pytest.raises(ClusterError, match="503"):
        export([_result()], "http://down:4318")
