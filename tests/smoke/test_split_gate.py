"""Issue 14: `smoke` printed PASS, "every candidate within 5 points", for a split 11 points off, because the gate
failed only when a candidate's whole 95 % interval lay outside target ± tolerance. A run of the reference stack's
70/30 Experiment answering 59/41 over 50 requests (intervals from the same `build_report` a run uses) must FAIL,
and the text must not claim the candidates are within the tolerance."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_trace.findings import Report
from mlops_trace.smoke.gates import GateResult, GateStatus, split_gate
from mlops_trace.smoke.render import render_smoke
from mlops_trace.smoke.report import SmokeReport
from mlops_trace.trace.split import Weights, build_report

WEIGHTS = Weights({"baseline-predictor": 0.7, "enhanced-predictor": 0.3}, "kube/seldon.yaml#4")


def _summary(baseline: int, enhanced: int) -> dict[str, Any]:
    routes = {":baseline-predictor_1:": baseline, ":enhanced-predictor_1:": enhanced}
    split = build_report(routes, WEIGHTS, WEIGHTS).to_dict()
    return {"count": baseline + enhanced, "succeeded": baseline + enhanced, "split": split}


def _gate(baseline: int, enhanced: int) -> GateResult:
    return split_gate(_summary(baseline, enhanced), 0.05, False)


def test_a_split_eleven_points_off_fails_even_when_the_interval_is_wide() -> None:
    gate = _gate(59 * 50 // 100, 50 - 59 * 50 // 100)  # 29/21: 58 % against 70 %
    assert gate.status is GateStatus.FAIL
    assert gate.measured == pytest.approx(0.12)
    assert "within" not in gate.detail
    assert "baseline-predictor 58.0% (95% interval" in gate.detail and "(not proven)" in gate.detail
    assert "raise --count or use --until-decided" in gate.detail
    smoke = SmokeReport(source="stack", report=Report("stack", (), ()), gates=(gate,), request=_summary(29, 21),
                        target="experiment financial-ab-test-experiment")
    text = render_smoke(smoke, "text")
    assert "  FAIL  split" in text and "result: FAIL (exit 1)" in text
    assert "PASS  split" not in text


def test_a_split_the_data_prove_off_says_so() -> None:
    gate = _gate(150, 150)
    assert gate.status is GateStatus.FAIL and "(not proven)" not in gate.detail and "raise --count" not in gate.detail


@pytest.mark.parametrize(("baseline", "enhanced"), [(70, 30), (37, 13), (334, 166)])
def test_a_split_within_the_tolerance_passes_and_says_so(baseline: int, enhanced: int) -> None:
    gate = _gate(baseline, enhanced)
    assert gate.status is GateStatus.PASS, gate.detail
    assert gate.measured is not None and gate.measured <= 0.05
    assert "every candidate's observed share within 5 points" in gate.detail


def test_the_boundary_is_the_stated_tolerance() -> None:
    assert _gate(65, 35).status is GateStatus.PASS  # exactly 5 points off
    assert _gate(64, 36).status is GateStatus.FAIL  # 6 points off
