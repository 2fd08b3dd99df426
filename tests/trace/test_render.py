"""The compact `request` waterfall (issue 14): the verdict and the slowest hop (or where the request died and why) in
the first two lines, at most 15 lines at 120 columns for a healthy request, no word broken at 80 columns, every 1 ms
source printed at its resolution and no negative milliseconds, evidence only with --evidence. Results are built the
way a run builds them: `attribute()` over an exchange, the ingress access-log line and a model time."""

from __future__ import annotations

import dataclasses
import re

import pytest

from mlops_trace.findings import CheckId, Evidence, Finding, Severity
from mlops_trace.parsers import nginx_access
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.attribution import ProbeEstimate, attribute
from mlops_trace.trace.record import ClientPhases, Failure, ModelTime, Protocol, SourceKind, TraceResult
from mlops_trace.trace.render import render_trace
from tests.trace.helpers import exchange, nginx_line

ROUTE = ":txn-baseline_1:"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _nginx(request_id: str, request_time: str, upstream: str, status: int = 200) -> Found:
    record = nginx_access.parse_line(32, nginx_line(request_id, request_time, upstream, status))
    assert record is not None
    return Found("logs/ingress-nginx/ingress-nginx-controller-6b9d8c7f5-m2n4p/controller.log:32", record.raw,
                 nginx=record)


def _trace(
    *,
    total_ms: float,
    header_ms: str,
    request_time: str,
    upstream_time: str,
    model_ms: float | None,
    probes: dict[int, ProbeEstimate] | None = None,
    per_request: bool = True,
) -> TraceResult:
    answer = exchange(
        200,
        {"x-seldon-route": ROUTE, "x-envoy-upstream-service-time": header_ms},
        total_ms=total_ms,
        phases=ClientPhases(dns_ms=0.025, connect_ms=0.286, send_ms=0.205, wait_ms=total_ms - 1.0, receive_ms=0.5),
    )
    model = None
    if model_ms is not None:
        label = "(this request only)" if per_request else "mean over 50 inferences (txn-baseline_1)"
        model = ModelTime(model_ms, f"MLServer metric model_infer_request_duration_sum delta {label}",
                          SourceKind.METRIC, (Evidence("http://127.0.0.1:37099/metrics", "sum +0.006645 s"),),
                          per_request=per_request)
    nginx = _nginx(answer.request_id, request_time, upstream_time)
    timing = attribute(answer, path=None, nginx=nginx, envoy=None, model=model, probes=probes)
    return TraceResult(answer, Protocol.REST, "experiment txn-ab", "txn-baseline_1", timing.total_ms,
                       timing.unexplained_ms, timing.unexplained_source, timing.hops, None, (), None)


def healthy() -> TraceResult:
    return _trace(total_ms=13.288, header_ms="10", request_time="0.012", upstream_time="0.011", model_ms=6.645,
                  probes={2: ProbeEstimate(0.938, "probe: ingress − envoy"), 4: ProbeEstimate(-1.502, "probe: envoy")})


def slow_model() -> TraceResult:
    return _trace(total_ms=31.9, header_ms="28", request_time="0.030", upstream_time="0.029", model_ms=26.31)


def missing_header() -> TraceResult:
    answer = exchange(404, {"server": "envoy", "content-length": "0"}, total_ms=2.4)
    failure = Failure(4, "no-route", "Envoy answered 404 (no route) for seldon-model: txn-ab (set by the Lua filter "
                      "from the path)", (Evidence(f"response to {answer.request_id}", "404, body '(empty body)'"),),
                      checks=("MT301",))
    finding = Finding(
        id=CheckId("MT301"), slug="seldon-model-header-missing", severity=Severity.CRITICAL, title="t",
        message="1 request(s) aimed at Experiment txn-ab did not carry `seldon-model: txn-ab.experiment`, the only "
        "value Envoy routes to the Experiment; without a header Envoy's Lua filter takes the URL name txn-ab, which "
        "no Model has, so Envoy answers 404",
        namespace="fraud", object="Experiment/txn-ab", evidence=(), playbook="envoy-404",
        fix="Send `seldon-model: txn-ab.experiment` with each request to txn-ab",
    )
    nginx = _nginx(answer.request_id, "0.002", "0.001", status=404)
    timing = attribute(answer, path=None, nginx=nginx, envoy=None, model=None, failure=failure)
    return TraceResult(answer, Protocol.REST, "model txn-ab", None, timing.total_ms, timing.unexplained_ms,
                       timing.unexplained_source, timing.hops, failure, (finding,), None)


SCENARIOS = {"healthy": healthy, "slow-model": slow_model, "missing-header": missing_header}


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def _tokens(text: str) -> set[str]:
    return set(text.split())


@pytest.mark.parametrize("name", SCENARIOS)
def test_at_120_columns_a_request_takes_at_most_15_lines(name: str) -> None:
    lines = _lines(render_trace(SCENARIOS[name](), width=120))
    assert len(lines) <= 15 if name != "missing-header" else len(lines) <= 20, "\n".join(lines)
    assert all(len(line) <= 120 for line in lines)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("evidence", [False, True])
def test_at_80_columns_no_word_is_broken(name: str, evidence: bool) -> None:
    result = SCENARIOS[name]()
    narrow = render_trace(result, width=80, evidence=evidence)
    wide_tokens = _tokens(render_trace(result, width=400, evidence=evidence))
    broken = [token for token in narrow.split() if token not in wide_tokens and set(token) - {"█", "·", "…"}]
    assert not broken, narrow
    if not evidence:  # evidence quotes paths longer than a line: they overflow rather than break
        assert all(len(line) <= 80 for line in _lines(narrow)), narrow


def test_the_slowest_hop_and_its_share_are_in_the_first_line() -> None:
    lines = _lines(render_trace(slow_model(), width=120))
    assert lines[0].startswith("200 OK · 31.9 ms · slowest: model (MLServer) 26.3 ms (82%)"), lines[0]
    healthy_first = _lines(render_trace(healthy(), width=80))[0]
    assert "slowest: model (MLServer) 6.64 ms (50%)" in healthy_first, healthy_first


def test_a_failed_request_names_its_hop_and_cause_in_the_first_two_lines() -> None:
    first, second = _lines(render_trace(missing_header(), width=80))[:2]
    assert first.startswith("404 Not Found · 2.40 ms · ✗ failed at hop 4 Seldon Envoy (no-route)")
    assert second.startswith("why: MT301 seldon-model-header-missing: 1 request(s) aimed at Experiment")
    assert len(second) <= 80


def test_one_millisecond_sources_print_at_their_resolution() -> None:
    text = render_trace(healthy(), width=120)
    rows = {line.split()[0]: line for line in _lines(text)[3:10]}
    # NGINX: 12 ms - 11 ms; Envoy: 11 ms - 10 ms; agent: 10 ms - 6.645 ms, all from 1 ms clocks.
    assert rows["2"].split()[3] == "1" and rows["4"].split()[3] == "1" and rows["6"].split()[5] == "3"
    assert rows["7"].split()[3] == "6.64" and rows["1"].split()[3] == "0.29"
    assert not re.search(r"\b\d+\.000\b|\b\d\.999\b", text)
    below = render_trace(_trace(total_ms=5.0, header_ms="3", request_time="0.004", upstream_time="0.004",
                                model_ms=3.4), width=120)
    assert " <1 " in below and not re.search(r"(?<![\w-])-\d", below)  # 3 - 3.4 ms is the header's rounding


def test_probes_and_evidence_only_with_evidence_and_never_negative() -> None:
    compact = render_trace(healthy(), width=120)
    assert "probe" not in compact and "controller.log" not in compact
    full = render_trace(healthy(), width=120, evidence=True)
    assert "probe: 0.94 ms" in full and "probe: ≈0 ms, below the probes' noise" in full
    assert "-1.502" not in full and "controller.log:32" in full
    assert "not timed: None" not in full
    assert all(line.count("not timed") <= 1 for line in _lines(full))


def test_time_no_source_explains_is_its_own_line() -> None:
    rows = {line.split()[0]: line for line in _lines(render_trace(healthy(), width=120))}
    assert rows["unexplained"].split()[1:3] == ["1.00", "8%"]  # 13.288 - (0.286 + 1 + 1 + 3.355 + 6.645)
    assert rows["total"].split()[1:3] == ["13.3", "100%"]


def test_a_run_mean_model_time_is_labelled_so() -> None:
    result = _trace(total_ms=13.0, header_ms="10", request_time="0.012", upstream_time="0.011", model_ms=6.0,
                    per_request=False)
    rows = {line.split()[0]: line for line in _lines(render_trace(result, width=120))}
    assert "MLServer metric (run mean)" in rows["7"] and "header − mean model (+queue)" in rows["6"]


def test_colour_changes_nothing_but_the_escapes() -> None:
    plain = render_trace(missing_header(), width=100)
    coloured = render_trace(missing_header(), width=100, color=True)
    assert coloured != plain and ANSI.sub("", coloured) == plain and "\x1b[" not in plain


def test_notes_of_failed_probes_wait_for_evidence() -> None:
    probe_note = "probe envoy (http://127.0.0.1:48475/v2/models/txn-ab/infer): 20 of 20 failed (404)"
    result = dataclasses.replace(missing_header(), notes=("payload from the model's metadata", probe_note))
    compact = render_trace(result, width=120)
    assert "payload from the model's metadata" in compact and "20 of 20 failed" not in compact
    assert "1 about the differential probes (-v shows them)" in compact
    assert "20 of 20 failed (404)" in render_trace(result, width=120, evidence=True)
