"""The `request --count` text (issue 14): percentiles only for hops whose every request has its own value, `mean`
alone for a hop timed by a run mean (never p50 = p95 = p99), the unexplained time on its own line, a split with no
successful answer said in words, and no `not timed: None`."""

from __future__ import annotations

import dataclasses

from mlops_trace.trace.kserve import canary
from mlops_trace.trace.record import HopStats, RunSummary, SplitReport
from mlops_trace.trace.render import render_summary
from mlops_trace.trace.split import Weights, build_report
from tests.trace.test_render import _trace, missing_header

WEIGHTS = Weights({"baseline-predictor": 0.7, "enhanced-predictor": 0.3}, "kube/seldon.yaml#4")
MEAN_SOURCE = "MLServer metric model_infer_request_duration: mean over 50 inferences (txn-baseline_1)"


def _hops() -> tuple[HopStats, ...]:
    return (
        HopStats(1, "external IP", "Service", "client: TCP connect (timed around the socket's connect)", 1,
                 0.328, 0.328, 0.328, mean=0.328),
        HopStats(2, "NGINX ingress", "Ingress", "ingress access log: $request_time - $upstream_response_time", 50,
                 0.0, 0.0, 1.0, mean=0.1),
        HopStats(3, "Kubernetes Service", "Service", "not timed", 0, None, None, None,
                 untimed_reason="resolved, not timed: kube-proxy's DNAT adds no measurable time and logs nothing"),
        HopStats(4, "Seldon Envoy", "Envoy", "ingress $upstream_response_time - x-envoy-upstream-service-time header",
                 50, 1.0, 1.0, 2.0, mean=1.2),
        HopStats(5, "experiment router", "router", "not timed", 0, None, None, None, untimed_reason=None),
        HopStats(6, "server pod / agent", "agent", f"x-envoy-upstream-service-time - model time ({MEAN_SOURCE})",
                 50, 0.0, 1.85, 3.849, mean=0.9),
        HopStats(7, "model (MLServer)", "model", MEAN_SOURCE, 50, 1.15, 1.15, 1.15, mean=1.15),
    )


def _summary(succeeded: int = 50, split: SplitReport | None = None) -> RunSummary:
    first = _trace(total_ms=3.6, header_ms="2", request_time="0.003", upstream_time="0.003", model_ms=1.15,
                   per_request=False)
    latency = {"count": succeeded, "p50": 1.807, "p95": 4.463, "p99": 5.507, "min": 1.392, "max": 5.507,
               "mean": 3.5} if succeeded else None
    return RunSummary(count=50, succeeded=succeeded, duration_s=0.13, latency=latency, hops=_hops(), errors={},
                      split=split, findings=(), first=first)


def _rows(text: str) -> dict[str, str]:
    return {line.split()[0]: line for line in text.splitlines() if line.strip()}


def test_a_run_mean_is_shown_as_a_mean_and_percentiles_only_where_requests_have_their_own() -> None:
    text = render_summary(_summary(), width=120)
    rows = _rows(text)
    assert rows["7"].split()[3:6] == ["1.15", "50", "MLServer"]  # mean, n, source: no p50/p95/p99
    assert "1.15   1.15" not in rows["7"]
    assert rows["6"].split()[5:7] == ["<1", "50"]  # the agent's share subtracts that mean: a mean too
    assert rows["4"].split()[3:8] == ["1", "1", "2", "1", "50"]  # 1 ms clocks: whole milliseconds
    assert rows["2"].split()[3:8] == ["<1", "<1", "1", "<1", "50"]
    assert rows["1"].split()[3:5] == ["0.33", "1"]  # one connect: a value, no percentiles
    assert not any(token.endswith(".000") for token in text.split())
    assert text.splitlines()[1].startswith("slowest hop: Seldon Envoy mean 1 ms")


def test_unexplained_is_its_own_line() -> None:
    rows = _rows(render_summary(_summary(), width=120))
    # 3.5 - (0.328 * 1 + 0.1 * 50 + 1.2 * 50 + 0.9 * 50 + 1.15 * 50) / 50
    assert rows["unexplained"].split()[1] == "0.14"
    assert rows["total"].split()[1:6] == ["1.81", "4.46", "5.51", "3.50", "50"]


def test_untimed_hops_never_say_none() -> None:
    text = render_summary(_summary(), width=80, evidence=True)
    assert "None" not in text
    assert _rows(render_summary(_summary(), width=120))["5"].endswith("no successful request timed it")
    assert all(line.count("not timed") <= 1 for line in text.splitlines())


def test_a_split_without_a_successful_answer_says_so() -> None:
    split = build_report({}, WEIGHTS, WEIGHTS)
    text = render_summary(_summary(succeeded=0, split=split), width=80)
    assert "no successful answer named a candidate" in text
    assert "0 (0.0%)" not in text and "0.0–100.0%" not in text


def test_a_split_with_answers_has_its_table() -> None:
    split = build_report({":baseline-predictor_1:": 36, ":enhanced-predictor_1:": 14}, WEIGHTS, WEIGHTS)
    text = render_summary(_summary(split=split), width=80)
    assert "baseline-predictor       70.0%   70.0%    36 (72.0%)" in text
    assert "split vs envoy weights: consistent" in text


def test_at_80_columns_no_word_is_broken_and_the_first_request_is_only_under_evidence() -> None:
    summary = _summary()
    narrow = render_summary(summary, width=80)
    wide = set(render_summary(summary, width=400).split())
    assert [token for token in narrow.split() if token not in wide] == []
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert len(narrow.splitlines()) <= 20 and "-v traces it in full" in narrow
    assert "first request, traced in full" in render_summary(summary, width=80, evidence=True)


def test_a_failed_first_request_does_not_turn_a_run_mean_into_percentiles() -> None:
    summary = dataclasses.replace(_summary(), first=missing_header())
    rows = _rows(render_summary(summary, width=120))
    assert rows["7"].split()[3:6] == ["1.15", "50", "MLServer"]
    assert rows["6"].split()[5:7] == ["<1", "50"] and rows["4"].split()[3:6] == ["1", "1", "2"]


def test_a_kserve_canary_split_is_labelled_by_what_its_columns_hold() -> None:
    spec = Weights({"fraud-predictor-00002": 0.2, "fraud-predictor-00001": 0.8},
                   "kube/isvc.yaml#0 InferenceService/fraud .spec.predictor.canaryTrafficPercent")
    route = Weights({"fraud-predictor-00001": 1.0}, "kube/routes.yaml#1 Route/fraud-predictor .status.traffic")
    split = canary.build({"fraud-predictor-00001": 30}, spec, route)
    header = next(line for line in render_summary(_summary(split=split), width=120).splitlines()
                  if "observed" in line and "95% CI" in line)
    assert header.split()[:3] == ["revision", "isvc", "spec"] and header.split()[3] == "route"
    assert "experiment" not in header and "envoy" not in header
    assert split.to_dict()["reference_labels"] == {
        "candidate": "revision", "expected": "isvc spec", "envoy": "route", "title": "canary split"}
    empty = render_summary(_summary(succeeded=0, split=canary.build({}, spec, route)), width=120)
    words = " ".join(empty.split())
    assert "canary split: no successful answer named a revision" in words
    assert "isvc spec fraud-predictor-00001 80.0%" in words and "A/B split" not in words
    # Seldon's split keeps its labels
    assert build_report({}, WEIGHTS, WEIGHTS).to_dict()["reference_labels"]["expected"] == "experiment"
