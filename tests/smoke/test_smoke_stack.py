"""`mlops-trace smoke --stack` on the reference stack for real (NGINX, Envoy, MLServer and, when installed,
Prometheus on 127.0.0.1): healthy exits 0; stale weights and a slow model with a tight --max-p95 exit 1 with the
failing check or gate named in the JUnit file; a stack that is not running exits 2. The same codes with -o json.
Marked `stack`; one stack per scenario, each torn down afterwards. The stack's venv is shared through
MLOPS_TRACE_STACK_VENV (built on first use)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.fixture_walk import REPO
from tests.stack_run import running_stack

pytestmark = pytest.mark.stack


def _smoke(state_dir: Path, *args: str) -> tuple[int, dict[str, Any], ET.Element]:
    """Run the real CLI once with -o json and a JUnit file; (exit code, JSON report, JUnit root)."""
    junit = state_dir / "smoke-junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "smoke", "--stack", "--state-dir", str(state_dir), "-o", "json",
         "--junit-file", str(junit), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert result.stdout, result.stderr
    root = ET.fromstring(junit.read_text(encoding="utf-8").split("\n", 1)[1])
    return result.returncode, json.loads(result.stdout), root


def _failed_cases(root: ET.Element) -> set[str]:
    return {case.get("name") or "" for case in root.iter("testcase") if case.find("failure") is not None}


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["status"] for check in report["checks"]}


def test_healthy_stack_passes(tmp_path: Path) -> None:
    with running_stack(tmp_path) as info:
        code, report, junit = _smoke(tmp_path)
    assert code == 0, report
    assert report["result"] == "pass" and not _failed_cases(junit)
    assert {g["name"]: g["status"] for g in report["gates"]} == {"min-success": "pass", "split": "pass"}
    if info["prometheus_url"]:  # the checks ran against the stack's real Prometheus
        # MT404 has no HPA to judge on the stack (skip); MT405 finds no 503 during a reschedule (pass).
        assert {k: v for k, v in _statuses(report).items() if k.startswith("MT4")} == {
            "MT401": "pass", "MT402": "pass", "MT403": "pass", "MT404": "skip", "MT405": "pass"}, [
            (c["id"], c["reason"]) for c in report["checks"] if c["id"].startswith("MT4")]


def test_stale_weights_fail_with_mt303(tmp_path: Path) -> None:
    with running_stack(tmp_path, "stale-weights") as info:
        code, report, junit = _smoke(tmp_path, "--count", "300")
    assert code == 1, report
    failed = _failed_cases(junit)
    assert "MT303 envoy-split-mismatch" in failed
    assert "gate split" in failed  # 300 answers split about 50/50 against 70/30
    if info["prometheus_url"]:
        assert "MT403 split-imbalance" in failed


def test_slow_model_fails_the_latency_gate(tmp_path: Path) -> None:
    with running_stack(tmp_path, "slow-model=60ms") as info:
        # 100 answers of a 60 ms model judge a 40 ms P95 (the default 1000 is for the split gate's sake).
        code, report, junit = _smoke(tmp_path, "--max-p95", "40", "--count", "100")
    assert code == 1, report
    failed = _failed_cases(junit)
    assert "gate max-p95" in failed
    gate = next(g for g in report["gates"] if g["name"] == "max-p95")
    assert gate["measured"] >= 60.0 and gate["threshold"] == 40.0
    if info["prometheus_url"]:
        assert "MT401 latency-slo" in failed
        assert any(f["id"] == "MT401" and "histogram_quantile" in f["evidence"][0]["what"]
                   for f in report["findings"])


def test_a_stack_that_is_not_running_exits_2(tmp_path: Path) -> None:
    code, report, junit = _smoke(tmp_path)
    assert code == 2 and report["result"] == "error" and "not running" in report["error"]
    assert junit.get("errors") == "1"
