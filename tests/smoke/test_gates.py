"""Gates, baselines, merging the request run's findings, and the smoke report in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.errors import InputError, UsageError
from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Evidence, Finding, Report, Severity
from mlops_trace.smoke import baseline as baselines
from mlops_trace.smoke.gates import GateResult, GateSettings, GateStatus, request_gates, split_gate
from mlops_trace.smoke.render import render_smoke
from mlops_trace.smoke.report import SmokeReport, could_not_run


def _summary(count: int = 200, succeeded: int = 200, p95: float = 12.0, p99: float = 20.0,
             split: dict[str, Any] | None = None, hops: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "count": count,
        "succeeded": succeeded,
        "latency_ms": {"count": succeeded, "p50": 5.0, "p95": p95, "p99": p99},
        "hops": hops if hops is not None else [
            {"hop": 4, "name": "Seldon Envoy", "p95": 2.0, "samples": succeeded},
            {"hop": 7, "name": "model (MLServer)", "p95": 6.0, "samples": succeeded},
            {"hop": 3, "name": "Kubernetes Service", "p95": None, "samples": 0},
        ],
        "split": split,
    }


def _split(observed: dict[str, int], expected: dict[str, float], intervals: dict[str, list[float]],
           sequential: str | None = None) -> dict[str, Any]:
    return {"observed": observed, "expected": expected, "envoy": expected, "intervals": intervals,
            "sequential": sequential}


def _by_name(gates: list[GateResult]) -> dict[str, GateResult]:
    return {gate.name: gate for gate in gates}


def test_success_and_latency_gates() -> None:
    settings = GateSettings(min_success=0.99, max_p95_ms=10.0, max_p99_ms=50.0)
    gates = _by_name(request_gates(_summary(succeeded=197), settings, is_experiment=False))
    assert gates["min-success"].status is GateStatus.FAIL and gates["min-success"].measured == pytest.approx(0.985)
    assert gates["max-p95"].status is GateStatus.FAIL and "12.0 ms (objective 10 ms)" in gates["max-p95"].detail
    assert gates["max-p99"].status is GateStatus.PASS
    assert "split" not in gates
    none_timed = _by_name(request_gates({"count": 5, "succeeded": 0, "latency_ms": None}, settings, False))
    assert none_timed["max-p95"].status is GateStatus.FAIL and none_timed["max-p95"].measured is None


def test_split_gate_fails_when_a_share_is_beyond_the_tolerance() -> None:
    target = {"a": 0.7, "b": 0.3}
    close = _split({"a": 67, "b": 33}, target, {"a": [0.57, 0.76], "b": [0.24, 0.43]})
    assert split_gate({"split": close}, 0.05, False).status is GateStatus.PASS
    noisy = _split({"a": 64, "b": 36}, target, {"a": [0.54, 0.73], "b": [0.27, 0.46]})
    noisy_gate = split_gate({"split": noisy}, 0.05, False)
    assert noisy_gate.status is GateStatus.FAIL and "raise --count" in noisy_gate.detail
    stale = _split({"a": 150, "b": 150}, target, {"a": [0.44, 0.56], "b": [0.44, 0.56]})
    gate = split_gate({"split": stale}, 0.05, False)
    assert gate.status is GateStatus.FAIL and gate.measured == pytest.approx(0.2)
    assert "a 50.0% (95% interval 44.0-56.0%) vs 70.0% ± 5" in gate.detail and "raise --count" not in gate.detail
    stray = _split({"a": 70, "b": 25, "c": 5}, target, {"a": [0.6, 0.78], "b": [0.17, 0.34], "c": [0.02, 0.11]})
    assert "c answered 5 requests but has no weight" in split_gate({"split": stray}, 0.05, False).detail


def test_split_gate_with_the_sequential_test() -> None:
    target = {"a": 0.7, "b": 0.3}
    intervals = {"a": [0.6, 0.8], "b": [0.2, 0.4]}
    assert split_gate({"split": _split({"a": 70, "b": 30}, target, intervals, "consistent")}, 0.05, True).passed
    undecided = split_gate({"split": _split({"a": 70, "b": 30}, target, intervals, "continue")}, 0.05, True)
    assert undecided.status is GateStatus.FAIL and "raise --count" in undecided.detail
    assert split_gate({"split": None}, 0.05, False).status is GateStatus.SKIP
    unknown = {"observed": {"a": 3}, "expected": {}, "envoy": {}, "intervals": {}}
    assert split_gate({"split": unknown}, 0.05, False).status is GateStatus.SKIP


def test_baseline_round_trip_and_regressions(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    baselines.save(baselines.from_summary(_summary(), "experiment x"), path)
    stored = baselines.load(path)
    assert set(stored.hops) == {"total", "4", "7"}
    slower = baselines.from_summary(_summary(p95=12.5, hops=[
        {"hop": 4, "name": "Seldon Envoy", "p95": 2.9, "samples": 100},  # +45 % but within 20 % + 1 ms
        {"hop": 7, "name": "model (MLServer)", "p95": 30.0, "samples": 100},  # regression
        {"hop": 6, "name": "server pod / agent", "p95": 1.0, "samples": 100},  # new
    ]), "experiment x")
    gates = _by_name(baselines.compare(stored, slower, margin=0.2, floor_ms=1.0))
    assert gates["baseline total p95"].status is GateStatus.PASS
    assert gates["baseline hop 4 Seldon Envoy p95"].status is GateStatus.PASS
    model = gates["baseline hop 7 model (MLServer) p95"]
    assert model.status is GateStatus.FAIL and model.threshold == pytest.approx(8.2) and "+400%" in model.detail
    assert gates["baseline hop 6 server pod / agent p95"].status is GateStatus.SKIP
    gone = baselines.compare(stored, baselines.from_summary(_summary(hops=[]), "x"), 0.2, 1.0)
    assert {g.name: g.status for g in gone}["baseline hop 7 model (MLServer) p95"] is GateStatus.SKIP


def test_bad_baselines(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        baselines.load(tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": 1, "findings": []}))
    with pytest.raises(InputError, match="not a smoke baseline"):
        baselines.load(other)
    with pytest.raises(UsageError):
        baselines.save(baselines.from_summary({"latency_ms": None, "hops": []}, "x"), tmp_path / "empty.json")


def _finding(check: str, message: str, severity: Severity = Severity.WARNING) -> Finding:
    return Finding(CheckId(check), "slug", severity, "title", message, "ns", "Experiment/x",
                   (Evidence("kube/x.yaml", "what"),), "traffic-not-splitting", "fix")


def _report() -> Report:
    return Report(
        source="bundle",
        findings=(_finding("MT303", "doctor saw it"),),
        checks=(CheckResult(CheckId("MT303"), "envoy-split-mismatch", CheckStatus.FAIL, "1 finding(s)"),
                CheckResult(CheckId("MT301"), "seldon-model-header-missing", CheckStatus.PASS),
                CheckResult(CheckId("MT401"), "latency-slo", CheckStatus.SKIP, "no Prometheus")),
    )


def _smoke(gates: tuple[GateResult, ...], report: Report | None = None, fail_on: Severity = Severity.WARNING,
           ) -> SmokeReport:
    return SmokeReport(source="bundle", report=report or Report("bundle", (), ()), gates=gates, fail_on=fail_on,
                       request=_summary(), target="http://127.0.0.1:1/v2/models/x/infer (experiment x, rest)")


PASSING = GateResult("min-success", GateStatus.PASS, 1.0, 0.99, "200 of 200", "share")
FAILING = GateResult("max-p95", GateStatus.FAIL, 72.0, 40.0, "P95 72 ms > 40 ms", "ms")
SKIPPED = GateResult("split", GateStatus.SKIP, None, 0.05, "not an Experiment", "share")


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif"])
def test_exit_code_is_the_same_for_every_format(fmt: str) -> None:
    cases = [
        (_smoke((PASSING, SKIPPED)), 0),
        (_smoke((PASSING, FAILING)), 1),
        (_smoke((PASSING,), _report()), 1),  # a warning finding at --fail-on warning
        (_smoke((PASSING,), _report(), Severity.CRITICAL), 0),
        (could_not_run("bundle", "cannot connect to http://127.0.0.1:1: refused"), 2),
    ]
    for smoke, code in cases:
        assert smoke.exit_code == code
        text = render_smoke(smoke, fmt)
        if fmt == "json":
            assert json.loads(text)["exit_code"] == code
        if fmt == "junit":
            root = ET.fromstring(text.split("\n", 1)[1])
            assert (root.get("errors") != "0") is (code == 2), "a run that could not happen is a JUnit error"
        if fmt == "text":
            assert f"(exit {code})" in text.rstrip().splitlines()[-1]
        if fmt == "sarif":
            assert json.loads(text)["runs"][0]["properties"]["smoke"]["exit_code"] == code


def test_junit_has_one_case_per_check_and_per_gate() -> None:
    root = ET.fromstring(render_smoke(_smoke((PASSING, FAILING, SKIPPED), _report()), "junit").split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"mlops-trace doctor", "mlops-trace smoke gates"}
    gates = suites["mlops-trace smoke gates"]
    names = [c.get("name") for c in gates.iter("testcase")]
    assert names == ["gate min-success", "gate max-p95", "gate split"]
    failed = [c.get("name") for c in gates.iter("testcase") if c.find("failure") is not None]
    assert failed == ["gate max-p95"]
    assert [c.get("name") for c in suites["mlops-trace doctor"].iter("testcase")] == [
        "MT303 envoy-split-mismatch", "MT301 seldon-model-header-missing", "MT401 latency-slo"]
    assert root.get("tests") == "6" and root.get("failures") == "2"
    assert root.get("skipped") is None, "the Jenkins/Ant schema has no skipped on <testsuites>"
    assert sum(int(suite.get("skipped", "0")) for suite in suites.values()) == 2


def test_junit_and_sarif_of_a_run_that_could_not_happen() -> None:
    smoke = could_not_run("stack", "the reference stack is not running")
    root = ET.fromstring(render_smoke(smoke, "junit").split("\n", 1)[1])
    (case,) = list(root.iter("testcase"))
    error = case.find("error")
    assert error is not None and error.get("message") == "the reference stack is not running"
    run = json.loads(render_smoke(smoke, "sarif"))["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False


def test_sarif_has_a_result_per_failed_gate() -> None:
    run = json.loads(render_smoke(_smoke((PASSING, FAILING, SKIPPED), _report()), "sarif"))["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules[-3:] == ["gate/min-success", "gate/max-p95", "gate/split"]
    gate_results = [r for r in run["results"] if r["ruleId"].startswith("gate/")]
    assert [r["ruleId"] for r in gate_results] == ["gate/max-p95"]
    assert rules[gate_results[0]["ruleIndex"]] == "gate/max-p95"


def test_text_summary_is_short_and_says_why() -> None:
    text = render_smoke(_smoke((PASSING, FAILING), _report()), "text")
    assert "FAIL  max-p95" in text and "72.0 ms" in text
    assert text.rstrip().endswith("result: FAIL (exit 1): 1 gate(s) failed (max-p95); 1 finding(s) at or above "
                                  "warning (MT303)")
    assert render_smoke(_smoke((PASSING,)), "text").rstrip().endswith(
        "result: PASS (exit 0): 1 gates passed, 0 failed, 0 skipped, no finding at or above warning")
