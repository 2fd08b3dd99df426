"""`smoke` over several contexts, end to end in real CLI processes: two served bundles (four-root-causes, healthy-ab)
and a context whose API server is a closed port, in one kubeconfig; the request part goes once to a V2 endpoint this
test starts (tests/smoke/v2_server.py, 127.0.0.1, stopped by PID)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xunitparser  # type: ignore[import-untyped]

from tests.fixture_walk import FIXTURES, REPO
from tests.fleet.served_fleet import Fleet, dead_port, served_fleet

SCENARIOS = FIXTURES / "scenarios"
FOUR = SCENARIOS / "four-root-causes"
NAMESPACE = "fraud-serving"
CONTEXTS = ("four", "healthy", "dead")
SERVER = REPO / "tests" / "smoke" / "v2_server.py"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    bundles = {"four": FOUR, "healthy": SCENARIOS / "healthy-ab"}
    with served_fleet(bundles, ("dead",), {"four": NAMESPACE, "healthy": NAMESPACE},
                      tmp_path_factory.mktemp("fleet-smoke")) as running:
        yield running


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--lifetime", "120", "--routes", "credit-base_1:1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _smoke(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlops_trace", "smoke", "--kubeconfig", str(fleet.kubeconfig),
               "--request-timeout", "5", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160"})


def _contexts(*names: str) -> list[str]:
    return [part for name in names for part in ("--context", name)]


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_doctor_only_over_the_clusters_carries_each_cluster(fleet: Fleet) -> None:
    proc = _smoke(fleet, "--count", "0", *_contexts(*CONTEXTS), "-o", "json")
    report = _json(proc)
    assert proc.returncode == 1, proc.stderr
    assert report["exit_code"] == 1 and report["result"] == "fail"
    assert report["gates"] == [] and report["request"] is None
    rows = {row["cluster"]: row for row in report["clusters"]}
    assert [row["cluster"] for row in report["clusters"]] == list(CONTEXTS)
    assert rows["four"]["status"] == rows["healthy"]["status"] == "examined"
    assert rows["four"]["namespace"] == NAMESPACE  # neither -n nor -A: the context's own namespace
    assert rows["dead"]["status"] == "could-not-run"
    assert "connection refused" in rows["dead"]["reason"] and fleet.servers["dead"] in rows["dead"]["reason"]
    clusters = {finding["cluster"] for finding in report["findings"]}
    assert clusters == {"four"}
    assert {f["id"] for f in report["findings"]} >= {"MT101"}
    assert {c["cluster"] for c in report["checks"]} == {"four", "healthy"}


def test_request_part_is_sent_once_and_judged_once(fleet: Fleet, endpoint: str) -> None:
    proc = _smoke(fleet, *_contexts("healthy", "four"), "--url", endpoint, "--model", "credit-base",
                  "--count", "20", "--fail-on", "critical", "-o", "json")
    report = _json(proc)
    assert report["request"]["count"] == 20 and report["request"]["succeeded"] == 20
    assert [gate["name"] for gate in report["gates"]].count("min-success") == 1
    assert all(gate["status"] != "fail" for gate in report["gates"])
    assert [row["cluster"] for row in report["clusters"]] == ["healthy", "four"]
    # the gates pass; four's critical findings alone fail the run
    assert proc.returncode == 1 and any(f["severity"] == "critical" for f in report["findings"])


def test_junit_has_a_suite_per_cluster_plus_the_gates(fleet: Fleet, tmp_path: Path) -> None:
    junit = tmp_path / "smoke.xml"
    proc = _smoke(fleet, "--count", "0", *_contexts(*CONTEXTS), "--junit-file", str(junit), "-o", "sarif")
    assert proc.returncode == 1, proc.stderr
    text = junit.read_text(encoding="utf-8")
    root = ET.fromstring(text.split("\n", 1)[1])
    names = [suite.get("name") for suite in root.findall("testsuite")]
    assert names == [*(f"mlops-trace doctor · {name}" for name in CONTEXTS), "mlops-trace smoke gates"]
    _suites, result = xunitparser.parse(io.BytesIO(text.encode("utf-8")))
    xml = junitparser.JUnitXml.fromstring(text)
    properties = [prop.name for suite in xml for prop in suite.properties()]  # type: ignore[no-untyped-call]
    assert len(properties) == len(set(properties)), properties
    assert len(result.errors) == 1  # the dead context
    assert len(result.failures) == int(root.get("failures", "0")) > 0
    sarif = json.loads(proc.stdout)
    results = sarif["runs"][0]["results"]
    assert results and {r["properties"]["cluster"] for r in results} == {"four"}


def test_all_contexts_one_at_a_time_reads_the_kubeconfigs_order(fleet: Fleet) -> None:
    proc = _smoke(fleet, "--count", "0", "--all-contexts", "--parallel", "1", "-A", "-o", "json")
    report = _json(proc)
    assert proc.returncode == 1, proc.stderr
    assert [(r["cluster"], r["status"]) for r in report["clusters"]] == [
        ("four", "examined"), ("healthy", "examined"), ("dead", "could-not-run")]
    assert all(r["namespace"] is None for r in report["clusters"])  # -A: no context's own namespace


def test_an_endpoint_that_cannot_be_reached_is_exit_2(fleet: Fleet) -> None:
    url = f"http://127.0.0.1:{dead_port()}"
    proc = _smoke(fleet, *_contexts("four", "healthy"), "--url", url, "--model", "credit-base", "--count", "5",
                  "--timeout", "2", "-o", "json")
    report = _json(proc)
    assert proc.returncode == 2 and report["exit_code"] == 2
    assert report["error"] and "127.0.0.1" in report["error"], report["error"]


def test_no_cluster_examined_is_exit_2(fleet: Fleet) -> None:
    proc = _smoke(fleet, "--count", "0", *_contexts("dead", "nosuch"), "-o", "text")
    assert proc.returncode == 2, proc.stdout
    assert "result: ERROR (exit 2): none of the 2 contexts could be examined" in proc.stdout
    assert "nosuch" in proc.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--stack"], "--stack tests the reference stack's one cluster"),
        (["--bundle", str(FOUR)], "--bundle reads one offline bundle"),
        (["--prometheus", "http://127.0.0.1:9"], "--prometheus names one Prometheus"),
        (["--parallel", "0"], "--parallel must be between 1 and"),
    ],
)
def test_flags_for_one_cluster_are_one_line_and_exit_2(fleet: Fleet, args: list[str], says: str) -> None:
    proc = _smoke(fleet, "--count", "0", *_contexts("four", "healthy"), *args)
    assert proc.returncode == 2
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
