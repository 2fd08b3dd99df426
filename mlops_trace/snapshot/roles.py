"""Which component a pod or a container log belongs to: Seldon's (scheduler, controller, agent, Envoy, ingress,
MLServer, the server pod's rclone, the model and pipeline gateways, the dataflow engine, hodometer) and KServe's
(the controller, a revision pod's storage-initializer, queue-proxy, kserve-container and istio-proxy, a transformer,
Knative's activator, the Istio ingress gateway).

Bundles are written by hand, so a log may come without its Pod object: the role is read from the Pod's labels when
the Pod is there, and from the pod and container names otherwise (the names Seldon's Helm charts, ingress-nginx, KServe,
Knative and Istio use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    SCHEDULER = "scheduler"
    CONTROLLER = "controller"
    AGENT = "agent"
    MLSERVER = "mlserver"
    ENVOY = "envoy"
    INGRESS = "ingress"
    MODELGATEWAY = "modelgateway"
    PIPELINEGATEWAY = "pipelinegateway"
    DATAFLOW = "dataflow-engine"
    HODOMETER = "hodometer"
    RCLONE = "rclone"  # the server pod's rclone sidecar, which downloads model artifacts for the agent
    KSERVE_CONTROLLER = "kserve-controller"
    STORAGE_INITIALIZER = "storage-initializer"  # the init container that downloads the model of a KServe pod
    QUEUE_PROXY = "queue-proxy"  # Knative's sidecar in front of the serving container
    KSERVE_CONTAINER = "kserve-container"  # the model server of a predictor (or explainer) pod
    TRANSFORMER = "transformer"  # the kserve-container of a transformer pod
    ISTIO_PROXY = "istio-proxy"  # a pod's Istio sidecar
    ISTIO_GATEWAY = "istio-ingressgateway"  # the mesh's ingress gateway (its access log is hop 2 of the KServe path)
    ACTIVATOR = "activator"  # Knative's activator, on the path while a revision is scaled to zero or under burst
    OTHER = "other"


_NAME_LABELS = ("app.kubernetes.io/name", "app", "control-plane", "app.kubernetes.io/component")

# Pod-name prefixes of the components; a StatefulSet pod ends in -<n>, a Deployment pod in -<hash>-<id>.
_POD_PREFIXES: tuple[tuple[re.Pattern[str], Role], ...] = (
    (re.compile(r"^seldon-scheduler(-|$)"), Role.SCHEDULER),
    (re.compile(r"^seldon-v2-controller-manager(-|$)|^seldon-controller-manager(-|$)"), Role.CONTROLLER),
    (re.compile(r"^seldon-envoy(-|$)"), Role.ENVOY),
    (re.compile(r"^seldon-modelgateway(-|$)"), Role.MODELGATEWAY),
    (re.compile(r"^seldon-pipelinegateway(-|$)"), Role.PIPELINEGATEWAY),
    (re.compile(r"^seldon-dataflow-engine(-|$)"), Role.DATAFLOW),
    (re.compile(r"^seldon-hodometer(-|$)"), Role.HODOMETER),
    (re.compile(r"ingress-nginx-controller|^ingress-nginx(-|$)|^nginx-ingress"), Role.INGRESS),
    (re.compile(r"^kserve-controller-manager(-|$)"), Role.KSERVE_CONTROLLER),
    (re.compile(r"^istio-ingressgateway(-|$)"), Role.ISTIO_GATEWAY),
    (re.compile(r"^activator(-|$)"), Role.ACTIVATOR),
    # An InferenceService's pods: `<isvc>-predictor-00001-deployment-<hash>-<id>` (Knative), `<isvc>-predictor-<hash>-<id>`
    # (Standard), likewise `-transformer-` and `-explainer-` (kserve/kserve pkg/constants `PredictorServiceName` & co).
    (re.compile(r"-transformer(-|$)"), Role.TRANSFORMER),
    (re.compile(r"-(predictor|explainer)(-|$)"), Role.KSERVE_CONTAINER),
)

# The label every pod of an InferenceService carries, and the one that tells its components apart.
KSERVE_ISVC_LABEL = "serving.kserve.io/inferenceservice"
KSERVE_COMPONENT_LABEL = "component"


def role_from_labels(labels: Mapping[str, str]) -> Role | None:
    if KSERVE_ISVC_LABEL in labels:
        return Role.TRANSFORMER if labels.get(KSERVE_COMPONENT_LABEL) == "transformer" else Role.KSERVE_CONTAINER
    if labels.get("istio") == "ingressgateway" or labels.get("app") == "istio-ingressgateway":
        return Role.ISTIO_GATEWAY
    if labels.get("control-plane") == "kserve-controller-manager":
        return Role.KSERVE_CONTROLLER
    if labels.get("app") == "activator" and "serving.knative.dev/release" in labels or labels.get(
        "app.kubernetes.io/component"
    ) == "activator":
        return Role.ACTIVATOR
    for key in _NAME_LABELS:
        value = labels.get(key, "")
        if not value:
            continue
        if value == "seldon-scheduler":
            return Role.SCHEDULER
        if value in ("seldon-v2-controller-manager", "seldon-controller-manager", "v2-controller-manager"):
            return Role.CONTROLLER
        if value == "seldon-envoy":
            return Role.ENVOY
        if value == "seldon-modelgateway":
            return Role.MODELGATEWAY
        if value == "seldon-pipelinegateway":
            return Role.PIPELINEGATEWAY
        if value == "seldon-dataflow-engine":
            return Role.DATAFLOW
        if value in ("seldon-hodometer", "hodometer"):
            return Role.HODOMETER
        if value == "seldon-server":
            return Role.AGENT  # a server pod; its containers are told apart by name
        if value in ("ingress-nginx", "nginx-ingress", "ingress-nginx-controller"):
            return Role.INGRESS
    if "seldon-server-name" in labels:
        return Role.AGENT
    return None


def pod_role(pod_name: str, labels: Mapping[str, str] | None = None) -> Role:
    """The component a pod belongs to; server pods (agent + mlserver) are `Role.AGENT`."""
    by_label = role_from_labels(labels or {})
    if by_label is not None:
        return by_label
    for pattern, role in _POD_PREFIXES:
        if pattern.search(pod_name):
            return role
    return Role.OTHER


def container_role(pod_name: str, container: str, labels: Mapping[str, str] | None = None) -> Role:
    """The component a container's log belongs to."""
    role = pod_role(pod_name, labels)
    if role in (Role.KSERVE_CONTAINER, Role.TRANSFORMER):
        # First: a KServe pod's own `agent` (logger, batcher) is not Seldon's agent.
        return _kserve_pod_container_role(role, container)
    if container == "agent":
        return Role.AGENT
    if container in ("mlserver", "triton"):
        return Role.MLSERVER
    if container == "scheduler":
        return Role.SCHEDULER
    if container == "envoy":
        return Role.ENVOY
    if role is Role.ISTIO_GATEWAY:
        return role if container in ("istio-proxy", "istio-ingressgateway") else Role.OTHER
    if role is Role.KSERVE_CONTROLLER:
        return role if container in ("manager", "kserve-controller") else Role.OTHER
    if role is Role.AGENT:
        # Other containers of a server pod are not the agent: rclone has its own role, a sidecar none.
        return Role.RCLONE if container == "rclone" else Role.OTHER
    if role is Role.CONTROLLER and container not in ("manager", "controller", "seldon-v2-controller-manager"):
        return Role.OTHER
    if role is Role.INGRESS and container not in ("controller", "ingress-nginx", "nginx", "nginx-ingress-controller"):
        return Role.OTHER
    return role


def _kserve_pod_container_role(pod_role_: Role, container: str) -> Role:
    """A KServe pod's containers: the model server (or transformer) is `kserve-container`; Knative and Istio add
    `queue-proxy` and `istio-proxy`; `storage-initializer` runs first."""
    if container == "storage-initializer":
        return Role.STORAGE_INITIALIZER
    if container == "queue-proxy":
        return Role.QUEUE_PROXY
    if container == "istio-proxy":
        return Role.ISTIO_PROXY
    if container in ("kserve-container", "transformer-container"):
        return pod_role_
    return Role.OTHER
