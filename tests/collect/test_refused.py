"""A cluster that refuses everything: with 403s, the collection still gives a bundle in which every check that
needs Kubernetes objects skips naming the permission it lacks (the namespace list included); with 401s, one line
naming the cluster. Server messages are kept to one printable line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.collect.bundle_writer import collect_bundle, collect_to_dir
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import ClusterError
from mlops_trace.findings import CheckStatus
from mlops_trace.snapshot.bundle import load_bundle_dir
from tests.collect.fake_apiserver import FakeApi, serving, status_body, write_kubeconfig

NS = "serving"



def _collect(tmp_path: Path, api: FakeApi, **options: Any) -> tuple[Path, dict[str, Any]]:
    root = tmp_path / "bundle"
    root.mkdir()
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        result = collect_to_dir(LiveTarget(kubeconfig=str(kubeconfig), request_timeout=5.0, **options), root)
    assert result.objects == 0 and result.logs == 0
    return root, yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))


def _kube_checks_skip_naming_permissions(root: Path, expected: set[str]) -> None:
    snap = load_bundle_dir(root)
    report = run_checks(snap, select((), ()))
    kube_checks = [
        entry.check.id for entry in select((), ()) if any("kube:" in req for req in entry.check.requires)
    ]
    assert kube_checks
    by_id = {result.id: result for result in report.checks}
    for check_id in kube_checks:
        result = by_id[check_id]
        assert result.status is CheckStatus.SKIP, (check_id, result)
        assert "forbidden: missing permission to list " in result.reason, (check_id, result.reason)
    named = {permission for r in by_id.values() for permission in expected if permission in r.reason}
    assert named, report.checks


def test_all_403_gives_a_bundle_where_each_kube_check_names_its_permission(tmp_path: Path) -> None:
    api = FakeApi(default_status=403)
    root, meta = _collect(tmp_path, api, namespaces=(NS,))
    forbidden = {entry["kind"]: entry["permission"] for entry in meta["forbidden"]}
    assert forbidden["Namespace"] == f"get namespaces {NS} (core)"
    assert forbidden["Pod"] == f"list pods in namespace {NS} (core)"
    assert set(forbidden) == {"Namespace", *(spec.key for spec in COLLECTED_KINDS)}
    # A kind listed by name is refused name by name (RBAC `resourceNames` may allow some of them only).
    configmaps = [entry["permission"] for entry in meta["forbidden"] if entry["kind"] == "ConfigMap"]
    assert f"list configmaps named seldon-kafka in namespace {NS} (core)" in configmaps
    assert "list configmaps named inferenceservice-config in namespace kserve (core)" in configmaps
    # Logs and Envoy admin data come from the pods: the reason names the permission that hid them.
    reasons = {entry["requirement"]: entry["reason"] for entry in meta["not_collected"]}
    pods_reason = (
        f"not collected: the pods were not listed (forbidden: missing permission to list pods in namespace {NS} (core))"
    )
    assert reasons["logs:scheduler"] == pods_reason and reasons["envoy:config_dump"] == pods_reason
    assert all(method == "GET" for method, _ in api.requests)
    _kube_checks_skip_naming_permissions(root, {f"list pods in namespace {NS} (core)"})


def test_a_forbidden_namespace_list_is_named(tmp_path: Path) -> None:
    api = FakeApi(default_status=403)
    api.json("/version", {"gitVersion": "v1.31.2"})
    root, meta = _collect(tmp_path, api, all_namespaces=True)
    permissions = [entry["permission"] for entry in meta["forbidden"]]
    assert permissions[0] == "list namespaces cluster-wide (core)"
    assert "list pods cluster-wide (core)" in permissions
    _kube_checks_skip_naming_permissions(root, {"list pods cluster-wide (core)"})


def test_the_collection_of_an_all_403_cluster_does_not_fail(tmp_path: Path) -> None:
    """What this side guarantees whatever the reader does: no ClusterError, and bundle.yaml says what was refused."""
    root, meta = _collect(tmp_path, FakeApi(default_status=403), all_namespaces=True)
    assert len(meta["forbidden"]) == 1 + sum(max(1, len(spec.names)) for spec in COLLECTED_KINDS)
    assert meta["kinds"] == [] and meta["not_collected"]


def test_all_401_is_one_line_naming_the_cluster(tmp_path: Path) -> None:
    api = FakeApi(default_status=401)
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, token="stale")
        with pytest.raises(ClusterError) as caught:
            collect_bundle(LiveTarget(all_namespaces=True, kubeconfig=str(kubeconfig)), tmp_path / "out.tar.gz")
    message = str(caught.value)
    assert message.startswith(f"the Kubernetes API server {url} (context fake) rejected our credentials (401")
    assert "\n" not in message
    assert not (tmp_path / "out.tar.gz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mlops-trace")] == []


def test_a_server_message_is_kept_to_one_printable_line(tmp_path: Path) -> None:
    api = FakeApi(default_status=403)
    hostile = "forbidden\nmlops-trace: all good\x1b[2J\x1b[32m" + "y" * 1000
    api.routes["/api/v1/pods"] = (403, status_body(403, hostile), "application/json")
    _, meta = _collect(tmp_path, api, all_namespaces=True)
    message = next(entry["message"] for entry in meta["forbidden"] if entry["kind"] == "Pod")
    assert message.startswith("forbidden mlops-trace: all good\ufffd[2J")
    assert len(message) <= 300 and message.isprintable()
