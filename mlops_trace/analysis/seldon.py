"""Seldon Core v2 topology read from a Snapshot: schedulers, agents, controllers, Envoy, names and addresses.

Pure helpers the checks share, so each check states its rule and not how to find a scheduler. Names and ports are the
ones SELDON-FACTS.md lists (Helm defaults); labels are preferred over names where both exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping, container_env, pod_containers, pod_template_spec
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import Snapshot

SCHEDULER_SERVICE = "seldon-scheduler"
MESH_SERVICE = "seldon-mesh"
SCHEDULER_AGENT_PORT = 9005
SCHEDULER_API_PORT = 9004
SCHEDULER_XDS_PORT = 9002
ENVOY_HTTP_PORT = 9000
AGENT_PROXY_HTTP_PORT = 9001
AGENT_PROXY_GRPC_PORT = 9501


def is_ready(obj: KubeObject) -> bool | None:
    """The `Ready` condition of a Seldon resource: True/False, or None when the object has no status."""
    return obj.condition_true("Ready")


@dataclass(frozen=True)
class ServiceAddress:
    service: str
    namespace: str


def parse_service_host(host: str, default_namespace: str) -> ServiceAddress | None:
    """`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local` (with an optional `:port`) → Service and namespace.
    None for an IP address or a name outside the cluster domain."""
    name = host.strip().rstrip(".").split(":", 1)[0]
    if not name or re.fullmatch(r"[\d.]+", name):
        return None
    parts = name.split(".")
    if len(parts) == 1:
        return ServiceAddress(parts[0], default_namespace)
    if len(parts) == 2:
        return ServiceAddress(parts[0], parts[1])
    if parts[2] == "svc":
        return ServiceAddress(parts[0], parts[1])
    return None


# --- workloads and pods ----------------------------------------------------------------------------------------------


def workload_replicas(workload: KubeObject) -> int | None:
    """Desired replicas of a Deployment/StatefulSet (Kubernetes defaults a missing field to 1); None when the field
    holds no count (`-1`, `.nan`, `"two"`), so nobody can tell how many pods it asks for."""
    return fields.replicas(workload.spec.get("replicas"))


def replicas_text(workload: KubeObject) -> str:
    """`replicas=2`, or `replicas=.nan (not a count)` for evidence."""
    count = workload_replicas(workload)
    if count is not None:
        return f"replicas={count}"
    return f"replicas={fields.shown(workload.spec.get('replicas'))} (not a count)"


def pod_running(pod: KubeObject) -> bool:
    return str(pod.status.get("phase", "")) == "Running" and not pod.metadata.get("deletionTimestamp")


def scheduler_workloads(snap: Snapshot, namespace: str) -> list[KubeObject]:
    """StatefulSets/Deployments of the Seldon scheduler in a namespace."""
    found: list[KubeObject] = []
    for kind in ("StatefulSet", "Deployment"):
        for obj in snap.objects_of(kind, namespace):
            labels = as_mapping(as_mapping(obj.spec.get("template")).get("metadata")).get("labels")
            if obj.name == SCHEDULER_SERVICE or pod_role(obj.name, as_mapping(labels)) is Role.SCHEDULER:
                found.append(obj)
    return found


def scheduler_pods(snap: Snapshot, namespace: str) -> list[KubeObject]:
    return [p for p in snap.objects_of("Pod", namespace) if pod_role(p.name, p.labels) is Role.SCHEDULER]


def runtime_disables_scheduler(snap: Snapshot, namespace: str) -> KubeObject | None:
    """The SeldonRuntime of the namespace when its overrides scale `seldon-scheduler` to 0 or disable it."""
    for runtime in snap.objects_of("SeldonRuntime", namespace):
        for override in as_list(runtime.spec.get("overrides")):
            item = as_mapping(override)
            if item.get("name") != SCHEDULER_SERVICE:
                continue
            # An override without replicas (read as 1) or with one that is no count does not scale it down.
            if item.get("disable") is True or fields.replicas(item.get("replicas")) == 0:
                return runtime
    return None


@dataclass(frozen=True)
class LocalScheduler:
    """What the snapshot says about the namespace's own scheduler."""

    running: bool | None  # None: nothing in the snapshot tells
    evidence: tuple[tuple[str, str], ...]  # (where, what)


def local_scheduler(snap: Snapshot, namespace: str) -> LocalScheduler:
    """Is a scheduler of this namespace's own running? Pods win over workloads, workloads over the runtime."""
    pods = scheduler_pods(snap, namespace)
    running_pods = [p for p in pods if pod_running(p)]
    if running_pods:
        pod = running_pods[0]
        return LocalScheduler(True, ((pod.field_where(".status.phase"), f"Pod {pod.name} is Running"),))
    workloads = scheduler_workloads(snap, namespace)
    scaled_up = [w for w in workloads if (workload_replicas(w) or 0) > 0]
    if scaled_up and not (pods and snap.covers("Pod", namespace)):
        w = scaled_up[0]
        return LocalScheduler(True, ((w.field_where(".spec.replicas"), f"{w.ref} has {replicas_text(w)}"),))
    evidence: list[tuple[str, str]] = []
    for w in workloads:
        evidence.append((w.field_where(".spec.replicas"), f"{w.ref} has {replicas_text(w)}"))
    for p in pods:
        evidence.append((p.field_where(".status.phase"), f"Pod {p.name} is {p.status.get('phase', 'unknown')}"))
    runtime = runtime_disables_scheduler(snap, namespace)
    if runtime is not None:
        evidence.append((runtime.field_where(".spec.overrides"), "SeldonRuntime scales seldon-scheduler to 0"))
    uncounted = [w for w in workloads if workload_replicas(w) is None]
    if uncounted and runtime is None and not (pods and snap.covers("Pod", namespace)):
        # A workload whose replicas are no count may run pods or not, and no Pod of the input tells.
        return LocalScheduler(None, tuple(evidence))
    if workloads or pods or runtime is not None:
        return LocalScheduler(False, tuple(evidence))
    if snap.covers("StatefulSet", namespace) or snap.covers("Pod", namespace):
        return LocalScheduler(False, ((f"kube/ (namespace {namespace})", "no seldon-scheduler StatefulSet or Pod"),))
    return LocalScheduler(None, ())


def server_pods(snap: Snapshot, namespace: str | None = None) -> list[KubeObject]:
    """Pods that run a Seldon agent (a container named `agent`, or seldon-server labels)."""
    found = []
    for pod in snap.objects_of("Pod", namespace):
        names = {str(c.get("name")) for c in pod_containers(pod.spec)}
        if "agent" in names or pod_role(pod.name, pod.labels) is Role.AGENT:
            found.append(pod)
    return found


def server_workloads(snap: Snapshot, namespace: str | None = None) -> list[KubeObject]:
    """StatefulSets/Deployments whose pod template runs a Seldon agent."""
    found = []
    for kind in ("StatefulSet", "Deployment"):
        for obj in snap.objects_of(kind, namespace):
            if any(str(c.get("name")) == "agent" for c in pod_containers(pod_template_spec(obj))):
                found.append(obj)
    return found


def runs_seldon_agent(obj: KubeObject) -> bool:
    """A container named `agent` that is Seldon's (its image, or the SELDON_* settings it reads): other products
    ship containers called `agent` too."""
    for container in pod_containers(pod_template_spec(obj)):
        if str(container.get("name")) != "agent":
            continue
        env_names = {str(as_mapping(e).get("name")) for e in as_list(container.get("env"))}
        if "seldon" in str(container.get("image", "")).lower() or any(n.startswith("SELDON_") for n in env_names):
            return True
    return False


def agent_container(workload: KubeObject) -> Mapping[str, Any] | None:
    for container in pod_containers(pod_template_spec(workload)):
        if str(container.get("name")) == "agent":
            return container
    return None


def agent_scheduler_host(workload: KubeObject) -> str | None:
    """`SELDON_SCHEDULER_HOST` of the agent container (Helm sets the short name `seldon-scheduler`)."""
    container = agent_container(workload)
    if container is None:
        return None
    return container_env(container).get("SELDON_SCHEDULER_HOST")


def controller_workloads(snap: Snapshot) -> list[KubeObject]:
    """Deployments of the Seldon v2 controller manager, by name, labels or image."""
    found = []
    for dep in snap.objects_of("Deployment"):
        labels = as_mapping(as_mapping(as_mapping(dep.spec.get("template")).get("metadata")).get("labels"))
        if pod_role(dep.name, {str(k): str(v) for k, v in labels.items()}) is Role.CONTROLLER:
            found.append(dep)
            continue
        images = " ".join(str(c.get("image", "")) for c in pod_containers(pod_template_spec(dep)))
        if "seldonv2-controller" in images or "seldon-v2-controller" in images:
            found.append(dep)
    return found


def envoy_services(snap: Snapshot, namespace: str | None = None) -> list[KubeObject]:
    """Services in front of Seldon's Envoy: `seldon-mesh`, or any Service whose selector picks Envoy pods."""
    found = []
    for svc in snap.objects_of("Service", namespace):
        selector = {str(k): str(v) for k, v in as_mapping(svc.spec.get("selector")).items()}
        if svc.name == MESH_SERVICE or (selector and pod_role("", selector) is Role.ENVOY):
            found.append(svc)
    return found


@dataclass(frozen=True)
class Candidate:
    """One named candidate of an Experiment, with its weight when that is a valid one."""

    name: str
    index: int  # position in spec.candidates, for evidence
    weight: int | None  # None: not a whole number from 0 to 2**32-1 (see `fields.weight`)
    written: Any  # the weight as the object holds it

    @property
    def field(self) -> str:
        return f".spec.candidates[{self.index}].weight"

    def weight_text(self) -> str:
        return str(self.weight) if self.weight is not None else fields.shown(self.written)


def experiment_candidates(experiment: KubeObject) -> list[Candidate]:
    """The named candidates of an Experiment, in order; hand-written YAML may quote a weight (`weight: "70"`)."""
    found: list[Candidate] = []
    for index, item in enumerate(as_list(experiment.spec.get("candidates"))):
        cand = as_mapping(item)
        name = cand.get("name")
        if isinstance(name, str) and name:
            written = cand.get("weight")
            found.append(Candidate(name, index, fields.weight(written), written))
    return found


def iter_weighted_candidates(experiment: KubeObject) -> Iterator[tuple[str, int]]:
    """(candidate name, weight) of an Experiment; a missing weight counts as 0, and so does one that is not a valid
    weight (checks that must tell the two apart read `experiment_candidates`)."""
    for cand in experiment_candidates(experiment):
        yield cand.name, cand.weight if cand.weight is not None else 0
