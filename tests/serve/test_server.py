"""`bundle serve`: the Kubernetes API over a bundle, read by the real `kubernetes` client and by kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_trace.serve.server import BundleApi, ServedBundle
from mlops_trace.snapshot.bundle import open_bundle

POD = """apiVersion: v1
kind: Pod
metadata:
  name: seldon-scheduler-0
  namespace: fraud-serving
  labels: {app.kubernetes.io/name: seldon-scheduler}
spec: {containers: [{name: scheduler}]}
status: {phase: Running}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: fraud-serving}
data: {token: c2VjcmV0}
---
apiVersion: mlops.seldon.io/v1alpha1
kind: Model
metadata: {name: txn-model, namespace: fraud-serving}
spec: {storageUri: "gs://models/txn"}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: fraud-serving}
"""


DUMP = {
    "configs": [
        {
            "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "dynamic_route_configs": [{"route_config": {"name": "listener_0", "virtual_hosts": []}}],
        }
    ]
}


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "kube").mkdir(parents=True)
    (root / "kube" / "objects.yaml").write_text(POD, encoding="utf-8")
    log_dir = root / "logs" / "fraud-serving" / "seldon-scheduler-0"
    log_dir.mkdir(parents=True)
    (log_dir / "scheduler.log").write_text("".join(f"line {i}\n" for i in range(1, 11)), encoding="utf-8")
    envoy_dir = root / "envoy" / "fraud-serving" / "seldon-envoy-abc"
    envoy_dir.mkdir(parents=True)
    (envoy_dir / "config_dump.json").write_text(json.dumps(DUMP), encoding="utf-8")
    return root


@pytest.fixture()
def api(bundle: Path) -> Iterator[BundleApi]:
    with open_bundle(bundle) as snap:
        yield BundleApi(ServedBundle.build(snap), "127.0.0.1:1")


def _get(api: BundleApi, path: str, accept: str = "") -> tuple[int, object]:
    response = api.handle("GET", path, accept)
    ctype = response.content_type
    return response.status, json.loads(response.body) if ctype == "application/json" and response.body else response.body.decode()


def test_discovery_lists_core_seldon_and_bundle_kinds(api: BundleApi) -> None:
    status, groups = _get(api, "/apis")
    assert status == 200
    names = {g["name"] for g in groups["groups"]}  # type: ignore[index]
    assert {"apps", "mlops.seldon.io", "networking.k8s.io", "example.com"} <= names
    status, core = _get(api, "/api/v1")
    assert {r["name"] for r in core["resources"]} >= {"pods", "pods/log", "services", "namespaces"}  # type: ignore[index]
    assert "secrets" not in {r["name"] for r in core["resources"]}  # type: ignore[index]


def test_list_get_and_selectors(api: BundleApi) -> None:
    status, pods = _get(api, "/api/v1/namespaces/fraud-serving/pods")
    names = sorted(p["metadata"]["name"] for p in pods["items"])  # type: ignore[index]
    assert names == ["seldon-envoy-abc", "seldon-scheduler-0"]  # the Envoy pod is a stand-in for its admin data
    _, selected = _get(api, "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dseldon-scheduler")
    assert [p["metadata"]["name"] for p in selected["items"]] == ["seldon-scheduler-0"]  # type: ignore[index]
    status, model = _get(api, "/apis/mlops.seldon.io/v1alpha1/namespaces/fraud-serving/models/txn-model")
    assert status == 200 and model["spec"]["storageUri"] == "gs://models/txn"  # type: ignore[index]
    assert _get(api, "/apis/mlops.seldon.io/v1alpha1/namespaces/fraud-serving/models/nope")[0] == 404
    assert _get(api, "/api/v1/namespaces/fraud-serving/secrets")[0] == 404
    status, ns = _get(api, "/api/v1/namespaces")
    assert [n["metadata"]["name"] for n in ns["items"]] == ["fraud-serving"]  # type: ignore[index]


def test_logs_tail_and_container_choice(api: BundleApi) -> None:
    status, text = _get(api, "/api/v1/namespaces/fraud-serving/pods/seldon-scheduler-0/log?container=scheduler&tailLines=2")
    assert status == 200 and text == "line 9\nline 10\n"
    assert _get(api, "/api/v1/namespaces/fraud-serving/pods/seldon-scheduler-0/log?container=other")[0] == 400


def test_envoy_admin_through_pod_proxy(api: BundleApi) -> None:
    status, dump = _get(api, "/api/v1/namespaces/fraud-serving/pods/seldon-envoy-abc:9901/proxy/config_dump")
    assert status == 200 and dump == DUMP
    assert _get(api, "/api/v1/namespaces/fraud-serving/pods/seldon-envoy-abc:9901/proxy/stats")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_refused(api: BundleApi, method: str) -> None:
    response = api.handle(method, "/api/v1/namespaces/fraud-serving/pods", "")
    assert response.status == 405
    assert json.loads(response.body)["reason"] == "MethodNotAllowed"


def test_watch_ends_at_once(api: BundleApi) -> None:
    response = api.handle("GET", "/api/v1/pods?watch=true", "")
    assert response.status == 200 and response.body == b""


class Served:
    def __init__(self, bundle: Path, tmp: Path) -> None:
        self.kubeconfig = tmp / "kubeconfig"
        self.request_log = tmp / "requests.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_trace", "bundle", "serve", str(bundle), "--port", "0",
             "--kubeconfig-out", str(self.kubeconfig), "--request-log", str(self.request_log), "--duration", "60"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not self.kubeconfig.exists():
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "bundle serve did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture()
def served(bundle: Path, tmp_path: Path) -> Iterator[Served]:
    server = Served(bundle, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_real_kubernetes_client_reads_the_served_bundle(served: Served) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(served.kubeconfig))
    core = client.CoreV1Api(api_client)
    pods = core.list_pod_for_all_namespaces()
    assert {p.metadata.name for p in pods.items} == {"seldon-scheduler-0", "seldon-envoy-abc"}
    log = core.read_namespaced_pod_log("seldon-scheduler-0", "fraud-serving", container="scheduler", tail_lines=1)
    assert log == "line 10\n"
    custom = client.CustomObjectsApi(api_client)
    models = custom.list_namespaced_custom_object("mlops.seldon.io", "v1alpha1", "fraud-serving", "models")
    assert [m["metadata"]["name"] for m in models["items"]] == ["txn-model"]
    with pytest.raises(client.ApiException) as refused:
        core.delete_namespaced_pod("seldon-scheduler-0", "fraud-serving")
    assert refused.value.status == 405
    verbs = {line.split(" ", 1)[0] for line in served.request_log.read_text().splitlines()}
    assert verbs == {"GET", "DELETE"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_pods_all_namespaces(served: Served) -> None:
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", str(served.kubeconfig), "get", "pods", "-A"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seldon-scheduler-0" in proc.stdout and "fraud-serving" in proc.stdout
    models = subprocess.run(
        ["kubectl", "--kubeconfig", str(served.kubeconfig), "get", "models.mlops.seldon.io", "-n", "fraud-serving", "-o", "name"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert models.returncode == 0, models.stderr
    assert models.stdout.strip() == "model.mlops.seldon.io/txn-model"


def test_serve_exits_2_on_missing_bundle(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "bundle", "serve", str(tmp_path / "nope"), "--duration", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_kinds_the_bundle_never_collected_are_not_found(api: BundleApi) -> None:
    # An empty list would claim "none exist"; the bundle only says it did not look.
    assert _get(api, "/apis/networking.k8s.io/v1/networkpolicies")[0] == 404
    assert _get(api, "/api/v1/namespaces/fraud-serving/services")[0] == 404
