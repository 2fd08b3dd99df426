"""A KServe stack collected from a scriptable API server: which containers' logs are read (an InferenceService pod's
storage-initializer init container and its previous run, queue-proxy, kserve-container, istio-proxy; the ingress
gateway, the activator, the controller), Knative's Service written apart from the core Services, and KServe's and
Knative's ConfigMaps found by name in their own namespaces, redacted, whatever `-n` named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.collect.logs import LogTarget, log_targets
from mlops_trace.collect.target import LiveTarget
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.roles import Role
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig

NS = "models"
POD = "sklearn-iris-predictor-00001-deployment-7d9c8f6b5-x2x4q"
S3_SECRET = "planted-s3-secret-5521"
INGRESS = {"ingressGateway": "knative-serving/knative-ingress-gateway", "ingressDomain": "example.com"}


def _status(name: str, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": restarts == 0, "restartCount": restarts, "image": "i", "imageID": "i",
            "state": {"running": {}} if restarts == 0 else {"waiting": {"reason": "CrashLoopBackOff"}}}


def _predictor_pod() -> dict[str, Any]:
    """A Knative revision pod whose storage-initializer keeps failing (CrashLoopBackOff restarts it)."""
    return {
        "metadata": {"name": POD, "namespace": NS, "labels": {
            "serving.kserve.io/inferenceservice": "sklearn-iris", "component": "predictor",
            "serving.knative.dev/revision": "sklearn-iris-predictor-00001"}},
        "spec": {
            "initContainers": [{"name": "istio-init"}, {"name": "storage-initializer"}],
            "containers": [{"name": "kserve-container"}, {"name": "queue-proxy"}, {"name": "istio-proxy"}],
        },
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [_status("istio-init"), _status("storage-initializer", restarts=3)],
            "containerStatuses": [_status("kserve-container"), _status("queue-proxy"), _status("istio-proxy")],
        },
    }


def _pod(name: str, namespace: str, labels: dict[str, str], containers: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": c} for c in containers]}}


def _targets(targets: list[LogTarget]) -> list[tuple[str, str, Role, bool]]:
    return [(t.pod, t.container, t.role, t.previous) for t in targets]


def test_the_containers_of_a_kserve_stack_whose_logs_are_read() -> None:
    pods = [
        _predictor_pod(),
        _pod("istio-ingressgateway-6c8f7d9b5-tx7zk", "istio-system",
             {"app": "istio-ingressgateway", "istio": "ingressgateway"}, ["istio-proxy"]),
        _pod("activator-7d9c8f6b5-x2x4q", "knative-serving",
             {"app": "activator", "app.kubernetes.io/component": "activator"}, ["activator"]),
        _pod("kserve-controller-manager-5c9d8f7b6-l9k2m", "kserve",
             {"control-plane": "kserve-controller-manager"}, ["manager", "kube-rbac-proxy"]),
        _pod("web-0", NS, {"app": "web"}, ["web", "istio-proxy"]),  # not KServe's: none of its logs
    ]
    assert _targets(log_targets(pods)) == [
        (POD, "kserve-container", Role.KSERVE_CONTAINER, False),
        (POD, "queue-proxy", Role.QUEUE_PROXY, False),
        (POD, "istio-proxy", Role.ISTIO_PROXY, False),
        (POD, "storage-initializer", Role.STORAGE_INITIALIZER, False),
        (POD, "storage-initializer", Role.STORAGE_INITIALIZER, True),  # restarted: its previous run too
        ("istio-ingressgateway-6c8f7d9b5-tx7zk", "istio-proxy", Role.ISTIO_GATEWAY, False),
        ("activator-7d9c8f6b5-x2x4q", "activator", Role.ACTIVATOR, False),
        ("kserve-controller-manager-5c9d8f7b6-l9k2m", "manager", Role.KSERVE_CONTROLLER, False),
    ]


INIT_LOG = ("2026-08-21 10:00:01.101 1 storage.initializer ERROR [initializer-entrypoint:<module>():28] Storage "
            "initialization failed: S3 authentication failed. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use "
            "awsAnonymousCredential=true.\n")


def _api() -> FakeApi:
    api = FakeApi()
    api.json("/version", {"major": "1", "minor": "31", "gitVersion": "v1.31.2"})
    api.json(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS}})
    for spec in COLLECTED_KINDS:
        for namespace in spec.list_scopes([NS], all_namespaces=False):
            api.items(spec.list_path(namespace), spec.kind, [])
    api.items(f"/api/v1/namespaces/{NS}/pods", "Pod", [_predictor_pod()])
    api.items(f"/api/v1/namespaces/{NS}/services", "Service", [
        {"metadata": {"name": "sklearn-iris-predictor", "namespace": NS},
         "spec": {"type": "ExternalName", "externalName": "knative-local-gateway.istio-system.svc.cluster.local"}}])
    api.items(f"/apis/serving.knative.dev/v1/namespaces/{NS}/services", "Service", [
        {"metadata": {"name": "sklearn-iris-predictor", "namespace": NS},
         "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "RevisionMissing"}]}}])
    api.items(f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices", "InferenceService", [
        {"metadata": {"name": "sklearn-iris", "namespace": NS}}])
    credentials = {"s3": {"s3AccessKeyIDName": "AWS_ACCESS_KEY_ID", "s3Endpoint": "minio.kserve:9000",
                          "s3SecretAccessKey": S3_SECRET}}
    api.items("/api/v1/namespaces/kserve/configmaps", "ConfigMap", [
        {"metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
         "data": {"ingress": json.dumps(INGRESS), "credentials": json.dumps(credentials)}},
        {"metadata": {"name": "unrelated", "namespace": "kserve"}, "data": {"x": "y"}},
    ])
    api.items("/api/v1/namespaces/knative-serving/configmaps", "ConfigMap", [
        {"metadata": {"name": "config-domain", "namespace": "knative-serving"}, "data": {"example.com": ""}}])
    log_path = f"/api/v1/namespaces/{NS}/pods/{POD}/log"
    for container in ("kserve-container", "queue-proxy", "istio-proxy"):
        api.log(log_path, container, "")
    api.log(log_path, "storage-initializer", INIT_LOG)
    api.log(log_path, "storage-initializer", INIT_LOG, previous=True)
    return api


def test_a_kserve_namespace_collected_and_read_back(tmp_path: Path) -> None:
    api = _api()
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        root = tmp_path / "bundle"
        root.mkdir()
        collect_to_dir(LiveTarget(namespaces=(NS,), kubeconfig=str(kubeconfig), request_timeout=5.0), root)
    meta = yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))
    assert {"InferenceService", "Service.serving.knative.dev", "Revision", "VirtualService",
            "Gateway.networking.istio.io", "HTTPRoute"} <= set(meta["kinds"])
    # Each Service kind in its own file.
    core = yaml.safe_load((root / "kube/services.yaml").read_text(encoding="utf-8"))["items"]
    knative = yaml.safe_load((root / "kube/services.serving.knative.dev.yaml").read_text(encoding="utf-8"))["items"]
    assert [s["apiVersion"] for s in core] == ["v1"] and [s["apiVersion"] for s in knative] == ["serving.knative.dev/v1"]
    # The ConfigMaps: asked by name only, in KServe's and Knative's namespaces though `-n models` named neither.
    cm_calls = [unquote(p) for _, p in api.requests if p.split("?")[0].endswith("/configmaps")]
    assert "/api/v1/namespaces/kserve/configmaps?fieldSelector=metadata.name=inferenceservice-config&limit=500" in (
        cm_calls)
    assert all("fieldSelector=metadata.name=" in p for p in cm_calls)
    text = (root / "kube/configmaps.yaml").read_text(encoding="utf-8")
    assert S3_SECRET not in text and "unrelated" not in text
    snap = load_bundle_dir(root)
    config = snap.get("ConfigMap", "kserve", "inferenceservice-config")
    assert config is not None and json.loads(config.raw["data"]["ingress"]) == INGRESS
    assert snap.get("ConfigMap", "knative-serving", "config-domain") is not None
    assert [o.name for o in snap.objects_of("Service.serving.knative.dev", NS)] == ["sklearn-iris-predictor"]
    assert [o.spec.get("type") for o in snap.objects_of("Service", NS)] == ["ExternalName"]
    # The storage-initializer's log and its previous run, under its role.
    (init,) = snap.logs_of(Role.STORAGE_INITIALIZER)
    assert init.previous_run is not None
    assert next(text for _, text in init.lines()).startswith("2026-08-21 10:00:01.101 1 storage.initializer ERROR")
