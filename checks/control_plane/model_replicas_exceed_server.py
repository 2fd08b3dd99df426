"""MT111 model-replicas-exceed-server: a Model asks for more replicas than its Server runs (after a manual scale-down or
an HPA that keeps the Server small), so the scheduler cannot place it and the Model is not Ready."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.seldon import is_ready
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT111",
    slug="model-replicas-exceed-server",
    title="Model asks for more replicas than its Server runs",
    severity=Severity.CRITICAL,
    requires=("kube:Model",),
    reads=("kube:Deployment", "kube:HorizontalPodAutoscaler", "kube:Server", "kube:StatefulSet"),
    playbook="model-capacity",
    fix="Scale the Server to at least the Model's replicas (spec.replicas, or the HPA's minReplicas), or lower the "
    "Model's spec.replicas / spec.minReplicas to what the Server runs.",
)

# The scheduler's reason when no Server has enough suitable replicas (scheduler/pkg/scheduler/scheduler.go, v2.7.0 to
# v2.10.x); the controller writes it as the message of the Model's ModelReady and Ready conditions.
_REPLICAS_REASON = "no matching server had enough suitable replicas"
# v2.9+ logs this when it placed the Model on its minReplicas: the Model is served, on fewer replicas.
_PARTIAL = "managed to schedule with min replicas"


@dataclass(frozen=True)
class _Capacity:
    server: str
    replicas: int
    evidence: tuple[Evidence, ...]
    max_replicas: int | None  # the Server's own scaling ceiling (spec.maxReplicas), when it sets one


def run(snap: Snapshot) -> Iterator[Finding]:
    for model in sorted(snap.objects_of("Model"), key=lambda m: (m.namespace or "", m.name)):
        if is_ready(model) is True:
            continue
        finding = _judge(snap, model)
        if finding is not None:
            yield finding


def _judge(snap: Snapshot, model: KubeObject) -> Finding | None:
    wanted = _wanted(model)
    if wanted is None:
        return None
    desired, minimum = wanted
    if desired == 0:
        return None  # scaled to zero on purpose
    needed = minimum if minimum > 0 else desired  # v2.9+ places a Model on its minReplicas when it cannot do more
    condition = _condition(model)
    capacity = _capacity(snap, model)
    short_of_all = capacity is not None and capacity.replicas < needed
    # Between minReplicas and replicas, v2.9+ serves the Model on fewer replicas: only the condition says it failed.
    if not short_of_all and condition is None:
        return None
    evidence: list[Evidence] = [Evidence(model.field_where(".spec.replicas"), _wanted_text(model, desired, minimum))]
    parts: list[str] = []
    if capacity is not None and capacity.replicas < desired:
        parts.append(
            f"Server {capacity.server} runs {capacity.replicas} replica(s), so the scheduler cannot place "
            + (f"even its minReplicas={minimum}" if short_of_all and minimum > 0 else f"{desired} replicas")
        )
        evidence.extend(capacity.evidence)
    elif capacity is not None:
        parts.append(
            f"Server {capacity.server} is set to {capacity.replicas} replica(s), so fewer of them than that are "
            "connected to the scheduler"
        )
        evidence.extend(capacity.evidence)
    if capacity is not None and capacity.max_replicas is not None and capacity.max_replicas < needed:
        parts.append(f"the Server's spec.maxReplicas={capacity.max_replicas} never lets it grow that far")
    if condition is not None:
        index, cond = condition
        said = str(cond.get("message") or "")
        parts.append(f"its {cond.get('type')} condition says `{evidence_line(said, 120)}`")
        evidence.append(
            Evidence(
                model.field_where(f".status.conditions[{index}]"), evidence_line(f"{cond.get('type')}=False {said}")
            )
        )
    available = fields.integer(model.status.get("availableReplicas"), minimum=0)
    if available:
        parts.append(
            f"{available} replica(s) are loaded (status.availableReplicas) but the Model is not Ready, so it is "
            "treated as unavailable although they run"
        )
        evidence.append(Evidence(model.field_where(".status.availableReplicas"), f"availableReplicas={available}"))
    message = f"Model {model.name} asks for {desired} replica(s) and is not Ready: " + "; ".join(parts) + "."
    return CHECK.finding(namespace=model.namespace, object=f"Model/{model.name}", message=message, evidence=evidence)


def _wanted(model: KubeObject) -> tuple[int, int] | None:
    """(replicas the scheduler is asked for, minReplicas), as the operator validates them
    (operator/internal/utils.go `GetValidatedScalingSpec`): replicas default to 1, or to minReplicas when only that
    is set. None when a value is no count."""
    spec = model.spec
    written_min = spec.get("minReplicas")
    minimum = 0 if written_min is None else fields.integer(written_min, minimum=0, maximum=fields.INT32_MAX)
    if minimum is None:
        return None
    if spec.get("replicas") is None:
        return (minimum if minimum > 0 else 1), minimum
    desired = fields.integer(spec.get("replicas"), minimum=0, maximum=fields.INT32_MAX)
    if desired is None:
        return None
    return desired, minimum


def _wanted_text(model: KubeObject, desired: int, minimum: int) -> str:
    written = model.spec.get("replicas")
    text = f"replicas={fields.shown(written)}" if written is not None else f"replicas unset (read as {desired})"
    return text + (f", minReplicas={minimum}" if minimum else "")


def _condition(model: KubeObject) -> tuple[int, Mapping[str, Any]] | None:
    """The ModelReady/Ready condition that gives the scheduler's replica shortage as its reason."""
    for index, item in enumerate(as_list(model.status.get("conditions"))):
        cond = as_mapping(item)
        if cond.get("type") not in ("ModelReady", "Ready") or str(cond.get("status", "")).lower() == "true":
            continue
        said = str(cond.get("message") or "").lower()
        if _REPLICAS_REASON in said and _PARTIAL not in said:
            return index, cond
    return None


def _capacity(snap: Snapshot, model: KubeObject) -> _Capacity | None:
    """How many replicas the Model's Server runs; for a Model without spec.server, the largest Server of its
    namespace (the scheduler may pick any). None when the input does not tell."""
    namespace = model.namespace
    wanted_server = model.spec.get("server")
    if isinstance(wanted_server, str) and wanted_server:
        return _server_capacity(snap, namespace, wanted_server)
    names = sorted({s.name for s in snap.objects_of("Server", namespace)})
    capacities = [_server_capacity(snap, namespace, name) for name in names]
    known = [c for c in capacities if c is not None]
    if not known or len(known) != len(capacities):
        return None
    return max(known, key=lambda c: c.replicas)


def _server_capacity(snap: Snapshot, namespace: str | None, name: str) -> _Capacity | None:
    """Replicas of Server `name`: its workload's spec.replicas (what runs), else the desired replicas of an HPA that
    scales it, else the Server's own spec.replicas."""
    server = snap.get("Server", namespace, name)
    max_replicas = None
    if server is not None and server.spec.get("maxReplicas") is not None:
        max_replicas = fields.integer(server.spec.get("maxReplicas"), minimum=1, maximum=fields.INT32_MAX)
    hpa = _autoscaler(snap, namespace, name)
    hpa_evidence: tuple[Evidence, ...] = ()
    hpa_desired = None
    if hpa is not None:
        hpa_desired = fields.integer(hpa.status.get("desiredReplicas"), minimum=0, maximum=fields.INT32_MAX)
        bounds = f"minReplicas={fields.shown(hpa.spec.get('minReplicas'))} maxReplicas={fields.shown(hpa.spec.get('maxReplicas'))}"
        shown = f"desiredReplicas={fields.shown(hpa.status.get('desiredReplicas'))}, {bounds}"
        hpa_evidence = (Evidence(hpa.field_where(".status.desiredReplicas"), f"{hpa.ref} scales {name}: {shown}"),)
    for kind in ("StatefulSet", "Deployment"):
        workload = snap.get(kind, namespace, name)
        if workload is None:
            continue
        count = fields.replicas(workload.spec.get("replicas"))
        if count is None:
            return None
        proof = (Evidence(workload.field_where(".spec.replicas"), f"{workload.ref} replicas={count}"), *hpa_evidence)
        return _Capacity(name, count, proof, max_replicas)
    if hpa_desired is not None:
        return _Capacity(name, hpa_desired, hpa_evidence, max_replicas)
    if server is None:
        return None
    count = fields.replicas(server.spec.get("replicas"))
    if count is None:
        return None
    written = server.spec.get("replicas")
    shown = f"replicas={count}" if written is not None else "replicas unset (read as 1)"
    return _Capacity(
        name, count, (Evidence(server.field_where(".spec.replicas"), f"Server {name} {shown}"),), max_replicas
    )


def _autoscaler(snap: Snapshot, namespace: str | None, server: str) -> KubeObject | None:
    """An HPA of the namespace whose scaleTargetRef is the Server or its StatefulSet/Deployment."""
    for hpa in snap.objects_of("HorizontalPodAutoscaler", namespace):
        target = as_mapping(hpa.spec.get("scaleTargetRef"))
        if target.get("name") == server and target.get("kind") in ("Server", "StatefulSet", "Deployment"):
            return hpa
    return None
