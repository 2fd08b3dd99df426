"""Partial bundles: whatever part of a bundle is missing, every check still ends in pass, fail or skip (never error),
and a check that lost its input says so as a skip with a reason instead of passing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_trace.analysis.catalog import load_catalog
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus
from mlops_trace.snapshot.bundle import open_bundle
from tests.fixture_walk import FIXTURES

SCENARIOS = sorted(p for p in (FIXTURES / "scenarios").iterdir() if p.is_dir())


def _variants(bundle: Path) -> list[tuple[str, list[str]]]:
    """(label, relative paths to delete) — whole sections, then each kube file alone."""
    variants: list[tuple[str, list[str]]] = [
        ("no-kube", ["kube"]),
        ("no-logs", ["logs"]),
        ("no-envoy", ["envoy"]),
        ("kube-only", ["logs", "envoy", "bundle.yaml"]),
        ("no-metadata", ["bundle.yaml"]),
    ]
    # A file left out of a hand-written bundle: its bundle.yaml (which a collector writes, listing what it collected)
    # goes too, or the bundle would claim to hold objects it lacks.
    for kube_file in sorted((bundle / "kube").rglob("*.yaml")):
        rel = kube_file.relative_to(bundle).as_posix()
        variants.append((f"without-{rel}", [rel, "bundle.yaml"]))
    return variants


CASES = [(scenario, label, removed) for scenario in SCENARIOS for label, removed in _variants(scenario)]


@pytest.mark.parametrize(("scenario", "label", "removed"), CASES, ids=[f"{c[0].name}:{c[1]}" for c in CASES])
def test_partial_bundle_never_errors(tmp_path: Path, scenario: Path, label: str, removed: list[str]) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(scenario, bundle)
    for rel in removed:
        target = bundle / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    with open_bundle(bundle) as snap:
        report = run_checks(snap, load_catalog())
    errors = [f"{c.id}: {c.reason}" for c in report.checks if c.status is CheckStatus.ERROR]
    assert not errors, errors
    for result in report.checks:
        if result.status is CheckStatus.SKIP:
            assert result.reason, f"{result.id} skipped without a reason"


def test_healthy_bundle_stays_clean_when_parts_are_missing(tmp_path: Path) -> None:
    """Losing inputs must never turn a healthy bundle into a broken one (no false alarms from missing data)."""
    healthy = FIXTURES / "scenarios" / "healthy-ab"
    for label, removed in _variants(healthy):
        bundle = tmp_path / label.replace("/", "_")
        shutil.copytree(healthy, bundle)
        for rel in removed:
            target = bundle / rel
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        with open_bundle(bundle) as snap:
            report = run_checks(snap, load_catalog())
        alarms = [f"{f.id} {f.object}: {f.message}" for f in report.findings if f.severity.value != "info"]
        assert not alarms, f"{label}: {alarms}"
