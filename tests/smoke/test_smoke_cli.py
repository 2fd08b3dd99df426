"""`mlops-trace smoke` end to end against a V2 endpoint this test starts (tests/smoke/v2_server.py, its own process
on 127.0.0.1, stopped by PID): exit codes 0/1/2 in every output format, gates in the JUnit file, baselines."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlops_trace.cli import app
from tests.fixture_walk import FIXTURES, REPO

SERVER = Path(__file__).with_name("v2_server.py")
HEALTHY = FIXTURES / "checks" / "MT403" / "healthy"  # Experiment credit-ab: credit-base 70, credit-chal 30
FORMATS = ("text", "json", "junit", "sarif")


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--lifetime", "120", *args],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc, url = _start("--routes", "credit-base_1:7,credit-chal_1:3")
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def failing_endpoint() -> Iterator[str]:
    proc, url = _start("--status", "503")
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def dead_endpoint() -> str:
    proc, url = _start()
    _stop(proc)
    return url


def _smoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["smoke", "--bundle", str(HEALTHY), "--count", "40", *args])


def _gate_failures(junit: str) -> list[str]:
    root = ET.fromstring(junit.split("\n", 1)[1])
    return [case.get("name") or "" for case in root.iter("testcase") if case.find("failure") is not None]


@pytest.mark.parametrize("fmt", FORMATS)
def test_healthy_endpoint_passes(endpoint: str, fmt: str) -> None:
    result = _smoke("--url", endpoint, "--experiment", "credit-ab", "-o", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        document = json.loads(result.stdout)
        assert document["result"] == "pass"
        assert {g["name"]: g["status"] for g in document["gates"]} == {"min-success": "pass", "split": "pass"}
        assert document["request"]["count"] == 40


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_gate_exits_1(endpoint: str, fmt: str, tmp_path: Path) -> None:
    junit = tmp_path / "smoke.xml"
    result = _smoke("--url", endpoint, "--experiment", "credit-ab", "--max-p95", "0.001", "-o", fmt,
                    "--junit-file", str(junit))
    assert result.exit_code == 1, result.output
    assert _gate_failures(junit.read_text()) == ["gate max-p95"]
    if fmt == "text":
        assert "result: FAIL (exit 1): 1 gate(s) failed (max-p95)" in result.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_failing_requests_exit_1(failing_endpoint: str, fmt: str) -> None:
    result = _smoke("--url", failing_endpoint, "--model", "credit-base", "-o", fmt)
    assert result.exit_code == 1, result.output
    if fmt == "junit":
        assert "gate min-success" in _gate_failures(result.stdout)


def test_a_finding_at_or_above_fail_on_exits_1(endpoint: str) -> None:
    bundle = FIXTURES / "checks" / "MT403" / "stale-weights"  # doctor's MT403 (warning) from its Prometheus data
    args = ["smoke", "--bundle", str(bundle), "--url", endpoint, "--model", "recs-als", "--count", "10"]
    assert CliRunner().invoke(app, args).exit_code == 1
    assert CliRunner().invoke(app, [*args, "--fail-on", "critical"]).exit_code == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_unreachable_endpoint_exits_2(dead_endpoint: str, fmt: str) -> None:
    result = _smoke("--url", dead_endpoint, "--experiment", "credit-ab", "-o", fmt)
    assert result.exit_code == 2, result.output
    assert "cannot connect" in result.stderr
    if fmt == "json":
        assert json.loads(result.stdout)["result"] == "error"
    if fmt == "junit":
        root = ET.fromstring(result.stdout.split("\n", 1)[1])
        assert root.get("errors") == "1"


def test_usage_errors_exit_2() -> None:
    assert _smoke("--max-p95", "10").exit_code == 2  # a gate on requests, but no endpoint
    assert CliRunner().invoke(app, ["smoke", "--url", "http://127.0.0.1:9"]).exit_code == 2  # nothing for doctor
    assert _smoke("-o", "table").exit_code == 2


def test_baseline_is_saved_and_a_regression_fails(endpoint: str, tmp_path: Path) -> None:
    saved = tmp_path / "baseline.json"
    first = _smoke("--url", endpoint, "--experiment", "credit-ab", "--save-baseline", str(saved))
    assert first.exit_code == 0, first.output
    document = json.loads(saved.read_text())
    assert document["kind"] == "mlops-trace-smoke-baseline" and "total" in document["p95_ms"]
    same = _smoke("--url", endpoint, "--experiment", "credit-ab", "--baseline", str(saved), "--regression-floor", "50")
    assert same.exit_code == 0, same.output
    for entry in document["p95_ms"].values():
        entry["p95"] = 0.001  # a baseline no real run can match
    saved.write_text(json.dumps(document))
    slower = _smoke("--url", endpoint, "--experiment", "credit-ab", "--baseline", str(saved),
                    "--regression-floor", "0", "-o", "json")
    assert slower.exit_code == 1, slower.output
    failed = [g["name"] for g in json.loads(slower.stdout)["gates"] if g["status"] == "fail"]
    assert "baseline total p95" in failed


def test_report_files_beside_the_summary(endpoint: str, tmp_path: Path) -> None:
    files = {fmt: tmp_path / f"smoke.{fmt}" for fmt in ("junit", "sarif", "json")}
    result = _smoke("--url", endpoint, "--experiment", "credit-ab", "--junit-file", str(files["junit"]),
                    "--sarif-file", str(files["sarif"]), "--json-file", str(files["json"]))
    assert result.exit_code == 0 and result.stdout.rstrip().splitlines()[-1].startswith("result: PASS")
    assert json.loads(files["json"].read_text())["exit_code"] == 0
    assert json.loads(files["sarif"].read_text())["version"] == "2.1.0"
    assert files["junit"].read_text().startswith("<?xml")


def test_console_script_exit_codes(endpoint: str, dead_endpoint: str) -> None:
    base = [sys.executable, "-m", "mlops_trace", "smoke", "--bundle", str(HEALTHY), "--experiment", "credit-ab",
            "--count", "20", "-o", "json"]
    ok = subprocess.run([*base, "--url", endpoint], capture_output=True, text=True, timeout=60, cwd=REPO,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run([*base, "--url", dead_endpoint], capture_output=True, text=True, timeout=60, cwd=REPO,
                        check=False)
    assert down.returncode == 2 and json.loads(down.stdout)["exit_code"] == 2


def test_until_decided_stops_when_the_split_is_decided(endpoint: str) -> None:
    result = CliRunner().invoke(app, ["smoke", "--bundle", str(HEALTHY), "--url", endpoint, "--experiment",
                                      "credit-ab", "--until-decided", "-o", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    split = next(g for g in document["gates"] if g["name"] == "split")
    assert split["status"] == "pass" and "sequential test: consistent" in split["detail"]
    assert document["request"]["count"] < 2000  # stopped early, below the cap
