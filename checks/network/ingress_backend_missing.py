"""MT205 ingress-backend-missing: an Ingress backend names a Service, port or ExternalName target that is not there."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    Hop,
    IngressBackend,
    Resolution,
    Stop,
    external_name,
    ingress_backends,
    ingresses,
    ready_endpoints,
    resolve_backend,
    selector_of,
    service_ports,
    service_type,
)
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.snapshot import Existence, Snapshot

CHECK = make_check(
    id="MT205",
    slug="ingress-backend-missing",
    title="Ingress backend Service, port or ExternalName target is missing",
    severity=Severity.CRITICAL,
    requires=("kube:Ingress",),
    reads=("kube:EndpointSlice", "kube:Endpoints", "kube:Namespace", "kube:Service"),
    playbook="ingress-routing",
    fix="Point the Ingress backend at an existing Service and one of its ports (for Seldon: seldon-mesh, port 80).",
)


def run(snap: Snapshot) -> Iterator[Finding]:
    grouped: dict[tuple[str, str, str, str], list[IngressBackend]] = {}
    for ingress in ingresses(snap):
        for backend in ingress_backends(ingress):
            key = (backend.namespace, ingress.name, backend.service, str(backend.port))
            grouped.setdefault(key, []).append(backend)
    judged = 0
    for backends in grouped.values():
        first = backends[0]
        resolution = resolve_backend(snap, first.namespace, first.service, first.port)
        if resolution.stop is Stop.NOT_COLLECTED and len(resolution.hops) == 1:
            continue
        judged += 1
        finding = _judge(snap, backends, resolution)
        if finding is not None:
            yield finding
    if judged == 0:
        raise SkipCheck("the Services of the Ingresses' namespaces are not in the bundle (kube/): no backend to check")


def _judge(snap: Snapshot, backends: list[IngressBackend], resolution: Resolution) -> Finding | None:
    final = resolution.final
    first_hop = len(resolution.hops) == 1
    if resolution.stop is Stop.SERVICE_MISSING:
        if snap.namespace_exists(final.namespace) is Existence.ABSENT:
            target = f"Service {final.name} in namespace {final.namespace}, a namespace that does not exist"
            if first_hop:
                problem = target
            else:
                previous = resolution.hops[-2]
                problem = f"ExternalName Service {previous.namespace}/{previous.name} points at {target}"
            fix = (
                f"Point the backend at the namespace that really holds {final.name} (for Seldon: the namespace of "
                "the seldon-mesh Service, seldon-mesh.<namespace>.svc.cluster.local), or create the namespace and "
                "the Service."
            )
            return _finding(backends, resolution, problem, fix, _missing_namespace_evidence(snap, final))
        if first_hop:
            problem = f"Service {final.name} does not exist in namespace {final.namespace}"
            fix = (
                f"Create Service {final.name} in {final.namespace}, or point the backend at the Service in front of "
                "the pods (for Seldon: seldon-mesh, or an ExternalName alias to seldon-mesh.<namespace>.svc.cluster.local)."
            )
        else:
            previous = resolution.hops[-2]
            problem = (
                f"ExternalName Service {previous.namespace}/{previous.name} points at Service {final.name} in "
                f"namespace {final.namespace}, which does not exist"
            )
            fix = (
                f"Point spec.externalName of {previous.namespace}/{previous.name} at an existing Service "
                "(<service>.<namespace>.svc.cluster.local), e.g. the seldon-mesh Service of the serving namespace."
            )
        return _finding(backends, resolution, problem, fix, _missing_evidence(snap, final))
    if resolution.stop is Stop.PORT_MISSING:
        ports = ", ".join(_port_text(p) for p in service_ports(final.service)) if final.service is not None else ""
        if first_hop or final.is_external_name:
            problem = f"Service {final.namespace}/{final.name} has no port {final.port}"
        else:
            problem = (
                f"the ExternalName chain dials port {final.port} of Service {final.namespace}/{final.name}, "
                "which does not expose it"
            )
        if first_hop or final.is_external_name:
            fix = f"Use one of the ports Service {final.name} exposes ({ports or 'none'}) in the Ingress backend."
        else:
            alias = resolution.hops[0]
            fix = (
                f"Make the port of ExternalName Service {alias.namespace}/{alias.name} that the Ingress uses target a "
                f"port Service {final.namespace}/{final.name} exposes ({ports or 'none'})."
            )
        return _finding(backends, resolution, problem, fix, _ports_evidence(final, resolution.detail))
    if resolution.stop is Stop.LOOP:
        problem = f"its ExternalName Services form a loop ({resolution.detail})"
        fix = "Make the last ExternalName point at a Service with pods (ClusterIP), not back along the chain."
        return _finding(backends, resolution, problem, fix, [])
    if resolution.stop is Stop.SERVICE and final.service is not None and not final.is_external_name:
        if not selector_of(final.service) or service_type(final.service) == "ExternalName":
            return None
        state = ready_endpoints(snap, final.namespace, final.name)
        if state is None or state[0]:
            return None
        selector = ",".join(f"{k}={v}" for k, v in sorted(selector_of(final.service).items()))
        problem = f"Service {final.namespace}/{final.name} has no ready endpoints (selector {selector})"
        fix = (
            f"Make pods matching {selector} Ready in {final.namespace} (or fix the Service selector); "
            "ingress-nginx answers 503 while the Service has no ready endpoint."
        )
        evidence = [Evidence(where, what) for where, what in state[1]]
        evidence.append(Evidence(final.service.field_where(".spec.selector"), f"selector {selector}"))
        return _finding(backends, resolution, problem, fix, evidence)
    return None


def _finding(
    backends: list[IngressBackend],
    resolution: Resolution,
    problem: str,
    fix: str,
    extra: list[Evidence],
) -> Finding:
    first = backends[0]
    ingress = first.ingress
    routes = "; ".join(b.describe() for b in backends)
    message = (
        f"Ingress {ingress.namespace}/{ingress.name} sends {routes} but {problem}: ingress-nginx has no upstream "
        "for these requests and answers 503 (or 502 when the name does not resolve)."
    )
    evidence = [Evidence(b.where, b.describe()) for b in backends]
    for hop in resolution.hops:
        if hop.service is not None and hop.is_external_name:
            evidence.append(Evidence(hop.service.field_where(".spec.externalName"), external_name(hop.service)))
    evidence.append(Evidence(f"backend chain of {ingress.ref}", resolution.chain()))
    evidence.extend(extra)
    return CHECK.finding(namespace=ingress.namespace, object=ingress.ref, message=message, evidence=evidence, fix=fix)


def _missing_evidence(snap: Snapshot, hop: Hop) -> list[Evidence]:
    present = sorted(svc.name for svc in snap.objects_of("Service", hop.namespace))
    shown = ", ".join(present[:12]) + (" …" if len(present) > 12 else "") if present else "none"
    return [
        Evidence(
            f"kube/ Services of namespace {hop.namespace}",
            f"no Service {hop.name} (Services collected there: {shown})",
        )
    ]


def _missing_namespace_evidence(snap: Snapshot, hop: Hop) -> list[Evidence]:
    namespaces = snap.objects_of("Namespace")
    names = sorted(ns.name for ns in namespaces)
    shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
    where = namespaces[0].source.partition("#")[0] if namespaces else "kube/ Namespaces"
    return [Evidence(where, f"no Namespace {hop.namespace} in the cluster's Namespace list ({shown})")]


def _ports_evidence(hop: Hop, detail: str) -> list[Evidence]:
    if hop.service is None:
        return [Evidence(f"Service {hop.namespace}/{hop.name}", detail)]
    return [Evidence(hop.service.field_where(".spec.ports"), detail)]


def _port_text(port: Mapping[str, Any]) -> str:
    name = port.get("name")
    return f"{port.get('port')} ({name})" if name else str(port.get("port"))
