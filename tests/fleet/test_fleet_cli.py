"""`doctor` and `collect` over several contexts, end to end in real CLI processes: two served bundles
(four-root-causes, healthy-ab) and a context whose API server is a closed port, in one kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixture_walk import FIXTURES, REPO
from tests.fleet.served_fleet import Fleet, served_fleet

SCENARIOS = FIXTURES / "scenarios"
FOUR = SCENARIOS / "four-root-causes"
NAMESPACE = "fraud-serving"
CONTEXTS = ("four", "healthy", "dead")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    bundles = {"four": FOUR, "healthy": SCENARIOS / "healthy-ab"}
    with served_fleet(bundles, ("dead",), {"four": NAMESPACE, "healthy": NAMESPACE},
                      tmp_path_factory.mktemp("fleet")) as running:
        yield running


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}  # the table's lines are not wrapped, whatever terminal runs the tests
    return subprocess.run([sys.executable, "-m", "mlops_trace", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO, env=env)


def _doctor(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli("doctor", "--kubeconfig", str(fleet.kubeconfig), "--request-timeout", "5", *args)


def _contexts(*names: str) -> list[str]:
    return [part for name in names for part in ("--context", name)]


_RUNS: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}


def _once(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    if args not in _RUNS:
        _RUNS[args] = _doctor(fleet, *args)
    return _RUNS[args]


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _keys(findings: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    return sorted((f.get("cluster", ""), f["id"], f["namespace"] or "", f["object"], f["message"]) for f in findings)


def _expected_ids() -> set[str]:
    expected = yaml.safe_load((FOUR / "expected.yaml").read_text(encoding="utf-8"))
    return set(expected["ids"])


def test_each_finding_carries_its_cluster_and_the_dead_one_says_why(fleet: Fleet) -> None:
    proc = _once(fleet, *_contexts(*CONTEXTS), "-A", "-o", "json")
    report = _json(proc)
    assert proc.returncode == 1, proc.stderr
    rows = {row["cluster"]: row for row in report["clusters"]}
    assert [row["cluster"] for row in report["clusters"]] == list(CONTEXTS)
    assert rows["four"]["status"] == rows["healthy"]["status"] == "examined"
    dead = rows["dead"]
    assert dead["status"] == "could-not-run"
    assert "connection refused" in dead["reason"] and fleet.servers["dead"] in dead["reason"]
    assert f"context dead: could not run: {dead['reason']}" in proc.stderr
    by_cluster: dict[str, set[str]] = {}
    for finding in report["findings"]:
        by_cluster.setdefault(finding["cluster"], set()).add(finding["id"])
    assert set(by_cluster) == {"four"}
    assert by_cluster["four"] >= _expected_ids()
    assert rows["four"]["findings"]["critical"] == sum(
        1 for f in report["findings"] if f["severity"] == "critical")
    catalog = json.loads(_cli("checks", "list", "-o", "json").stdout)
    assert sorted(c["cluster"] for c in report["checks"]) == sorted(["four", "healthy"] * len(catalog))


def test_fleet_findings_are_each_cluster_run_alone(fleet: Fleet) -> None:
    together = _json(_once(fleet, *_contexts(*CONTEXTS), "-A", "-o", "json"))
    alone = _json(_doctor(fleet, "--context", "four", "-A", "-o", "json"))
    assert "cluster" not in alone and all("cluster" not in f for f in alone["findings"])
    mine = [f for f in together["findings"] if f["cluster"] == "four"]
    assert _keys([{**f, "cluster": ""} for f in mine]) == _keys(alone["findings"])
    # causes are linked inside the one cluster, as a one-cluster run links them
    assert sorted(json.dumps(f["caused_by"]) for f in mine) == sorted(json.dumps(f["caused_by"]) for f in alone["findings"])


def test_all_contexts_in_one_at_a_time_gives_the_same_findings(fleet: Fleet) -> None:
    default = _json(_once(fleet, *_contexts(*CONTEXTS), "-A", "-o", "json"))
    proc = _doctor(fleet, "--all-contexts", "--parallel", "1", "-A", "-o", "json")
    serial = _json(proc)
    assert proc.returncode == 1
    assert [row["cluster"] for row in serial["clusters"]] == list(CONTEXTS)  # the kubeconfig's order
    assert _keys(serial["findings"]) == _keys(default["findings"])
    assert [(r["cluster"], r["status"]) for r in serial["clusters"]] == [
        (r["cluster"], r["status"]) for r in default["clusters"]]


def test_sarif_carries_the_cluster(fleet: Fleet) -> None:
    proc = _doctor(fleet, *_contexts(*CONTEXTS), "-A", "-o", "sarif")
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    results = run["results"]
    assert {r["ruleId"] for r in results} >= _expected_ids()
    for result in results:
        assert result["properties"]["cluster"] == "four"
        logical = result["locations"][0]["logicalLocations"]
        assert {"name": "four", "fullyQualifiedName": "four", "kind": "cluster"} in logical
    fingerprints = [r["partialFingerprints"]["mlopsTraceFinding/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    dead = [n for n in notes if n.get("properties", {}).get("cluster") == "dead"]
    assert len(dead) == 1 and dead[0]["level"] == "error" and "connection refused" in dead[0]["message"]["text"]
    assert [c["cluster"] for c in run["properties"]["clusters"]] == list(CONTEXTS)


def test_junit_has_a_suite_per_cluster(fleet: Fleet) -> None:
    proc = _doctor(fleet, *_contexts(*CONTEXTS), "-A", "-o", "junit")
    assert proc.returncode == 1, proc.stderr
    root = ET.fromstring(proc.stdout)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"mlops-trace doctor · {name}" for name in CONTEXTS]
    four, healthy, dead = suites
    assert int(four.get("failures", "0")) >= len(_expected_ids())
    assert healthy.get("failures") == "0"
    assert all(case.get("classname", "").startswith("mlops-trace.four.MT") for case in four.findall("testcase"))
    error = dead.find("testcase/error")
    assert error is not None and "connection refused" in error.get("message", "")
    assert root.get("errors") == str(sum(int(s.get("errors", "0")) for s in suites))
    assert root.get("tests") == str(sum(int(s.get("tests", "0")) for s in suites))


def test_table_groups_by_cluster_each_in_its_context_namespace(fleet: Fleet) -> None:
    proc = _doctor(fleet, *_contexts(*CONTEXTS))  # neither -n nor -A: each context's own namespace
    assert proc.returncode == 1, proc.stderr
    assert f"context four: namespace {NAMESPACE} (the context's)" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "mlops-trace doctor · 3 clusters: 2 examined, 1 could not run"
    rows = [line.split() for line in lines[2:6]]
    assert rows[0] == ["CLUSTER", "STATUS", "SCOPE", "FOUND"]
    assert [row[:3] for row in rows[1:3]] == [["four", "examined", NAMESPACE], ["healthy", "examined", NAMESPACE]]
    assert rows[3][:4] == ["dead", "could", "not", "run"]
    heads = [index for index, line in enumerate(lines) if line.startswith("cluster ")]
    assert [lines[i].split()[1] for i in heads] == list(CONTEXTS)
    four = "\n".join(lines[heads[0]:heads[1]])
    healthy = "\n".join(lines[heads[1]:heads[2]])
    dead = "\n".join(lines[heads[2]:])
    assert f"CRITICAL  MT101 scheduler-split-brain  {NAMESPACE}/StatefulSet/seldon-scheduler" in four
    assert "No findings" in healthy and not any(word in healthy for word in ("CRITICAL", "WARNING", "INFO "))
    assert "could not run: cannot reach the Kubernetes API server" in dead
    assert lines[-1].startswith("all clusters: ") and lines[-1].endswith("2 of 3 examined, 1 could not run")


def test_exit_2_only_when_no_cluster_could_be_examined(fleet: Fleet) -> None:
    proc = _doctor(fleet, *_contexts("dead", "nosuch"), "-A", "-o", "json")
    assert proc.returncode == 2
    report = _json(proc)
    assert [(r["cluster"], r["status"]) for r in report["clusters"]] == [
        ("dead", "could-not-run"), ("nosuch", "could-not-run")]
    assert "nosuch" in report["clusters"][1]["reason"]
    assert "none of the 2 contexts could be examined" in proc.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--all-contexts", "--context", "four"], "--all-contexts reads every context"),
        (["--context", "four", "--context", "healthy", "--parallel", "0"], "--parallel must be between 1 and"),
        (["--context", "four", "--context", "healthy", "--bundle", str(FOUR)], "--bundle reads one offline bundle"),
        (["--context", "four", "--context", "healthy", "-A", "--only", "MT999"], "MT999"),
    ],
)
def test_bad_fleet_flags_are_one_line_and_exit_2(fleet: Fleet, args: list[str], says: str) -> None:
    proc = _doctor(fleet, *args)
    assert proc.returncode == 2
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


def test_collect_writes_one_bundle_per_context(fleet: Fleet, tmp_path: Path) -> None:
    destination = tmp_path / "bundles"
    proc = _cli("collect", str(destination), "--kubeconfig", str(fleet.kubeconfig), "--request-timeout", "5",
                *_contexts("four", "dead", "healthy"), "-A", "-o", "json")
    assert proc.returncode == 1, proc.stderr  # one context could not be collected; the others were
    rows = json.loads(proc.stdout)["contexts"]
    assert [row["context"] for row in rows] == ["four", "dead", "healthy"]
    assert "connection refused" in rows[1]["error"]
    assert sorted(p.name for p in destination.iterdir()) == ["four", "healthy"]
    offline = _json(_cli("doctor", "--bundle", str(destination / "four"), "-o", "json"))
    assert {f["id"] for f in offline["findings"]} >= _expected_ids()
    assert "context dead: could not collect" in proc.stderr
