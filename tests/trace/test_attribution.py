"""Per-hop durations: each from its source, the rest as unexplained, sums that add up."""

from __future__ import annotations

import pytest

from mlops_trace.parsers import envoy_access, nginx_access
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.attribution import ProbeEstimate, attribute
from mlops_trace.trace.record import ClientPhases, Failure, HopStatus, ModelTime, SourceKind
from tests.trace.helpers import exchange, nginx_line

ENVOY_LINE = (
    '[2025-11-17T09:34:02.120Z] "POST /v2/models/txn-ab/infer HTTP/1.1" 200 0 - 498 210 6 4 "10.20.30.41" '
    '"mlops-trace" "mt-abcd-000001" "ml-api.example.internal" "10.244.1.52:9001"'
)


def _nginx(request_time: str, upstream: str) -> Found:
    record = nginx_access.parse_line(12, nginx_line("mt-abcd-000001", request_time, upstream))
    assert record is not None
    return Found("logs/ingress/controller.log:12", record.raw, nginx=record)


def test_every_timed_hop_names_its_source_and_totals_agree() -> None:
    answer = exchange(200, {"x-seldon-route": ":txn-baseline_1:", "x-envoy-upstream-service-time": "4"}, total_ms=10.0)
    model = ModelTime(2.5, "MLServer metric model_infer_request_duration_sum delta", SourceKind.METRIC)
    result = attribute(answer, path=None, nginx=_nginx("0.008", "0.006"), envoy=None, model=model)
    by_hop = {hop.hop: hop for hop in result.hops}
    assert [hop.hop for hop in result.hops] == [1, 2, 3, 4, 5, 6, 7]
    assert by_hop[1].duration_ms == 0.5 and by_hop[1].source_kind is SourceKind.CLIENT
    assert by_hop[2].duration_ms == pytest.approx(2.0) and by_hop[2].source_kind is SourceKind.ACCESS_LOG
    assert by_hop[2].evidence[0].where == "logs/ingress/controller.log:12"
    assert by_hop[3].duration_ms is None and "DNAT" in (by_hop[3].untimed_reason or "")
    assert by_hop[4].duration_ms == pytest.approx(2.0)
    assert "x-envoy-upstream-service-time" in by_hop[4].source
    assert by_hop[5].duration_ms is None and "hop 4" in (by_hop[5].untimed_reason or "")
    assert by_hop[6].duration_ms == pytest.approx(1.5)
    assert by_hop[7].duration_ms == 2.5 and by_hop[7].source_kind is SourceKind.METRIC
    timed = [hop for hop in result.hops if hop.duration_ms is not None]
    assert len(timed) == 5 and all(hop.source for hop in timed)
    assert result.unexplained_ms == pytest.approx(10.0 - 0.5 - 8.0)
    assert sum(hop.duration_ms or 0.0 for hop in result.hops) + (result.unexplained_ms or 0) == pytest.approx(10.0)


def test_without_model_time_the_header_covers_agent_and_model_together() -> None:
    answer = exchange(200, {"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "4"})
    result = attribute(answer, path=None, nginx=_nginx("0.008", "0.006"), envoy=None, model=None)
    hop6, hop7 = result.hops[5], result.hops[6]
    assert hop6.duration_ms == 4.0 and "together" in hop6.source
    assert hop7.duration_ms is None and "inside hop 6" in (hop7.untimed_reason or "")


def test_missing_ingress_line_says_where_it_looked_and_envoy_log_fills_in() -> None:
    answer = exchange(200, {"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "4"})
    record = envoy_access.parse_line(3, ENVOY_LINE)
    assert record is not None and record.duration_ms == 6.0
    result = attribute(
        answer,
        path=None,
        nginx=None,
        envoy=Found("envoy.log:3", ENVOY_LINE, envoy=record),
        model=None,
        ingress_log_note="searched logs/x.log",
    )
    assert result.hops[1].duration_ms is None
    assert "searched logs/x.log" in (result.hops[1].untimed_reason or "")
    assert result.hops[3].duration_ms == pytest.approx(2.0) and "Envoy access log" in result.hops[3].source


def test_envoy_answering_itself_gets_the_whole_upstream_time() -> None:
    answer = exchange(404, {"server": "envoy"}, total_ms=3.0)
    failure = Failure(4, "MT302", "no route", ())
    result = attribute(answer, path=None, nginx=_nginx("0.002", "0.001"), envoy=None, model=None, failure=failure)
    by_hop = {hop.hop: hop for hop in result.hops}
    assert by_hop[4].duration_ms == pytest.approx(1.0) and by_hop[4].status is HopStatus.FAILED
    assert by_hop[6].duration_ms is None and by_hop[6].status is HopStatus.NOT_REACHED
    assert by_hop[7].untimed_reason == "the request did not reach a model"


def test_reused_connection_and_probe_estimates() -> None:
    answer = exchange(
        200,
        {"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "4"},
        phases=ClientPhases(reused_connection=True),
    )
    probes = {2: ProbeEstimate(1.8, "probe: ingress - envoy"), 7: ProbeEstimate(2.2, "probe: mlserver")}
    result = attribute(answer, path=None, nginx=_nginx("0.008", "0.006"), envoy=None, model=None, probes=probes)
    assert result.hops[0].duration_ms is None and "reused" in (result.hops[0].untimed_reason or "")
    assert result.hops[1].probe_ms == 1.8 and result.hops[6].probe_ms == 2.2
