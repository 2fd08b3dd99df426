"""The engine: skip with a reason when inputs are missing (or forbidden), error instead of crash, dedupe, ordering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops_trace.analysis.catalog import CatalogEntry
from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus, Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT999", slug="test-check", title="t", severity=Severity.WARNING,
    requires=("kube:NetworkPolicy",), playbook="network-policy", fix="f",
)


def _entry(run: object) -> CatalogEntry:
    return CatalogEntry(check=CHECK, run=run, module_path=Path("x.py"), doc_path=Path("x.md"))  # type: ignore[arg-type]


def _snap_with_policy() -> Snapshot:
    snap = Snapshot(source="t")
    snap.add_objects([KubeObject("NetworkPolicy", "ns", "p", {"kind": "NetworkPolicy"}, "kube/p.yaml#0")])
    return snap


def test_missing_input_is_a_skip_with_reason() -> None:
    report = run_checks(Snapshot(source="t"), [_entry(lambda snap: iter(()))])
    (result,) = report.checks
    assert result.status is CheckStatus.SKIP
    assert "NetworkPolicy" in result.reason and "not in the input" in result.reason


def test_forbidden_input_names_the_permission() -> None:
    snap = Snapshot(source="t")
    snap.metadata.extra["forbidden"] = [
        {"kind": "NetworkPolicy", "permission": "list networkpolicies in namespace x (networking.k8s.io)"}
    ]
    (result,) = run_checks(snap, [_entry(lambda snap: iter(()))]).checks
    assert result.status is CheckStatus.SKIP
    assert result.reason == "forbidden: missing permission to list networkpolicies in namespace x (networking.k8s.io)"


def test_crash_is_an_error_and_the_run_goes_on() -> None:
    def boom(snap: Snapshot) -> Iterator[Finding]:
        raise KeyError("spec")

    (result,) = run_checks(_snap_with_policy(), [_entry(boom)]).checks
    assert result.status is CheckStatus.ERROR and "KeyError" in result.reason


def test_skip_check_and_duplicate_findings() -> None:
    def skipper(snap: Snapshot) -> Iterator[Finding]:
        raise SkipCheck("no controller Deployment")

    (skipped,) = run_checks(_snap_with_policy(), [_entry(skipper)]).checks
    assert skipped.status is CheckStatus.SKIP and skipped.reason == "no controller Deployment"

    def twice(snap: Snapshot) -> Iterator[Finding]:
        for _ in range(2):
            yield CHECK.finding(namespace="ns", object="NetworkPolicy/p", message="m", evidence=[Evidence("w", "w")])

    report = run_checks(_snap_with_policy(), [_entry(twice)])
    assert len(report.findings) == 1 and report.checks[0].status is CheckStatus.FAIL
