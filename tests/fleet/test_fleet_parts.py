"""The fleet's pieces without a cluster: where each context's bundle goes, the bounded pool, the kubeconfig's
contexts (several files in $KUBECONFIG), and a cluster's report keeping its causes to itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mlops_trace.collect.client import default_namespace, kubeconfig_contexts
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.findings import CheckId, Finding, Report, Severity
from mlops_trace.fleet import bounded_map, check_parallel, fleet_contexts, fleet_destinations
from mlops_trace.fleet_report import ClusterOutcome, FleetReport
from mlops_trace.render.fleet import render_fleet


def test_destinations_are_safe_names_inside_dest_or_beside_the_tarball(tmp_path: Path) -> None:
    contexts = ["prod", "arn:aws:eks:eu-west-1:1234:cluster/prod", "../up", "a/b", "a:b", ""]
    inside = fleet_destinations(tmp_path / "out", contexts)
    assert [p.name for p in inside.values()] == [
        "prod", "arn_aws_eks_eu-west-1_1234_cluster_prod", "up", "a_b", "a_b-2", "context"]
    assert all(p.parent == tmp_path / "out" for p in inside.values())
    tarballs = fleet_destinations(tmp_path / "fleet.tar.gz", ["prod", "staging"])
    assert [p.name for p in tarballs.values()] == ["fleet-prod.tar.gz", "fleet-staging.tar.gz"]
    assert all(p.parent == tmp_path for p in tarballs.values())


def test_bounded_map_keeps_order_and_never_runs_more_than_asked() -> None:
    running, peak = 0, 0
    lock = threading.Lock()
    heard: list[int] = []

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02 * (item % 3))
        with lock:
            running -= 1
        return item * 10

    assert bounded_map(list(range(12)), work, 3, heard.append) == [i * 10 for i in range(12)]
    assert peak == 3
    assert sorted(heard) == [i * 10 for i in range(12)]


def test_parallel_and_context_flags() -> None:
    assert check_parallel(1) == 1
    for bad in (0, -1, 65):
        with pytest.raises(UsageError):
            check_parallel(bad)
    assert fleet_contexts(None, ["a", "b", "a"], False) == ("a", "b")
    with pytest.raises(UsageError):
        fleet_contexts(None, ["a"], True)


def test_all_contexts_merges_the_files_of_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.write_text("apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {cluster: x, user: u}\n"
                     "- name: b\n  context: {cluster: x, user: u}\n", encoding="utf-8")
    second.write_text("apiVersion: v1\nkind: Config\ncontexts:\n- name: b\n  context: {cluster: y, user: u}\n"
                      "- name: c\n  context: {cluster: y, user: u}\n", encoding="utf-8")
    assert kubeconfig_contexts(str(first)) == ("a", "b")
    from kubernetes.config import kube_config

    # The client reads $KUBECONFIG when it is imported; point its default at the list, as a fresh process would.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", f"{first}:{second}")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert kubeconfig_contexts(None) == ("a", "b", "c")
    # kubectl needs no current-context when the context is named; neither do we
    second.write_text(second.read_text(encoding="utf-8").replace("{cluster: y, user: u}\n", "{cluster: y, user: u, "
                                                                "namespace: team-c}\n"), encoding="utf-8")
    assert default_namespace(str(second), "c") == "team-c"
    with pytest.raises(ClusterError, match="no current-context"):
        default_namespace(str(second), None)
    empty = tmp_path / "empty"
    empty.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    with pytest.raises(ClusterError, match="names no context"):
        kubeconfig_contexts(str(empty))


def _finding(check: str, explained_by: tuple[str, ...] = ()) -> Finding:
    return Finding(id=CheckId(check), slug=check.lower(), severity=Severity.CRITICAL, title="t", message="m",
                   namespace="ns", object="Service/s", evidence=(), playbook="p", fix="f",
                   explained_by=tuple(CheckId(c) for c in explained_by))


def test_causes_never_cross_clusters() -> None:
    cause_here = Report(source="a", findings=(_finding("MT101"),), checks=())
    effect_there = Report(source="b", findings=(_finding("MT104", explained_by=("MT101",)),), checks=())
    fleet = FleetReport((ClusterOutcome.examined("a", cause_here), ClusterOutcome.examined("b", effect_there)))
    data = fleet.to_dict()
    assert [(f["cluster"], f["caused_by"]) for f in data["findings"]] == [("a", []), ("b", [])]
    together = Report(source="a", findings=(_finding("MT101"), _finding("MT104", explained_by=("MT101",))), checks=())
    linked = FleetReport((ClusterOutcome.examined("a", together),)).to_dict()
    assert linked["findings"][1]["caused_by"] == [{"id": "MT101", "namespace": "ns", "object": "Service/s",
                                                   "message": "m"}]


def test_every_format_names_a_cluster_that_could_not_run() -> None:
    fleet = FleetReport((ClusterOutcome.could_not_run("gone", "no route to the host"),))
    for fmt in ("table", "json", "yaml", "junit", "sarif", "markdown"):
        text = render_fleet(fleet, fmt)
        assert "gone" in text and "no route to the host" in text, fmt


def _bundle_fleet() -> FleetReport:
    from mlops_trace.doctor import DoctorRun, run_doctor

    scenarios = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
    reports = [run_doctor(DoctorRun(bundle=scenarios / name)).report for name in ("four-root-causes", "healthy-ab")]
    return FleetReport((ClusterOutcome.examined("prod-eu", reports[0]), ClusterOutcome.examined("prod-us", reports[1]),
                        ClusterOutcome.examined("prod-ap", reports[0]),
                        ClusterOutcome.could_not_run("dead", "connection refused")))


def test_fleet_sarif_is_valid_and_the_same_problem_in_two_clusters_is_two_alerts() -> None:
    import json

    from tests.render.test_consumers import assert_github_can_place_every_result, assert_sarif_valid

    log = json.loads(render_fleet(_bundle_fleet(), "sarif"))
    assert_sarif_valid(log)
    assert_github_can_place_every_result(log)
    results = log["runs"][0]["results"]
    eu = sorted(r["partialFingerprints"]["mlopsTraceFinding/v1"] for r in results if r["properties"]["cluster"] == "prod-eu")
    ap = sorted(r["partialFingerprints"]["mlopsTraceFinding/v1"] for r in results if r["properties"]["cluster"] == "prod-ap")
    assert eu and len(eu) == len(ap) and not set(eu) & set(ap)


def test_fleet_junit_is_read_by_every_consumer() -> None:
    from tests.render.test_consumers import assert_junit_read_by_every_consumer

    text = render_fleet(_bundle_fleet(), "junit")
    counts = assert_junit_read_by_every_consumer(text)
    assert counts["errors"] >= 1  # the cluster that could not run
    assert counts["failures"] >= 10  # four-root-causes twice
