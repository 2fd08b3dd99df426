"""Pods as NetworkPolicy endpoints, for the network checks that follow traffic from the ingress controller to Envoy
and between Seldon pods.

`workload_members`/`pod_endpoints` turn Pods (or workload templates when Pods are missing) into `netpol.Endpoint`s;
`namespace_labels_unknown` says when a verdict hinges on Namespace labels the snapshot lacks; `container_port` and
`invalid_ports` read the container ports such a rule is written against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from mlops_trace.analysis import fields
from mlops_trace.analysis.netpol import (
    METADATA_NAME_LABEL,
    Endpoint,
    InvalidPort,
    endpoint_from_pod,
    endpoint_from_template,
    invalid_container_ports,
)
from mlops_trace.snapshot.kube import (
    KubeObject,
    as_list,
    as_mapping,
    pod_containers,
    pod_template_labels,
    pod_template_spec,
)
from mlops_trace.snapshot.snapshot import Snapshot

_WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")


@dataclass(frozen=True)
class PodEndpoint:
    """A Pod (or the pod template of a workload when its Pods are not in the snapshot) as a NetworkPolicy endpoint."""

    endpoint: Endpoint
    source: KubeObject  # the Pod, or the workload whose template stood in for its Pods

    @property
    def from_template(self) -> bool:
        return self.source.kind != "Pod"

    @property
    def label(self) -> str:
        return f"{self.source.kind}/{self.source.name} (template)" if self.from_template else self.source.name


def workload_members(
    snap: Snapshot, namespace: str | None, wanted: Callable[[KubeObject, Mapping[str, str]], bool]
) -> list[KubeObject]:
    """Pods of a namespace (all namespaces for None) that `wanted(obj, labels)` picks; when none is in the snapshot,
    the StatefulSets/Deployments/DaemonSets (scaled above 0) whose pod template it picks."""
    pods = [
        pod
        for pod in snap.objects_of("Pod", namespace)
        if wanted(pod, pod.labels) and str(pod.status.get("phase", "Running")) not in ("Succeeded", "Failed")
    ]
    if pods:
        return pods
    found: list[KubeObject] = []
    for kind in _WORKLOAD_KINDS:
        for obj in snap.objects_of(kind, namespace):
            if fields.replicas(obj.spec.get("replicas")) == 0:
                continue
            if wanted(obj, pod_template_labels(obj)):
                found.append(obj)
    return found


def pod_endpoints(snap: Snapshot, objects: Iterable[KubeObject]) -> list[PodEndpoint]:
    """NetworkPolicy endpoints of Pods (labels, IP, named ports) or of workload templates (no IP)."""
    found: list[PodEndpoint] = []
    for obj in objects:
        namespace = obj.namespace or "default"
        ns_labels = snap.namespace_labels(namespace)
        template = {"metadata": obj.metadata, "spec": obj.spec} if obj.kind == "Pod" else obj.spec.get("template")
        try:
            if obj.kind == "Pod":
                endpoint = endpoint_from_pod(obj.raw, ns_labels)
            else:
                endpoint = endpoint_from_template(namespace, as_mapping(template), ns_labels, name=obj.name)
        except ValueError:
            # A hand-written podIP that is not an address: keep the pod, without its IP.
            endpoint = endpoint_from_template(namespace, as_mapping(template), ns_labels, name=obj.name)
        found.append(PodEndpoint(endpoint, obj))
    return found


def namespace_labels_unknown(
    snap: Snapshot, policies: Iterable[KubeObject], direction: str, peer_namespace: str
) -> bool:
    """Whether a verdict may hinge on labels we do not have: some `direction` ("ingress"/"egress") rule of these
    policies selects peers by Namespace labels other than `kubernetes.io/metadata.name`, and the peer's Namespace
    object is not in the snapshot. A blocked verdict is then no proof."""
    if snap.get("Namespace", None, peer_namespace) is not None:
        return False
    peers_key = "from" if direction == "ingress" else "to"
    for policy in policies:
        for rule in as_list(policy.spec.get(direction)):
            for peer in as_list(as_mapping(rule).get(peers_key)):
                selector = as_mapping(peer).get("namespaceSelector")
                if not isinstance(selector, Mapping):
                    continue
                keys = set(as_mapping(selector.get("matchLabels")))
                keys |= {str(as_mapping(e).get("key")) for e in as_list(selector.get("matchExpressions"))}
                if keys - {METADATA_NAME_LABEL}:
                    return True
    return False


def container_port(obj: KubeObject, container: str | None, names: Iterable[str], default: int) -> int:
    """The number of the first named container port among `names` (in `container` only, when given), else
    `default`: Seldon's Helm charts name the ports (`agent`, `xds`, `http`…), and a custom install may renumber them."""
    wanted = list(names)
    for item in pod_containers(pod_template_spec(obj)):
        if container is not None and str(item.get("name")) != container:
            continue
        for name in wanted:
            for port in as_list(item.get("ports")):
                entry = as_mapping(port)
                number = fields.port_number(entry.get("containerPort"))
                if str(entry.get("name", "")) == name and number is not None:
                    return number
    return default


def invalid_ports(obj: KubeObject) -> list[tuple[str, InvalidPort]]:
    """The container ports of a Pod (or of a workload's pod template) Kubernetes would not accept, each with its
    evidence location: NetworkPolicy rules that name such a port admit no traffic to it."""
    prefix = ".spec" if obj.kind == "Pod" else ".spec.template.spec"
    return [(obj.field_where(prefix + bad.path), bad) for bad in invalid_container_ports(pod_template_spec(obj))]
