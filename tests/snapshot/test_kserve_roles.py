"""The log roles of a KServe stack's containers (snapshot/roles.py): an InferenceService pod's storage-initializer,
queue-proxy, kserve-container and istio-proxy, a transformer's, the Istio ingress gateway, Knative's activator and the
KServe controller; by the Pod's labels when the bundle holds it, by the names KServe and Knative give otherwise.

Labels and names as KServe (kserve/kserve aaac4e2: pkg/constants `serving.kserve.io/inferenceservice`, `component`;
the controller's `control-plane: kserve-controller-manager`), Knative (knative/serving config/core/deployments/
activator.yaml: `app: activator`) and Istio (`istio: ingressgateway`) set them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.roles import Role, container_role, pod_role

PREDICTOR = {"serving.kserve.io/inferenceservice": "sklearn-iris", "component": "predictor"}
TRANSFORMER = {"serving.kserve.io/inferenceservice": "sklearn-iris", "component": "transformer"}
PREDICTOR_POD = "sklearn-iris-predictor-00001-deployment-7d9c8f6b5-x2x4q"


@pytest.mark.parametrize(
    ("container", "role"),
    [
        ("storage-initializer", Role.STORAGE_INITIALIZER),
        ("queue-proxy", Role.QUEUE_PROXY),
        ("kserve-container", Role.KSERVE_CONTAINER),
        ("istio-proxy", Role.ISTIO_PROXY),
        ("istio-init", Role.OTHER),
        ("agent", Role.OTHER),  # KServe's logger/batcher agent is not Seldon's agent
    ],
)
def test_a_predictor_pods_containers(container: str, role: Role) -> None:
    assert container_role(PREDICTOR_POD, container, PREDICTOR) is role


def test_a_transformer_pods_model_server_is_the_transformer() -> None:
    pod = "sklearn-iris-transformer-00001-deployment-5b7c9d-abcde"
    assert container_role(pod, "kserve-container", TRANSFORMER) is Role.TRANSFORMER
    assert container_role(pod, "queue-proxy", TRANSFORMER) is Role.QUEUE_PROXY
    assert container_role(pod, "storage-initializer", TRANSFORMER) is Role.STORAGE_INITIALIZER


@pytest.mark.parametrize(
    ("pod", "container", "role"),
    [
        (PREDICTOR_POD, "kserve-container", Role.KSERVE_CONTAINER),  # Knative: <isvc>-predictor-<rev>-deployment-…
        ("sklearn-iris-predictor-6f7d8c9b5d-qw8rt", "storage-initializer", Role.STORAGE_INITIALIZER),  # Standard
        ("sklearn-iris-transformer-00001-deployment-5b7c9d-abcde", "kserve-container", Role.TRANSFORMER),
        ("sklearn-iris-explainer-00001-deployment-5b7c9d-abcde", "queue-proxy", Role.QUEUE_PROXY),
        ("istio-ingressgateway-6c8f7d9b5-tx7zk", "istio-proxy", Role.ISTIO_GATEWAY),
        ("istio-ingressgateway-6c8f7d9b5-tx7zk", "discovery", Role.OTHER),
        ("activator-7d9c8f6b5-x2x4q", "activator", Role.ACTIVATOR),
        ("kserve-controller-manager-5c9d8f7b6-l9k2m", "manager", Role.KSERVE_CONTROLLER),
        ("kserve-controller-manager-5c9d8f7b6-l9k2m", "kube-rbac-proxy", Role.OTHER),
        ("mlserver-0", "agent", Role.AGENT),  # Seldon's stays Seldon's
    ],
)
def test_roles_by_name_when_the_pod_is_not_in_the_bundle(pod: str, container: str, role: Role) -> None:
    assert container_role(pod, container) is role


@pytest.mark.parametrize(
    ("labels", "role"),
    [
        ({"istio": "ingressgateway", "app": "istio-ingressgateway"}, Role.ISTIO_GATEWAY),
        ({"app": "activator", "app.kubernetes.io/component": "activator"}, Role.ACTIVATOR),
        ({"control-plane": "kserve-controller-manager"}, Role.KSERVE_CONTROLLER),
        (PREDICTOR, Role.KSERVE_CONTAINER),
        (TRANSFORMER, Role.TRANSFORMER),
    ],
)
def test_pod_roles_by_label_whatever_the_name(labels: dict[str, str], role: Role) -> None:
    assert pod_role("some-pod-abc12", labels) is role


POD_YAML = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: models
  labels: {labels}
spec:
  initContainers: [{{name: storage-initializer}}]
  containers: [{{name: kserve-container}}, {{name: queue-proxy}}, {{name: istio-proxy}}]
"""


def _bundle(root: Path, pod: str, labels: str, logs: dict[str, str]) -> None:
    (root / "kube").mkdir(parents=True)
    (root / "kube" / "pods.yaml").write_text(POD_YAML.format(name=pod, labels=labels), encoding="utf-8")
    folder = root / "logs" / "models" / pod
    folder.mkdir(parents=True)
    for name, text in logs.items():
        (folder / name).write_text(text, encoding="utf-8")


def test_a_bundle_files_each_kserve_log_under_its_role(tmp_path: Path) -> None:
    # A renamed pod: only its labels say it is a transformer's.
    pod = "iris-tx-5b7c9d-abcde"
    labels = "{serving.kserve.io/inferenceservice: sklearn-iris, component: transformer}"
    failed = ("2026-08-21 10:00:01.120 1 storage.initializer ERROR [initializer-entrypoint:<module>():28] Storage "
              "initialization failed: Local path file:///models/iris does not exist.\n")
    _bundle(tmp_path, pod, labels, {
        "storage-initializer.log": failed,
        "storage-initializer.previous.log": failed,
        "kserve-container.log": "2026-08-21 10:00:05.001 1 kserve INFO [model_server.py:register_model():472] "
                                "Registering model: sklearn-iris\n",
        "queue-proxy.log": "{}\n",
        "istio-proxy.log": "\n",
    })
    snap = load_bundle_dir(tmp_path)
    (init,) = snap.logs_of(Role.STORAGE_INITIALIZER)
    assert init.pod == pod and init.previous_run is not None and init.previous_run.previous
    assert [log.container for log in snap.logs_of(Role.TRANSFORMER)] == ["kserve-container"]
    assert [log.container for log in snap.logs_of(Role.QUEUE_PROXY)] == ["queue-proxy"]
    assert [log.container for log in snap.logs_of(Role.ISTIO_PROXY)] == ["istio-proxy"]
    assert snap.logs_of(Role.KSERVE_CONTAINER) == []
    assert snap.has("logs:storage-initializer") and snap.has("logs:transformer")
    assert not snap.has("logs:istio-ingressgateway")
