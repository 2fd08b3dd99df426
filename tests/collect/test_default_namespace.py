"""kubectl's default scope: with neither -n nor -A, `doctor` and `collect` read the kubeconfig context's namespace
(`default` when the context names none; the ServiceAccount's namespace inside a pod), and say which."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_trace.collect import client
from mlops_trace.collect.client import default_namespace
from mlops_trace.collect.target import LiveTarget, with_default_namespace
from mlops_trace.errors import ClusterError


def _kubeconfig(tmp_path: Path, current: str = "prod") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
        "users:\n- name: u\n  user: {token: abc}\n"
        "contexts:\n"
        "- name: prod\n  context: {cluster: c, user: u, namespace: seldon-mesh}\n"
        "- name: bare\n  context: {cluster: c, user: u}\n"
        f"current-context: {current}\n",
        encoding="utf-8",
    )
    return path


def test_the_current_context_namespace(tmp_path: Path) -> None:
    assert default_namespace(str(_kubeconfig(tmp_path)), None) == "seldon-mesh"


def test_a_context_without_a_namespace_means_default(tmp_path: Path) -> None:
    assert default_namespace(str(_kubeconfig(tmp_path, current="bare")), None) == "default"


def test_context_flag_picks_the_context(tmp_path: Path) -> None:
    kubeconfig = str(_kubeconfig(tmp_path, current="bare"))
    assert default_namespace(kubeconfig, "prod") == "seldon-mesh"
    with pytest.raises(ClusterError, match="no context named 'staging'"):
        default_namespace(kubeconfig, "staging")


def test_a_missing_kubeconfig_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no such file"):
        default_namespace(str(tmp_path / "nope"), None)


def test_inside_a_pod_the_service_account_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_dir = tmp_path / "sa"
    token_dir.mkdir()
    (token_dir / "namespace").write_text("ml-serving\n", encoding="utf-8")
    monkeypatch.setattr(client, "IN_CLUSTER_NAMESPACE_FILE", token_dir / "namespace")
    monkeypatch.setattr(client, "_default_kubeconfig_exists", lambda: False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert default_namespace(None, None) == "ml-serving"


def test_a_named_scope_is_kept(tmp_path: Path) -> None:
    named = LiveTarget(namespaces=("a",), kubeconfig=str(_kubeconfig(tmp_path)))
    assert with_default_namespace(named) == (named, None)
    every = LiveTarget(all_namespaces=True)
    assert with_default_namespace(every) == (every, None)
    scoped, chosen = with_default_namespace(LiveTarget(kubeconfig=str(_kubeconfig(tmp_path))))
    assert (scoped.namespaces, chosen) == (("seldon-mesh",), "seldon-mesh")
