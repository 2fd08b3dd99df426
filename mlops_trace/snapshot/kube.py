"""Kubernetes objects as read from a bundle or a cluster, with the few accessors checks need.

Objects stay plain dicts underneath (exactly what `kubectl get -o yaml` prints), wrapped in a frozen `KubeObject`
that knows where it came from, so evidence can point at the file and document that held it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SELDON_GROUP = "mlops.seldon.io"


@dataclass(frozen=True)
class KubeObject:
    kind: str  # the key of its kind (`kinds.kind_key`): `Service`, or `Service.serving.knative.dev` for Knative's
    namespace: str | None
    name: str
    raw: Mapping[str, Any]
    source: str  # "kube/models.yaml#3": the file and the document (or List item) index

    @property
    def ref(self) -> str:
        """`Kind/name`, the way findings name objects."""
        return f"{self.kind}/{self.name}"

    @property
    def api_version(self) -> str:
        return str(self.raw.get("apiVersion") or "")

    @property
    def metadata(self) -> Mapping[str, Any]:
        return _mapping(self.raw.get("metadata"))

    @property
    def labels(self) -> Mapping[str, str]:
        return {str(k): str(v) for k, v in _mapping(self.metadata.get("labels")).items()}

    @property
    def annotations(self) -> Mapping[str, str]:
        return {str(k): str(v) for k, v in _mapping(self.metadata.get("annotations")).items()}

    @property
    def spec(self) -> Mapping[str, Any]:
        return _mapping(self.raw.get("spec"))

    @property
    def status(self) -> Mapping[str, Any]:
        return _mapping(self.raw.get("status"))

    def conditions(self) -> list[Mapping[str, Any]]:
        return [c for c in _list(self.status.get("conditions")) if isinstance(c, Mapping)]

    def condition(self, type_: str) -> Mapping[str, Any] | None:
        for cond in self.conditions():
            if str(cond.get("type")) == type_:
                return cond
        return None

    def condition_true(self, type_: str) -> bool | None:
        """True/False from the condition's status; None when the condition is absent."""
        cond = self.condition(type_)
        if cond is None:
            return None
        return str(cond.get("status", "")).lower() == "true"

    @property
    def is_seldon(self) -> bool:
        return self.api_version.startswith(SELDON_GROUP + "/")

    def field_where(self, path: str) -> str:
        """Evidence location of a field of this object: `kube/x.yaml#2 Service/foo .spec.type`."""
        return f"{self.source} {self.ref} {path}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one: bundles are written by hand and may hold anything."""
    return _mapping(value)


def as_list(value: Any) -> list[Any]:
    """`value` when it is a list, else an empty one."""
    return _list(value)


def pod_containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Containers and init containers of a pod spec (sidecar init containers count on Kubernetes >= 1.29)."""
    for key in ("containers", "initContainers"):
        for container in _list(pod_spec.get(key)):
            if isinstance(container, Mapping):
                yield container


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """Literal env values of a container (valueFrom entries are left out: their value is not in the object)."""
    env: dict[str, str] = {}
    for item in _list(container.get("env")):
        if isinstance(item, Mapping) and "name" in item and "value" in item:
            env[str(item["name"])] = str(item["value"])
    return env


def pod_template_spec(workload: KubeObject) -> Mapping[str, Any]:
    """The pod spec of a Pod, or of a Deployment/StatefulSet/DaemonSet template."""
    if workload.kind == "Pod":
        return workload.spec
    return _mapping(_mapping(workload.spec.get("template")).get("spec"))


def pod_template_labels(workload: KubeObject) -> Mapping[str, str]:
    if workload.kind == "Pod":
        return workload.labels
    labels = _mapping(_mapping(_mapping(workload.spec.get("template")).get("metadata")).get("labels"))
    return {str(k): str(v) for k, v in labels.items()}
