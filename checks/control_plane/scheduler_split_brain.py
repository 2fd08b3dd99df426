"""MT101 scheduler-split-brain: a namespace runs its own scheduler while its agents, an alias Service or the controller
send its control plane to a scheduler in another namespace (or its agents are split between two schedulers)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.container_args import expand_vars, split_flag
from mlops_trace.analysis.controller_scope import controller_scope
from mlops_trace.analysis.seldon import (
    SCHEDULER_SERVICE,
    ServiceAddress,
    controller_workloads,
    local_scheduler,
    parse_service_host,
    scheduler_pods,
    scheduler_workloads,
    server_pods,
    server_workloads,
)
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Existence, Snapshot

CHECK = make_check(
    id="MT101",
    slug="scheduler-split-brain",
    title="Two schedulers claim the models of one namespace",
    severity=Severity.CRITICAL,
    requires=("kube:StatefulSet|kube:Pod",),
    reads=(
        "kube:Deployment",
        "kube:Experiment",
        "kube:Model",
        "kube:Namespace",
        "kube:Pipeline",
        "kube:SeldonRuntime",
        "kube:Server",
        "kube:Service",
    ),
    playbook="scheduler-split-brain",
    fix="Run one scheduler per namespace: scale the local seldon-scheduler to 0 (SeldonRuntime override) and keep the "
    "alias, or point agents, alias and controller back at the local scheduler.",
)

SCHEDULER_HOST_ENV = "SELDON_SCHEDULER_HOST"
_ALIAS_DEPTH = 5  # ExternalName chains longer than this are not followed


@dataclass(frozen=True)
class Pointer:
    """Something that sends a namespace's control plane to a scheduler address."""

    where: str
    what: str
    target: ServiceAddress


def run(snap: Snapshot) -> Iterator[Finding]:
    findings: list[Finding] = []
    judged = 0
    namespaces = _candidate_namespaces(snap)
    for namespace in namespaces:
        finding = _judge(snap, namespace)
        if finding is not None:
            findings.append(finding)
        elif local_scheduler(snap, namespace).running is not None and _has_agents(snap, namespace):
            judged += 1
    if not findings and namespaces and not judged:
        raise SkipCheck(
            "cannot tell for " + ", ".join(namespaces[:5]) + " whether a local scheduler runs and where the agents "
            "point: no scheduler StatefulSet/Pod or no server StatefulSet/Pod of those namespaces in the input"
        )
    yield from findings


def _has_agents(snap: Snapshot, namespace: str) -> bool:
    return bool(server_workloads(snap, namespace) or server_pods(snap, namespace))


def _candidate_namespaces(snap: Snapshot) -> list[str]:
    names = set(snap.seldon_namespaces())
    names |= {w.namespace for w in server_workloads(snap) if w.namespace}
    names |= {p.namespace for p in server_pods(snap) if p.namespace}
    return sorted(names)


def _judge(snap: Snapshot, namespace: str) -> Finding | None:
    local = local_scheduler(snap, namespace)
    agents = _agent_pointers(snap, namespace)
    foreign = [p for p in agents if p.target.namespace != namespace]
    foreign += _alias_pointers(snap, namespace)
    foreign += _controller_pointers(snap, namespace)
    live_targets = sorted(
        {
            (p.target.namespace, p.target.service)
            for p in agents
            if _may_be_live(snap, namespace, p.target, local.running)
        }
    )
    split = len(live_targets) >= 2
    if local.running is True and foreign:
        elsewhere = sorted({p.target.namespace for p in foreign})
        message = (
            f"Namespace {namespace} runs its own scheduler, yet {len(foreign)} setting(s) send its control plane to "
            f"the scheduler in {', '.join(elsewhere)}: two schedulers claim its models, so routes and model state flap."
        )
        pointers = foreign + ([p for p in agents if p not in foreign] if split else [])
    elif split:
        hosts = ", ".join(f"{svc}.{ns}" for ns, svc in live_targets)
        message = (
            f"The agents of namespace {namespace} are split between schedulers ({hosts}): each scheduler sees only "
            "part of the servers and claims the namespace's models on its own."
        )
        pointers = agents
    else:
        return None
    evidence = [Evidence(where, what) for where, what in local.evidence]
    evidence += [Evidence(p.where, p.what) for p in pointers[:8]]
    return CHECK.finding(
        namespace=namespace, object=_scheduler_object(snap, namespace), message=message, evidence=evidence
    )


def _scheduler_object(snap: Snapshot, namespace: str) -> str:
    workloads = scheduler_workloads(snap, namespace)
    if workloads:
        return workloads[0].ref
    pods = scheduler_pods(snap, namespace)
    if pods:
        return pods[0].ref
    return f"StatefulSet/{SCHEDULER_SERVICE}"


def _may_be_live(snap: Snapshot, namespace: str, target: ServiceAddress, local_running: bool | None) -> bool:
    """Whether an agent's scheduler address can be a working scheduler: a dead address is MT103's business."""
    if target.namespace == namespace and local_running is False and target.service == SCHEDULER_SERVICE:
        return False
    return snap.existence("Service", target.namespace, target.service) is not Existence.ABSENT


# --- pointers --------------------------------------------------------------------------------------------------------


def _agent_pointers(snap: Snapshot, namespace: str) -> list[Pointer]:
    """The scheduler each agent container of the namespace dials, after following ExternalName aliases."""
    pointers: list[Pointer] = []
    workloads = server_workloads(snap, namespace)
    owned = {w.name for w in workloads}
    objects = list(workloads) + [p for p in server_pods(snap, namespace) if _pod_owner(p) not in owned]
    for obj in objects:
        found = _agent_env(obj, SCHEDULER_HOST_ENV)
        if found is None:
            continue
        path, host = found
        address = parse_service_host(host, namespace)
        if address is None:
            continue
        final, chain = _follow_alias(snap, address)
        via = f" via ExternalName {' -> '.join(chain)}" if chain else ""
        pointers.append(
            Pointer(
                obj.field_where(path),
                f"{obj.ref} agent {SCHEDULER_HOST_ENV}={host}{via} "
                f"(scheduler Service {final.service} in {final.namespace})",
                final,
            )
        )
    return pointers


def _alias_pointers(snap: Snapshot, namespace: str) -> list[Pointer]:
    """ExternalName Services of the namespace that alias a scheduler Service of another namespace."""
    pointers: list[Pointer] = []
    for svc in snap.objects_of("Service", namespace):
        if str(svc.spec.get("type", "")) != "ExternalName":
            continue
        external = str(svc.spec.get("externalName") or "")
        target = parse_service_host(external, namespace)
        if target is None or target.namespace == namespace or "scheduler" not in target.service.lower():
            continue
        pointers.append(
            Pointer(svc.field_where(".spec.externalName"), f"ExternalName {svc.name} -> {external}", target)
        )
    return pointers


def _controller_pointers(snap: Snapshot, namespace: str) -> list[Pointer]:
    """A controller that manages the namespace but names another namespace's scheduler (the ≤v2.5 flag)."""
    pointers: list[Pointer] = []
    for dep in controller_workloads(snap):
        if not _controller_manages(dep, namespace):
            continue
        own = dep.namespace or namespace
        for path, label, host in _controller_scheduler_hosts(dep):
            target = parse_service_host(host, own)
            if target is None or target.namespace == namespace:
                continue
            pointers.append(Pointer(dep.field_where(path), f"{dep.ref} {label}{host} (manages {namespace})", target))
    return pointers


def _controller_scheduler_hosts(dep: KubeObject) -> Iterator[tuple[str, str, str]]:
    for index, container in _containers(dep):
        base = f"{_spec_prefix(dep)}.containers[{index}]"
        env = _literal_env(container, dep.namespace or "")
        for key in ("command", "args"):
            tokens = [str(t) for t in as_list(container.get(key))]
            for pos, token in enumerate(tokens):
                name, value = split_flag(token)
                if name != "scheduler-host":
                    continue
                if value is None and pos + 1 < len(tokens) and not tokens[pos + 1].startswith("-"):
                    value = tokens[pos + 1]
                resolved = expand_vars(value or "", env)
                if resolved:
                    yield f"{base}.{key}[{pos}]", "flag --scheduler-host=", resolved
        # SELDON_SCHEDULER_HOST on the controller is not read by v2.6+ (SELDON-FACTS §3): a leftover value says
        # nothing about where the controller connects, so only the ≤v2.5 flag counts as a pointer.


def _controller_manages(dep: KubeObject, namespace: str) -> bool:
    """Whether the controller's flags (clusterwide, watch list, own namespace) include the namespace; a scope the
    input cannot resolve counts as its own namespace only."""
    scope = controller_scope(dep)
    watches = scope.watches(namespace)
    return watches if watches is not None else namespace == (dep.namespace or "")


def _spec_prefix(obj: KubeObject) -> str:
    return ".spec" if obj.kind == "Pod" else ".spec.template.spec"


def _pod_spec(obj: KubeObject) -> Mapping[str, Any]:
    if obj.kind == "Pod":
        return obj.spec
    return as_mapping(as_mapping(obj.spec.get("template")).get("spec"))


def _containers(obj: KubeObject) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for index, item in enumerate(as_list(_pod_spec(obj).get("containers"))):
        if isinstance(item, Mapping):
            yield index, item


def _agent_env(obj: KubeObject, name: str) -> tuple[str, str] | None:
    """(field path, literal value) of env `name` in the object's `agent` container."""
    for index, container in _containers(obj):
        if str(container.get("name")) != "agent":
            continue
        for pos, item in enumerate(as_list(container.get("env"))):
            entry = as_mapping(item)
            if entry.get("name") == name and entry.get("value") is not None:
                return f"{_spec_prefix(obj)}.containers[{index}].env[{pos}]", str(entry["value"])
    return None


def _literal_env(container: Mapping[str, Any], own_namespace: str = "") -> dict[str, str]:
    env: dict[str, str] = {}
    for item in as_list(container.get("env")):
        entry = as_mapping(item)
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if entry.get("value") is not None:
            env[name] = str(entry["value"])
        elif as_mapping(as_mapping(entry.get("valueFrom")).get("fieldRef")).get("fieldPath") == "metadata.namespace":
            env[name] = own_namespace
    return env


def _pod_owner(pod: KubeObject) -> str | None:
    for ref in as_list(pod.metadata.get("ownerReferences")):
        owner = as_mapping(ref)
        if owner.get("kind") == "StatefulSet":
            return str(owner.get("name"))
    return None


def _follow_alias(snap: Snapshot, address: ServiceAddress) -> tuple[ServiceAddress, list[str]]:
    """Follow ExternalName Services from `address` to the Service that really answers; the hops taken as text."""
    chain: list[str] = []
    current = address
    for _ in range(_ALIAS_DEPTH):
        svc = snap.get("Service", current.namespace, current.service)
        if svc is None or str(svc.spec.get("type", "")) != "ExternalName":
            break
        external = str(svc.spec.get("externalName") or "")
        nxt = parse_service_host(external, current.namespace)
        if nxt is None or nxt == current:
            break
        chain.append(f"{current.service}.{current.namespace} -> {external}")
        current = nxt
    return current, chain
