"""Which component a pod or a container log belongs to (scheduler, controller, agent, Envoy, ingress, MLServer, the
server pod's rclone, the model and pipeline gateways, the dataflow engine, hodometer).

Bundles are written by hand, so a log may come without its Pod object: the role is read from the Pod's labels when
the Pod is there, and from the pod and container names otherwise (the names Seldon's Helm charts and ingress-nginx use).
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
)


def role_from_labels(labels: Mapping[str, str]) -> Role | None:
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
    if container == "agent":
        return Role.AGENT
    if container in ("mlserver", "triton"):
        return Role.MLSERVER
    if container == "scheduler":
        return Role.SCHEDULER
    if container == "envoy":
        return Role.ENVOY
    role = pod_role(pod_name, labels)
    if role is Role.AGENT:
        # Other containers of a server pod are not the agent: rclone has its own role, a sidecar none.
        return Role.RCLONE if container == "rclone" else Role.OTHER
    if role is Role.CONTROLLER and container not in ("manager", "controller", "seldon-v2-controller-manager"):
        return Role.OTHER
    if role is Role.INGRESS and container not in ("controller", "ingress-nginx", "nginx", "nginx-ingress-controller"):
        return Role.OTHER
    return role
