"""Backend resolution: follow an Ingress backend's Service the way ingress-nginx and cluster DNS do.

`resolve_backend` walks the Service and any ExternalName hops to the Service that has endpoints of its own, matches
the asked port at each hop, and says where and why it stopped (`Stop`); `ready_endpoints` tells whether that
Service's Endpoints/EndpointSlices list a ready address. The small Service field readers (`service_type`,
`service_ports`, `selector_of`…) live here too, since every hop reads them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.analysis.ingress.backends import PortRef
from mlops_trace.analysis.seldon import MESH_SERVICE
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Existence, Snapshot

_MAX_HOPS = 8


class Stop(StrEnum):
    """Where following a backend ended."""

    SERVICE = "service"  # a Service with endpoints of its own (ClusterIP, NodePort, LoadBalancer, headless)
    SERVICE_MISSING = "service-missing"  # not in the snapshot, and Services of that namespace were collected (or
    # the namespace itself does not exist: the Namespace list was collected without it)
    NOT_COLLECTED = "not-collected"  # not in the snapshot, and nothing says it was looked for
    PORT_MISSING = "port-missing"  # the Service has no port matching what is asked of it
    EXTERNAL = "external"  # an ExternalName outside the cluster (or one we cannot place)
    LOOP = "loop"  # ExternalName hops that come back to a Service already visited


@dataclass(frozen=True)
class Hop:
    """One Service on the way from an Ingress backend to the pods."""

    namespace: str
    name: str
    port: PortRef  # what is asked of this Service (the backend port, then the port carried over DNS)
    service: KubeObject | None
    service_port: Mapping[str, Any] | None  # the matching entry of spec.ports

    @property
    def is_external_name(self) -> bool:
        return self.service is not None and service_type(self.service) == "ExternalName"

    def label(self) -> str:
        return f"Service {self.namespace}/{self.name}:{self.port}"


@dataclass(frozen=True)
class Resolution:
    hops: tuple[Hop, ...]
    stop: Stop
    detail: str  # one line: why it stopped there

    @property
    def final(self) -> Hop:
        return self.hops[-1]

    def chain(self) -> str:
        """`Service a/x:80 → ExternalName y.b.svc.cluster.local → Service b/y:80`."""
        parts: list[str] = []
        for hop in self.hops:
            if hop.is_external_name and hop.service is not None:
                parts.append(f"{hop.label()} (ExternalName {external_name(hop.service)})")
            else:
                parts.append(hop.label() + ("" if hop.service is not None else " (not in the bundle)"))
        return " → ".join(parts)


@dataclass(frozen=True)
class ExternalTarget:
    """Where an ExternalName points: an in-cluster Service, or a name outside the cluster."""

    service: str | None
    namespace: str | None
    host: str
    certain: bool  # `svc.ns.svc[.domain]` is certainly in-cluster; `svc.ns` only when ns is a known namespace


# --- Service fields --------------------------------------------------------------------------------------------------


def service_type(svc: KubeObject) -> str:
    return str(svc.spec.get("type") or "ClusterIP")


def service_ports(svc: KubeObject) -> list[Mapping[str, Any]]:
    return [as_mapping(p) for p in as_list(svc.spec.get("ports")) if isinstance(p, Mapping)]


def external_name(svc: KubeObject) -> str:
    return str(svc.spec.get("externalName") or "")


def is_headless(svc: KubeObject) -> bool:
    return str(svc.spec.get("clusterIP") or "") == "None"


def selector_of(svc: KubeObject) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_mapping(svc.spec.get("selector")).items()}


def selects_labels(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service selector (equality only) against pod labels; an empty selector selects nothing."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- ExternalName and ports ------------------------------------------------------------------------------------------


def parse_external_name(host: str, known_namespaces: Iterable[str]) -> ExternalTarget:
    """Place an ExternalName: `svc.ns.svc[.<cluster domain>]` is an in-cluster Service; `svc.ns` is one when `ns` is
    a namespace we know of (or the Service is `seldon-mesh`); anything else (IP, single label, other domain) is not."""
    name = host.strip().rstrip(".").lower()
    parts = name.split(".")
    if not name or _is_ip(name):
        return ExternalTarget(None, None, host, False)
    if len(parts) >= 3 and parts[2] == "svc":
        return ExternalTarget(parts[0], parts[1], host, True)
    if len(parts) == 2 and (parts[1] in set(known_namespaces) or parts[0] == MESH_SERVICE):
        return ExternalTarget(parts[0], parts[1], host, False)
    return ExternalTarget(None, None, host, False)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def match_backend_port(svc: KubeObject, port: PortRef) -> Mapping[str, Any] | None:
    """The Service port an Ingress backend port selects, as ingress-nginx matches it: the port number, the
    targetPort or the port name equal to the backend's port (as text)."""
    wanted = str(port)
    for item in service_ports(svc):
        if str(item.get("port", "")) == wanted or str(item.get("name", "")) == wanted:
            return item
        if item.get("targetPort") is not None and str(item.get("targetPort")) == wanted:
            return item
    return None


def _match_dns_port(svc: KubeObject, number: int) -> Mapping[str, Any] | None:
    """The port a client reaching the Service by DNS name on `number` hits. A headless Service hands out pod IPs,
    so the pod port (targetPort) counts there too."""
    for item in service_ports(svc):
        if fields.port_number(item.get("port")) == number:
            return item
        if is_headless(svc) and fields.port_number(item.get("targetPort")) == number:
            return item
    return None


def _external_name_port(svc: KubeObject, port: PortRef) -> tuple[Mapping[str, Any] | None, PortRef, str | None]:
    """ingress-nginx's port choice for an ExternalName backend: the Service port named or numbered like the backend
    port gives the targetPort (its port when targetPort is not a number); an unknown number passes through as is;
    an unknown name cannot be resolved. Returns (matched port, port dialled on the external name, problem)."""
    ports = service_ports(svc)
    if port.name is not None:
        for item in ports:
            if str(item.get("name", "")) == port.name:
                target = fields.port_number(item.get("targetPort")) or fields.port_number(item.get("port"))
                return item, PortRef(number=target), None
        declared = ", ".join(str(p.get("name") or p.get("port")) for p in ports) or "none"
        return None, PortRef(), f"port name {port.name!r} is not among its ports ({declared})"
    if port.number is None:
        return None, PortRef(), None
    for item in ports:
        if fields.port_number(item.get("port")) == port.number:
            raw_target = item.get("targetPort")
            if raw_target is None:
                return item, PortRef(number=port.number), None
            target = fields.port_number(raw_target)
            # A named targetPort means nothing on a DNS name; we cannot tell what ingress-nginx dials then.
            return item, PortRef(number=target) if target else PortRef(), None
    return None, PortRef(number=port.number), None


# --- following a backend ---------------------------------------------------------------------------------------------


def resolve_backend(snap: Snapshot, namespace: str, service: str, port: PortRef) -> Resolution:
    """Follow an Ingress backend from its Service through ExternalName hops to the Service that has endpoints."""
    hops: list[Hop] = []
    seen: set[tuple[str, str]] = set()
    known = set(snap.namespaces())
    ns, name, asked = namespace, service, port
    first = True
    while True:
        if (ns, name) in seen or len(hops) >= _MAX_HOPS:
            return Resolution(tuple(hops), Stop.LOOP, f"ExternalName hops loop back to Service {ns}/{name}")
        seen.add((ns, name))
        svc = snap.get("Service", ns, name)
        if svc is None:
            hops.append(Hop(ns, name, asked, None, None))
            if snap.namespace_exists(ns) is Existence.ABSENT:
                return Resolution(tuple(hops), Stop.SERVICE_MISSING, f"namespace {ns} does not exist")
            if snap.existence("Service", ns, name) is Existence.ABSENT:
                return Resolution(tuple(hops), Stop.SERVICE_MISSING, f"no Service {name} in namespace {ns}")
            return Resolution(tuple(hops), Stop.NOT_COLLECTED, f"Services of namespace {ns} are not in the bundle")
        if service_type(svc) == "ExternalName":
            if first:
                matched, next_port, problem = _external_name_port(svc, asked)
            else:
                # Past the first hop the name is only a DNS alias: the port travels unchanged.
                matched, next_port, problem = None, asked, None
            hops.append(Hop(ns, name, asked, svc, matched))
            if problem is not None:
                return Resolution(tuple(hops), Stop.PORT_MISSING, f"ExternalName Service {ns}/{name}: {problem}")
            target = parse_external_name(external_name(svc), known)
            if target.service is None or target.namespace is None:
                return Resolution(tuple(hops), Stop.EXTERNAL, f"{external_name(svc)!r} is outside the cluster")
            ns, name, asked, first = target.namespace, target.service, next_port, False
            continue
        if not asked.known:
            hops.append(Hop(ns, name, asked, svc, None))
            return Resolution(tuple(hops), Stop.SERVICE, "")
        if first:
            matched = match_backend_port(svc, asked)
        else:
            matched = _match_dns_port(svc, asked.number) if asked.number is not None else None
        hops.append(Hop(ns, name, asked, svc, matched))
        if matched is None:
            declared = ", ".join(_describe_port(p) for p in service_ports(svc)) or "no ports"
            return Resolution(
                tuple(hops), Stop.PORT_MISSING, f"Service {ns}/{name} has no port {asked} (it has {declared})"
            )
        return Resolution(tuple(hops), Stop.SERVICE, "")


def _describe_port(item: Mapping[str, Any]) -> str:
    name = f"{item.get('name')}=" if item.get("name") else ""
    target = f"→{item.get('targetPort')}" if item.get("targetPort") is not None else ""
    return f"{name}{item.get('port')}{target}"


def target_port(resolution: Resolution) -> int | str | None:
    """The pod port the last Service forwards to (number or container port name); None when unknown, or when the
    Service holds no valid port there."""
    final = resolution.final
    if final.service_port is not None:
        raw = final.service_port.get("targetPort")
        if raw is None:
            return fields.port_number(final.service_port.get("port"))
        return fields.port(raw.strip() if isinstance(raw, str) else raw)
    return None


# --- endpoints -------------------------------------------------------------------------------------------------------


def ready_endpoints(snap: Snapshot, namespace: str, name: str) -> tuple[bool, list[tuple[str, str]]] | None:
    """Whether the Endpoints/EndpointSlices of a Service in the snapshot list a ready address, with evidence;
    None when neither is in the snapshot."""
    endpoints = snap.get("Endpoints", namespace, name)
    slices = [
        s for s in snap.objects_of("EndpointSlice", namespace) if s.labels.get("kubernetes.io/service-name") == name
    ]
    if endpoints is None and not slices:
        return None
    evidence: list[tuple[str, str]] = []
    ready = False
    if endpoints is not None:
        addresses = not_ready = 0
        for subset in as_list(endpoints.raw.get("subsets")):
            addresses += len(as_list(as_mapping(subset).get("addresses")))
            not_ready += len(as_list(as_mapping(subset).get("notReadyAddresses")))
        ready = ready or addresses > 0
        evidence.append((endpoints.field_where(".subsets"), f"{addresses} ready address(es), {not_ready} not ready"))
    for eps in slices:
        ready_count = total = 0
        for item in as_list(eps.raw.get("endpoints")):
            entry = as_mapping(item)
            total += 1
            condition = as_mapping(entry.get("conditions")).get("ready")
            if condition is not False and as_list(entry.get("addresses")):
                ready_count += 1
        ready = ready or ready_count > 0
        evidence.append((eps.field_where(".endpoints"), f"{ready_count} ready endpoint(s) of {total}"))
    return ready, evidence
