"""Inside a pod (KUBERNETES_SERVICE_HOST set, no kubeconfig) the exporter uses the ServiceAccount: `collect.client`
loads the in-cluster configuration, the scope defaults to the ServiceAccount's namespace, the series are labelled
`in-cluster` (or `--cluster-name`), and a run goes over https with the ServiceAccount's token and CA, here to a
served bundle behind a TLS front. The ServiceAccount files are the client's module paths pointed at a tmp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_trace.collect import client
from mlops_trace.collect.deadline import Clock
from mlops_trace.collect.target import LiveTarget
from mlops_trace.exporter.runner import run_cluster
from mlops_trace.exporter.settings import ExporterSettings, cluster_targets
from tests.exporter.tls_proxy import self_signed, tls_front
from tests.fixture_walk import FIXTURES
from tests.serve_process import bundle_server

SCENARIO = FIXTURES / "scenarios" / "four-root-causes"


@pytest.fixture
def in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pod's view: the service env, the ServiceAccount files, no kubeconfig anywhere. Returns the account dir."""
    from kubernetes.config import incluster_config

    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token", encoding="utf-8")  # a projected token: no newline
    (account / "namespace").write_text("fraud-serving", encoding="utf-8")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setattr(client, "IN_CLUSTER_NAMESPACE_FILE", account / "namespace")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
    return account


def test_the_cluster_is_in_cluster_and_the_scope_the_serviceaccount_namespace(in_a_pod: Path) -> None:
    (target,) = cluster_targets(LiveTarget(), (), None)
    assert target.name == "in-cluster" and target.live.namespaces == ("fraud-serving",)
    (named,) = cluster_targets(LiveTarget(all_namespaces=True), (), "prod-eu")
    assert named.name == "prod-eu" and named.live.all_namespaces and named.live.namespaces == ()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI makes the test's TLS certificate")
def test_a_run_inside_a_pod_reads_the_cluster_over_https(
    in_a_pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    shutil.copy(cert, in_a_pod / "ca.crt")
    log = tmp_path / "requests.log"
    with bundle_server(SCENARIO, tmp_path, "--request-log", str(log), duration=90) as served, \
            tls_front(served.port, cert, key) as tls_port:
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(tls_port))
        api = client.connect(None, None, Clock.start(10.0, 60.0))
        assert api.connection.server == f"https://127.0.0.1:{tls_port}"
        assert api.connection.context == "in-cluster"
        (target,) = cluster_targets(LiveTarget(all_namespaces=True), (), None)
        outcome = run_cluster(ExporterSettings(clusters=(target,), run_timeout=60), target)
    assert outcome.succeeded, outcome.error
    assert outcome.findings is not None
    assert sorted(f.id for f in outcome.findings) == ["MT101", "MT102", "MT103", "MT104", "MT204"]
    assert "/apis/mlops.seldon.io/v1alpha1/" in log.read_text(encoding="utf-8")


def test_a_context_needs_a_kubeconfig_inside_a_pod(in_a_pod: Path) -> None:
    from mlops_trace.errors import UsageError

    with pytest.raises(UsageError, match="--context needs a kubeconfig"):
        cluster_targets(LiveTarget(), ("east",), None)
