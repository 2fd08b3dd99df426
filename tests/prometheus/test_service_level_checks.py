"""MT401–MT403 with options (the fixtures cover the defaults): thresholds, minimum traffic, namespace scope."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus, Report
from mlops_trace.snapshot.bundle import open_bundle
from tests.fixture_walk import FIXTURES


def _run(case: str, check: str, **options: Any) -> Report:
    with open_bundle(FIXTURES / "checks" / case) as snap:
        return run_checks(snap, select([check]), options)


def _status(report: Report) -> CheckStatus:
    (result,) = report.checks
    return result.status


def test_latency_threshold_is_an_option() -> None:
    assert _status(_run("MT401/healthy", "MT401")) is CheckStatus.PASS
    tight = _run("MT401/healthy", "MT401", max_p95_ms=20)
    assert [f.object for f in tight.findings] == ["Model/claims-new"]
    assert "22.9 ms" in tight.findings[0].message and "20 ms objective" in tight.findings[0].message
    assert _status(_run("MT401/slow-server", "MT401", max_p95_ms=200)) is CheckStatus.PASS


def test_latency_needs_enough_requests_per_series() -> None:
    report = _run("MT401/slow-server", "MT401", min_requests=1000)
    assert _status(report) is CheckStatus.PASS  # the slow server had 912 requests: not judged
    skipped = _run("MT401/slow-server", "MT401", min_requests=10_000)
    assert _status(skipped) is CheckStatus.SKIP and "fewer than 10000 requests" in skipped.checks[0].reason


def test_success_threshold_and_namespace_scope(tmp_path: Path) -> None:
    assert _status(_run("MT402/healthy", "MT402", min_success=0.999)) is CheckStatus.FAIL
    assert _status(_run("MT402/routing-404s", "MT402", min_success=0.8)) is CheckStatus.PASS
    # without bundle.yaml naming `recsys`, the staging namespace (all 80 requests failed) is judged too
    copy = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "checks" / "MT402" / "routing-404s", copy)
    (copy / "bundle.yaml").unlink()
    with open_bundle(copy) as snap:
        report = run_checks(snap, select(["MT402"]))
    assert sorted(f.namespace or "" for f in report.findings) == ["recsys", "recsys-staging"]


def test_a_missing_failure_series_means_no_failure() -> None:
    report = _run("MT402/model-errors", "MT402")
    assert [f.object for f in report.findings] == ["Model/price-elastic"]  # price-rules has no failure series


def test_split_tolerance_and_alpha_are_options() -> None:
    assert _status(_run("MT403/stale-weights", "MT403")) is CheckStatus.FAIL
    assert _status(_run("MT403/stale-weights", "MT403", split_tolerance=0.35)) is CheckStatus.PASS
    assert _status(_run("MT403/stale-weights", "MT403", split_alpha=1e-200)) is CheckStatus.PASS
    few = _run("MT403/stale-weights", "MT403", min_split_requests=5000)
    assert _status(few) is CheckStatus.SKIP and "2000 requests to its candidates" in few.checks[0].reason


def test_split_ignores_the_mirror_and_other_namespaces() -> None:
    report = _run("MT403/healthy", "MT403", split_tolerance=0.001, split_alpha=0.5)
    # 1392/606 against 70/30 (p ~ 0.5); the 1997 mirrored requests to credit-shadow are not part of the split
    assert _status(report) is CheckStatus.PASS
    stale = _run("MT403/stale-weights", "MT403")
    assert "2000 requests" in stale.findings[0].message  # media-recs-canary's 5000 are another namespace
