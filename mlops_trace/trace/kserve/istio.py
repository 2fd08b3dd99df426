"""Istio's routing objects as a request meets them: which VirtualService http route takes a Host and path on a
given gateway (authority and uri matches: `exact`, `prefix`, `regex`, and the match's own `gateways`), where it
sends the request (destinations and weights) and the Host it sets; and which LoadBalancer Service the client dialled.

Match semantics follow Istio's VirtualService API (istio/istio 86c9f01 networking/v1beta1 `HTTPMatchRequest`,
`StringMatch`; regexes are RE2 full matches, here Python's `fullmatch`); KServe's authority regex is
`^<host>(?::\\d{1,5})?$` and net-istio's matches are authority prefixes (KSERVE-FACTS §2.2, §2.5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_trace.findings import Evidence
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.path import HOST_ADDRESS_ANNOTATION

VIRTUAL_SERVICE = "VirtualService"
ISTIO_GATEWAY = "Gateway.networking.istio.io"


@dataclass(frozen=True)
class Destination:
    host: str
    port: int | None
    weight: float


@dataclass(frozen=True)
class RouteMatch:
    """The VirtualService http route a request takes."""

    vs: KubeObject
    index: int
    destinations: tuple[Destination, ...]
    set_host: str | None  # `headers.request.set.Host` of the route or its first destination

    @property
    def where(self) -> str:
        return self.vs.field_where(f".spec.http[{self.index}]")

    def describe(self) -> str:
        total = sum(d.weight for d in self.destinations) or 1.0
        targets = ", ".join(
            f"{d.host}{':' + str(d.port) if d.port else ''}"
            + (f" {100.0 * d.weight / total:.0f}%" if len(self.destinations) > 1 else "")
            for d in self.destinations
        )
        host = f" (Host {self.set_host})" if self.set_host else ""
        return f"VirtualService {self.vs.namespace}/{self.vs.name} http[{self.index}] → {targets}{host}"


def _string_match(rule: Mapping[str, object], value: str) -> bool:
    if "exact" in rule:
        return value == str(rule["exact"])
    if "prefix" in rule:
        return value.startswith(str(rule["prefix"]))
    if "regex" in rule:
        try:
            return re.fullmatch(str(rule["regex"]), value) is not None
        except re.error:
            return False
    return True


def _gateways_of(vs: KubeObject, match: Mapping[str, object]) -> list[str]:
    own = [str(g) for g in as_list(match.get("gateways"))]
    return own or [str(g) for g in as_list(vs.spec.get("gateways"))] or ["mesh"]


def _qualified(gateway: str, namespace: str | None) -> str:
    return gateway if "/" in gateway or gateway == "mesh" else f"{namespace}/{gateway}"


def _set_host(route: Mapping[str, object]) -> str | None:
    for headers in [as_mapping(route.get("headers"))] + [
        as_mapping(as_mapping(item).get("headers")) for item in as_list(route.get("route"))
    ]:
        values = as_mapping(as_mapping(headers.get("request")).get("set"))
        for key, value in values.items():
            if str(key).lower() == "host":
                return str(value)
    return None


def _destinations(route: Mapping[str, object]) -> tuple[Destination, ...]:
    items = as_list(route.get("route"))
    found: list[Destination] = []
    for item in items:
        entry = as_mapping(item)
        destination = as_mapping(entry.get("destination"))
        port = as_mapping(destination.get("port")).get("number")
        weight = entry.get("weight")
        found.append(
            Destination(
                str(destination.get("host") or ""),
                int(port) if isinstance(port, int) else None,
                float(weight) if isinstance(weight, (int, float)) else (100.0 if len(items) == 1 else 0.0),
            )
        )
    return tuple(found)


def select(snap: Snapshot, authority: str, path: str, gateway: str) -> RouteMatch | None:
    """The first http route of a VirtualService bound to `gateway` (`ns/name`) whose match takes this Host and path.
    VirtualServices are tried in namespace/name order (Istio merges them by host; one host per VS is the norm)."""
    bare = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    for vs in sorted(snap.objects_of(VIRTUAL_SERVICE), key=lambda obj: (obj.namespace or "", obj.name)):
        for index, item in enumerate(as_list(vs.spec.get("http"))):
            route = as_mapping(item)
            matches = [as_mapping(m) for m in as_list(route.get("match"))] or [{}]
            for match in matches:
                bound = {_qualified(g, vs.namespace) for g in _gateways_of(vs, match)}
                if gateway not in bound:
                    continue
                authority_rule = as_mapping(match.get("authority"))
                if authority_rule:
                    if not (_string_match(authority_rule, authority) or _string_match(authority_rule, bare)):
                        continue
                elif not _host_listed(vs, bare):
                    continue
                if not _string_match(as_mapping(match.get("uri")), path):
                    continue
                return RouteMatch(vs, index, _destinations(route), _set_host(route))
    return None


def _host_listed(vs: KubeObject, host: str) -> bool:
    for item in as_list(vs.spec.get("hosts")):
        listed = str(item).lower()
        if listed in ("*", host) or (listed.startswith("*.") and host.endswith(listed[1:])):
            return True
    return False


def hosts_of(snap: Snapshot, namespace: str | None, gateway: str) -> list[tuple[str, str]]:
    """(host, where) of the VirtualServices of `namespace` bound to `gateway`, for saying what a Host missed."""
    found: list[tuple[str, str]] = []
    for vs in snap.objects_of(VIRTUAL_SERVICE, namespace):
        gateways = {_qualified(str(g), vs.namespace) for g in as_list(vs.spec.get("gateways"))}
        if gateway in gateways:
            found.extend((str(host), vs.field_where(".spec.hosts")) for host in as_list(vs.spec.get("hosts")))
    return found


def gateway_object(snap: Snapshot, qualified: str) -> KubeObject | None:
    namespace, _, name = qualified.partition("/")
    return snap.get(ISTIO_GATEWAY, namespace, name) if name else None


def _lb_addresses(svc: KubeObject) -> list[str]:
    addresses: list[str] = []
    for item in as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress")):
        entry = as_mapping(item)
        value = entry.get("ip") or entry.get("hostname")
        if value:
            addresses.append(str(value))
    return addresses


def load_balancer(snap: Snapshot, host: str, port: int) -> tuple[KubeObject | None, Evidence]:
    """The LoadBalancer Service the client dialled (its published host address, else its external IP), and why."""
    balancers = [svc for svc in snap.objects_of("Service") if svc.spec.get("type") == "LoadBalancer"]
    for svc in balancers:
        if svc.annotations.get(HOST_ADDRESS_ANNOTATION) == f"{host}:{port}":
            return svc, Evidence(
                svc.field_where(f".metadata.annotations[{HOST_ADDRESS_ANNOTATION}]"), f"published at {host}:{port}"
            )
    for svc in balancers:
        if host in _lb_addresses(svc):
            ports = ", ".join(str(as_mapping(p).get("port")) for p in as_list(svc.spec.get("ports")))
            return svc, Evidence(
                svc.field_where(".status.loadBalancer.ingress"),
                f"external IP {'/'.join(_lb_addresses(svc))}, ports {ports or '?'}",
            )
    listed = ", ".join(f"{svc.namespace}/{svc.name}={'/'.join(_lb_addresses(svc)) or 'pending'}" for svc in balancers)
    return None, Evidence(f"snapshot {snap.source}", f"{host}:{port} is no LoadBalancer address ({listed or 'none'})")
