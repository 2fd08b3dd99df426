"""MT103 scheduler-alias-missing: a namespace with Seldon resources has no running scheduler of its own and no
working `seldon-scheduler` Service to reach a central one, so the controller and the agents dial an address that
answers nobody."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.seldon import (
    SCHEDULER_SERVICE,
    local_scheduler,
    parse_service_host,
    pod_running,
    runtime_disables_scheduler,
    scheduler_workloads,
    server_pods,
    server_workloads,
    workload_replicas,
)
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Existence, Snapshot

CHECK = make_check(
    id="MT103",
    slug="scheduler-alias-missing",
    title="No scheduler and no scheduler alias in a Seldon namespace",
    severity=Severity.CRITICAL,
    requires=("kube:Service",),
    reads=(
        "kube:Deployment",
        "kube:EndpointSlice",
        "kube:Endpoints",
        "kube:Experiment",
        "kube:Model",
        "kube:Namespace",
        "kube:Pipeline",
        "kube:Pod",
        "kube:SeldonRuntime",
        "kube:Server",
        "kube:StatefulSet",
    ),
    playbook="scheduler-connectivity",
    fix="Create Service seldon-scheduler in the namespace as an ExternalName to the central scheduler "
    "(seldon-scheduler.<central-ns>.svc.cluster.local), or run the local scheduler again.",
)

_MAX_LISTED = 12


def run(snap: Snapshot) -> Iterator[Finding]:
    findings: list[Finding] = []
    undecided: list[str] = []
    judged = 0
    for namespace in _candidate_namespaces(snap):
        local = local_scheduler(snap, namespace)
        if local.running is None or (local.running is False and not snap.covers("Service", namespace)):
            undecided.append(namespace)
            continue
        judged += 1
        if local.running:
            continue
        problem = _alias_problem(snap, namespace)
        if problem is None:
            continue
        message, proof = problem
        evidence = [Evidence(where, what) for where, what in local.evidence]
        evidence += proof
        evidence.append(_services_present(snap, namespace))
        findings.append(
            CHECK.finding(
                namespace=namespace, object=f"Service/{SCHEDULER_SERVICE}", message=message, evidence=evidence
            )
        )
    if not findings and undecided and not judged:
        raise SkipCheck(
            "cannot tell for " + ", ".join(undecided[:5]) + " whether a local scheduler runs (no scheduler "
            "StatefulSet/Pod collected) or which Services exist there"
        )
    yield from findings


def _candidate_namespaces(snap: Snapshot) -> list[str]:
    names = set(snap.seldon_namespaces())
    names |= {w.namespace for w in server_workloads(snap) if w.namespace}
    names |= {p.namespace for p in server_pods(snap) if p.namespace}
    return sorted(names)


def _alias_problem(snap: Snapshot, namespace: str) -> tuple[str, list[Evidence]] | None:
    svc = snap.get("Service", namespace, SCHEDULER_SERVICE)
    if svc is None:
        message = (
            f"Namespace {namespace} holds Seldon resources but runs no scheduler and has no Service "
            f"{SCHEDULER_SERVICE}: the controller dials {SCHEDULER_SERVICE}.{namespace}:9004 and the agents "
            f"{SCHEDULER_SERVICE}:9005, and neither name resolves."
        )
        return message, []
    kind = str(svc.spec.get("type") or "ClusterIP")
    if kind == "ExternalName":
        return _dangling_alias(snap, namespace, svc)
    return _service_without_backends(snap, namespace, svc, kind)


def _dangling_alias(snap: Snapshot, namespace: str, svc: KubeObject) -> tuple[str, list[Evidence]] | None:
    external = str(svc.spec.get("externalName") or "")
    proof = [Evidence(svc.field_where(".spec.externalName"), f"ExternalName -> {external or '(empty)'}")]
    if not external:
        return f"Service {SCHEDULER_SERVICE} in {namespace} is an ExternalName without a target.", proof
    target = parse_service_host(external, namespace)
    if target is None or snap.existence("Service", target.namespace, target.service) is not Existence.ABSENT:
        return None  # outside the cluster domain, there, or a namespace the input does not cover: cannot tell
    if snap.namespace_exists(target.namespace) is Existence.ABSENT:
        namespaces = snap.objects_of("Namespace")
        listed = ", ".join(sorted(n.name for n in namespaces)[:_MAX_LISTED])
        where = namespaces[0].source.partition("#")[0] if namespaces else "kube/ Namespaces"
        proof.append(Evidence(where, f"no Namespace {target.namespace} in the cluster's Namespace list ({listed})"))
        message = (
            f"Service {SCHEDULER_SERVICE} in {namespace} aliases {external}, but namespace {target.namespace} does "
            "not exist: the alias leads nowhere, so controller and agents cannot reach a scheduler."
        )
        return message, proof
    proof.append(
        Evidence(
            f"kube/ (namespace {target.namespace})", f"no Service {target.service} in namespace {target.namespace}"
        )
    )
    message = (
        f"Service {SCHEDULER_SERVICE} in {namespace} aliases {external}, but Service {target.service} does not exist "
        f"in {target.namespace}: the alias leads nowhere, so controller and agents cannot reach a scheduler."
    )
    return message, proof


def _service_without_backends(
    snap: Snapshot, namespace: str, svc: KubeObject, kind: str
) -> tuple[str, list[Evidence]] | None:
    """A selector Service left over from the scaled-down local scheduler: it exists, but nothing answers behind it."""
    if not _scaled_down(snap, namespace):
        return None  # a scheduler that should run but does not is another problem than a missing alias
    endpoints = _endpoint_count(snap, namespace)
    selector = {str(k): str(v) for k, v in as_mapping(svc.spec.get("selector")).items()}
    proof: list[Evidence] = []
    if endpoints is not None:
        if endpoints > 0:
            return None
        proof.append(Evidence(f"kube/ (namespace {namespace})", f"Endpoints of {SCHEDULER_SERVICE} list no address"))
    elif selector and snap.covers("Pod", namespace):
        try:
            backing = [
                p
                for p in snap.objects_of("Pod", namespace)
                if pod_running(p) and selector_matches({"matchLabels": selector}, p.labels)
            ]
        except SelectorError:
            return None
        if backing:
            return None
        proof.append(
            Evidence(svc.field_where(".spec.selector"), f"selector {_labels(selector)} matches no running Pod")
        )
    else:
        return None  # no selector (manual endpoints) or pods not collected: cannot tell
    message = (
        f"Service {SCHEDULER_SERVICE} in {namespace} is a {kind} Service for the local scheduler, which does not run, "
        "and it is not an alias to a central scheduler: controller and agents reach no scheduler through it."
    )
    return message, proof


def _scaled_down(snap: Snapshot, namespace: str) -> bool:
    """Whether the local scheduler was taken away on purpose: every scheduler workload at 0 replicas, or the
    SeldonRuntime's override scales it to 0."""
    if runtime_disables_scheduler(snap, namespace) is not None:
        return True
    workloads = scheduler_workloads(snap, namespace)
    return bool(workloads) and all(workload_replicas(w) == 0 for w in workloads)


def _endpoint_count(snap: Snapshot, namespace: str) -> int | None:
    """Addresses behind the scheduler Service from Endpoints / EndpointSlices, or None when neither was collected."""
    counts: list[int] = []
    endpoints = snap.get("Endpoints", namespace, SCHEDULER_SERVICE)
    if endpoints is not None:
        total = 0
        for subset in as_list(endpoints.raw.get("subsets")):
            total += len(as_list(as_mapping(subset).get("addresses")))
        counts.append(total)
    for eps in snap.objects_of("EndpointSlice", namespace):
        if eps.labels.get("kubernetes.io/service-name") != SCHEDULER_SERVICE:
            continue
        ready = 0
        for item in as_list(eps.raw.get("endpoints")):
            conditions = as_mapping(as_mapping(item).get("conditions"))
            if conditions.get("ready", True) is not False:
                ready += len(as_list(as_mapping(item).get("addresses")))
        counts.append(ready)
    if counts:
        return max(counts)
    if snap.covers("Endpoints", namespace) or snap.covers("EndpointSlice", namespace):
        return 0
    return None


def _services_present(snap: Snapshot, namespace: str) -> Evidence:
    names = sorted(s.name for s in snap.objects_of("Service", namespace))
    listed = ", ".join(names[:_MAX_LISTED]) + (f", … ({len(names)} in all)" if len(names) > _MAX_LISTED else "")
    return Evidence(f"kube/ Services of namespace {namespace}", f"Services present: {listed or 'none'}")


def _labels(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
