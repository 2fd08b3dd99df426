"""Every fixture bundle under fixtures/ against its expected.yaml: one parametrized test, no per-check test code.

`fixtures/checks/<ID>/<case>/expected.yaml`:
    status: pass | fail | skip        # how check <ID> must end on this bundle
    findings:                          # (fail) each entry must match one finding of <ID>; keys are optional
      - namespace: fraud-serving
        object: StatefulSet/seldon-scheduler
        message_contains: "..."
        evidence_contains: "..."       # substring of some evidence `where` or `what`
    count: 2                           # (optional) exact number of findings of <ID>
    clean: true                        # (optional) no other check reports warning or above on this bundle

`fixtures/scenarios/<name>/expected.yaml`:
    ids: [MT101, MT204]                # exactly the ids with findings at or above min_severity
    min_severity: warning
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops_trace.analysis.catalog import load_catalog
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus, Finding, Report, Severity
from mlops_trace.snapshot.bundle import open_bundle
from tests.fixture_walk import FixtureCase, check_cases, scenario_cases


def _doctor(case: FixtureCase) -> Report:
    with open_bundle(case.path) as snap:
        return run_checks(snap, load_catalog())


def _matches(finding: Finding, want: dict[str, Any]) -> bool:
    if "namespace" in want and finding.namespace != want["namespace"]:
        return False
    if "object" in want and finding.object != want["object"]:
        return False
    if "message_contains" in want and str(want["message_contains"]).lower() not in finding.message.lower():
        return False
    if "evidence_contains" in want:
        needle = str(want["evidence_contains"]).lower()
        if not any(needle in e.where.lower() or needle in e.what.lower() for e in finding.evidence):
            return False
    return True


def _describe(report: Report) -> str:
    lines = [f"{f.id} {f.severity.value} {f.namespace} {f.object}: {f.message}" for f in report.findings]
    lines += [f"{c.id} {c.status.value}: {c.reason}" for c in report.checks if c.status is not CheckStatus.PASS]
    lines += [f"problem {p.path}: {p.reason}" for p in report.input_problems]
    return "\n".join(lines)


@pytest.mark.parametrize("case", check_cases(), ids=lambda c: c.label)
def test_check_fixture(case: FixtureCase) -> None:
    check_id = case.path.parent.name
    report = _doctor(case)
    results = {c.id: c for c in report.checks}
    assert check_id in results, f"no check {check_id} in the catalog"
    want_status = CheckStatus(case.expected["status"])
    got = results[check_id]
    assert got.status is want_status, f"{check_id} is {got.status.value} ({got.reason})\n{_describe(report)}"
    mine = [f for f in report.findings if f.id == check_id]
    for want in case.expected.get("findings") or []:
        assert any(_matches(f, want) for f in mine), f"no {check_id} finding matches {want}\n{_describe(report)}"
    if "count" in case.expected:
        assert len(mine) == case.expected["count"], _describe(report)
    if case.expected.get("clean"):
        others = [f for f in report.findings if f.id != check_id and f.severity.at_least(Severity.WARNING)]
        assert not others, _describe(report)
    assert not any(c.status is CheckStatus.ERROR for c in report.checks), _describe(report)


@pytest.mark.parametrize("case", scenario_cases(), ids=lambda c: c.label)
def test_scenario(case: FixtureCase) -> None:
    report = _doctor(case)
    threshold = Severity(case.expected.get("min_severity", "warning"))
    got = sorted({f.id for f in report.findings if f.severity.at_least(threshold)})
    assert got == sorted(case.expected["ids"]), _describe(report)
    assert not any(c.status is CheckStatus.ERROR for c in report.checks), _describe(report)
