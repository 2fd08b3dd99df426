"""The exporter's exposition: the series of a real catalog run (the four-root-causes scenario, read offline through
`doctor.run_doctor`), a cleared finding's series gone at the next scrape, a failed run keeping the last findings, and
`promtool check metrics` accepting the text (promtool from Debian's `prometheus` package, installed by the README's
test command)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlops_trace.doctor import DoctorRun, run_doctor
from mlops_trace.exporter.metrics import registry_for
from mlops_trace.exporter.state import ExporterState, RunOutcome
from mlops_trace.findings import CheckStatus, Report
from tests.fixture_walk import FIXTURES

SCENARIO = FIXTURES / "scenarios" / "four-root-causes"  # MT101, MT102, MT103, MT104, MT204, all critical
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus: apt-get install -y prometheus)"
)


@pytest.fixture(scope="module")
def report() -> Report:
    return run_doctor(DoctorRun(bundle=SCENARIO)).report


def _ok(report: Report, cluster: str = "east", started: float = 1_700_000_000.0) -> RunOutcome:
    return RunOutcome(cluster, started, 2.5, report.findings, report.checks)


def _series(state: ExporterState) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry_for(state)).decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_one_series_per_open_finding(report: Report) -> None:
    state = ExporterState()
    state.record(_ok(report))
    findings = _series(state)["mlops_trace_finding"]
    assert sorted(labels["check"] for labels, _ in findings) == ["MT101", "MT102", "MT103", "MT104", "MT204"]
    assert {value for _, value in findings} == {1.0}
    mt204 = next(labels for labels, _ in findings if labels["check"] == "MT204")
    assert mt204 == {"cluster": "east", "check": "MT204", "slug": "ingress-path-not-rewritten",
                     "severity": "critical", "namespace": "ingress-nginx", "object": "Ingress/ml-api"}


def test_check_status_counts_and_run_health(report: Report) -> None:
    state = ExporterState()
    state.record(_ok(report))
    series = _series(state)
    statuses = series["mlops_trace_check_status"]
    assert len(statuses) == 4 * len(report.checks)
    current = {(labels["check"], labels["status"]) for labels, value in statuses if value == 1.0}
    assert current == {(c.id, c.status.value) for c in report.checks}
    assert ("MT204", CheckStatus.FAIL.value) in current
    counts = {labels["severity"]: value for labels, value in series["mlops_trace_findings"]}
    assert counts == {"critical": 5.0, "warning": 0.0, "info": 0.0}
    assert series["mlops_trace_run_success"] == [({"cluster": "east"}, 1.0)]
    assert series["mlops_trace_run_duration_seconds"] == [({"cluster": "east"}, 2.5)]
    assert series["mlops_trace_last_successful_run_timestamp_seconds"] == [({"cluster": "east"}, 1_700_000_000.0)]
    runs = {labels["result"]: value for labels, value in series["mlops_trace_runs_total"]}
    assert runs == {"success": 1.0, "failure": 0.0}


def test_a_cleared_finding_has_no_series_after_the_next_run(report: Report) -> None:
    state = ExporterState()
    state.record(_ok(report, "east"))
    state.record(_ok(report, "west"))
    cleared = replace(report, findings=tuple(f for f in report.findings if f.id != "MT204"))
    state.record(_ok(cleared, "west", started=1_700_000_300.0))
    findings = _series(state)["mlops_trace_finding"]
    by_cluster = {c: sorted(l["check"] for l, _ in findings if l["cluster"] == c) for c in ("east", "west")}
    assert by_cluster == {"east": ["MT101", "MT102", "MT103", "MT104", "MT204"],
                          "west": ["MT101", "MT102", "MT103", "MT104"]}


def test_a_failed_run_keeps_the_last_findings_and_says_so(report: Report) -> None:
    state = ExporterState()
    state.record(_ok(report))
    state.record(RunOutcome("east", 1_700_000_300.0, 10.0, None, error="connection refused"))
    series = _series(state)
    assert len(series["mlops_trace_finding"]) == 5
    assert series["mlops_trace_run_success"] == [({"cluster": "east"}, 0.0)]
    assert series["mlops_trace_last_run_timestamp_seconds"] == [({"cluster": "east"}, 1_700_000_300.0)]
    assert series["mlops_trace_last_successful_run_timestamp_seconds"] == [({"cluster": "east"}, 1_700_000_000.0)]
    runs = {labels["result"]: value for labels, value in series["mlops_trace_runs_total"]}
    assert runs == {"success": 1.0, "failure": 1.0}


def test_a_cluster_that_never_succeeded_has_no_findings_and_no_last_success() -> None:
    state = ExporterState()
    state.record(RunOutcome("west", 1_700_000_000.0, 0.1, None, error="no kubeconfig"))
    series = _series(state)
    assert "mlops_trace_finding" not in series
    assert "mlops_trace_last_successful_run_timestamp_seconds" not in series
    assert series["mlops_trace_run_success"] == [({"cluster": "west"}, 0.0)]


def test_two_findings_on_one_object_are_one_series(report: Report) -> None:
    twice = next(f for f in report.findings if f.id == "MT204")
    doubled = replace(report, findings=(*report.findings, replace(twice, message=twice.message + " (again)")))
    state = ExporterState()
    state.record(_ok(doubled))
    checks = [labels["check"] for labels, _ in _series(state)["mlops_trace_finding"]]
    assert checks.count("MT204") == 1 and len(checks) == 5


@needs_promtool
def test_promtool_accepts_the_exposition(report: Report) -> None:
    assert PROMTOOL is not None
    state = ExporterState()
    state.record(_ok(report, "east"))
    state.record(RunOutcome("west", 1_700_000_000.0, 0.1, None, error="refused"))
    text = generate_latest(registry_for(state))
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.decode().strip() == "" and checked.stderr.decode().strip() == ""
