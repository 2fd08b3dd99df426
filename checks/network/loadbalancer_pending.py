"""MT206 loadbalancer-pending: a LoadBalancer Service clients enter through has no external IP (MetalLB gave none)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    controller_pods,
    controller_services,
    controller_workloads,
    controllers_for,
    seldon_backends,
    selector_of,
    selects_labels,
    service_type,
)
from mlops_trace.analysis.seldon import envoy_services
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping, pod_template_labels
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT206",
    slug="loadbalancer-pending",
    title="LoadBalancer Service on the request path has no external IP",
    severity=Severity.WARNING,
    requires=("kube:Service",),
    playbook="ingress-routing",
    fix=(
        "Give MetalLB an address for this Service: an IPAddressPool (metallb.io/v1beta1) with a free address that "
        "allows its namespace, and pool/IP annotations that name it."
    ),
)

_METALLB_PREFIXES = ("metallb.universe.tf/", "metallb.io/")
_POOL_KEYS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
_IP_KEYS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
_SHARE_KEYS = ("metallb.universe.tf/allow-shared-ip", "metallb.io/allow-shared-ip")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def run(snap: Snapshot) -> Iterator[Finding]:
    candidates = _services_on_path(snap)
    if not candidates:
        raise SkipCheck(
            "no LoadBalancer Service on the request path in the bundle (an ingress-nginx controller Service in front "
            "of Ingresses leading to Seldon, or a LoadBalancer seldon-mesh where no Ingress leads)"
        )
    for svc, role in candidates:
        if _assigned(svc):
            continue
        yield _finding(snap, svc, role)


def _services_on_path(snap: Snapshot) -> list[tuple[KubeObject, str]]:
    found: list[tuple[KubeObject, str]] = []
    seen: set[tuple[str | None, str]] = set()

    def add(svc: KubeObject, role: str) -> None:
        if service_type(svc) == "LoadBalancer" and (svc.namespace, svc.name) not in seen:
            seen.add((svc.namespace, svc.name))
            found.append((svc, role))

    seldon = seldon_backends(snap)
    led_to = sorted({sb.namespace for sb in seldon})
    if seldon:
        ingress_refs = sorted({f"{sb.backend.namespace}/{sb.backend.ingress.name}" for sb in seldon})
        role = (
            f"the ingress controller's entry point for Ingress {', '.join(ingress_refs)} "
            f"(leading to Seldon in {', '.join(led_to)})"
        )
        controllers = controller_pods(snap) + controller_workloads(snap)
        chosen: list[KubeObject] = []
        routed = {(sb.backend.namespace, sb.backend.ingress.name): sb.backend.ingress for sb in seldon}
        for ingress in routed.values():
            chosen += [c for c in controllers_for(snap, ingress, controllers) if c not in chosen]
        for svc in controller_services(snap, chosen):
            if chosen and not any(
                c.namespace == svc.namespace and selects_labels(selector_of(svc), pod_template_labels(c))
                for c in chosen
            ):
                continue
            add(svc, role)
    # A LoadBalancer seldon-mesh asks for an external address whatever fronts it; a bundle that does not show every
    # Ingress (namespace-scoped) still shows the Service and its status, so judge what it shows and say what it lacks.
    visible = _ingresses_visible(snap)
    for svc in envoy_services(snap):
        if svc.namespace is not None and svc.namespace not in led_to:
            unseen = "" if visible else "; the bundle holds no Ingress from every namespace, so one may front it"
            add(
                svc,
                f"Seldon's Envoy entry point in {svc.namespace}, which clients call directly (no Ingress in the "
                f"bundle leads there{unseen})",
            )
    return found


def _ingresses_visible(snap: Snapshot) -> bool:
    """Whether we would know of an Ingress leading to a namespace: some Ingress was collected, or the collector
    says it asked for Ingresses in every namespace."""
    meta = snap.metadata
    return snap.has_kind("Ingress") or (meta.all_namespaces and "Ingress" in meta.kinds)


def _assigned(svc: KubeObject) -> bool:
    entries = as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress"))
    return any(as_mapping(e).get("ip") or as_mapping(e).get("hostname") for e in entries)


def _finding(snap: Snapshot, svc: KubeObject, role: str) -> Finding:
    evidence = [
        Evidence(
            svc.field_where(".status.loadBalancer"),
            f"status.loadBalancer={dict(as_mapping(svc.status.get('loadBalancer')))}: no external IP or hostname",
        )
    ]
    diagnosis = _metallb(snap, svc)
    evidence += diagnosis.evidence
    reason = f" {diagnosis.reason}." if diagnosis.reason else ""
    message = (
        f"LoadBalancer Service {svc.namespace}/{svc.name} has no external IP. It is {role}, so clients have no "
        f"address to connect to (connection timeouts, not HTTP errors).{reason}"
    )
    return CHECK.finding(
        namespace=svc.namespace,
        object=svc.ref,
        message=message,
        evidence=evidence,
        fix=diagnosis.fix,
    )


@dataclass(frozen=True)
class _Diagnosis:
    evidence: list[Evidence]
    reason: str
    fix: str | None


@dataclass(frozen=True)
class _Pool:
    obj: KubeObject
    ranges: tuple[tuple[int, int, int], ...]  # (IP version, first, last) as integers

    @property
    def name(self) -> str:
        return self.obj.name

    @property
    def size(self) -> int:
        return sum(last - first + 1 for _, first, last in self.ranges)

    def contains(self, ip: IPAddress) -> bool:
        return any(version == ip.version and first <= int(ip) <= last for version, first, last in self.ranges)

    def describe(self) -> str:
        shown = ", ".join(str(a) for a in as_list(self.obj.spec.get("addresses")))
        return f"{self.name} ({shown or 'no addresses'})"


def _metallb(snap: Snapshot, svc: KubeObject) -> _Diagnosis:
    evidence: list[Evidence] = []
    requested_ip = str(svc.spec.get("loadBalancerIP") or "").strip()
    if requested_ip:
        evidence.append(Evidence(svc.field_where(".spec.loadBalancerIP"), f"loadBalancerIP={requested_ip}"))
    for key, value in sorted(svc.annotations.items()):
        if key.startswith(_METALLB_PREFIXES):
            evidence.append(Evidence(svc.field_where(".metadata.annotations"), f"{key}={value}"))
    lb_class = svc.spec.get("loadBalancerClass")
    if lb_class:
        evidence.append(Evidence(svc.field_where(".spec.loadBalancerClass"), f"loadBalancerClass={lb_class}"))
    requested_ips = [requested_ip] if requested_ip else []
    for key in _IP_KEYS:
        requested_ips += [part.strip() for part in svc.annotations.get(key, "").split(",") if part.strip()]
    requested_pools = [svc.annotations[key].strip() for key in _POOL_KEYS if svc.annotations.get(key, "").strip()]

    pools = [_pool(obj) for obj in snap.objects_of("IPAddressPool") if obj.api_version.startswith("metallb.io/")]
    if not pools:
        if "IPAddressPool" in snap.metadata.kinds:
            evidence.append(Evidence("kube/ IPAddressPool", "no MetalLB IPAddressPool exists: MetalLB has no address"))
            return _Diagnosis(
                evidence,
                "No MetalLB IPAddressPool exists, so MetalLB has nothing to assign",
                "Create an IPAddressPool (metallb.io/v1beta1) with free addresses, and an L2Advertisement for it.",
            )
        evidence.append(
            Evidence(
                "kube/ IPAddressPool",
                "no MetalLB IPAddressPool in the bundle; add `kubectl get ipaddresspools.metallb.io -A -o yaml` "
                "to see which pool should serve it",
            )
        )
        return _Diagnosis(evidence, "", None)

    names = ", ".join(p.describe() for p in pools)
    for pool_name in requested_pools:
        if not any(p.name == pool_name for p in pools):
            evidence.append(Evidence("kube/ IPAddressPool", f"no IPAddressPool named {pool_name} (pools: {names})"))
            return _Diagnosis(
                evidence,
                f"It asks for MetalLB pool {pool_name!r}, which does not exist",
                f"Name an existing pool in the address-pool annotation ({', '.join(p.name for p in pools)}) "
                f"or create IPAddressPool {pool_name}.",
            )
    held = _held_addresses(snap, svc)
    for raw_ip in requested_ips:
        ip = _parse_ip(raw_ip)
        if ip is None:
            evidence.append(Evidence(svc.field_where(".spec"), f"requested address {raw_ip!r} is not an IP address"))
            return _Diagnosis(evidence, f"It asks for {raw_ip!r}, which is not an IP address", None)
        offering = [p for p in pools if p.contains(ip)]
        if not offering:
            evidence.append(Evidence("kube/ IPAddressPool", f"no IPAddressPool offers {ip} (pools: {names})"))
            return _Diagnosis(
                evidence,
                f"It asks for {ip}, which no MetalLB IPAddressPool contains",
                f"Request an address inside a pool ({names}) or add {ip} to a pool's spec.addresses.",
            )
        owner = held.get(ip)
        if owner is not None and not _may_share(svc, owner):
            evidence.append(Evidence(owner.field_where(".status.loadBalancer"), f"{ip} is assigned to {owner.ref}"))
            return _Diagnosis(
                evidence,
                f"It asks for {ip}, which Service {owner.namespace}/{owner.name} already holds",
                "Request a free address, or set the same allow-shared-ip key on both Services (ports must differ).",
            )
    if requested_ips:
        return _Diagnosis(evidence, "", None)

    eligible = [
        p
        for p in pools
        if (not requested_pools or p.name in requested_pools)
        and (requested_pools or p.obj.spec.get("autoAssign") is not False)
        and _allocates_to(snap, p, svc)
    ]
    if not eligible:
        evidence.append(
            Evidence(
                "kube/ IPAddressPool",
                f"no pool hands out addresses to {svc.namespace}/{svc.name} automatically (autoAssign: false or "
                f"serviceAllocation excludes it; pools: {names})",
            )
        )
        return _Diagnosis(
            evidence,
            "No MetalLB IPAddressPool assigns addresses to it automatically",
            "Allow the Service's namespace in a pool's serviceAllocation (or enable autoAssign), or name a pool "
            "with the metallb.io/address-pool annotation.",
        )
    exhausted: list[str] = []
    for pool in eligible:
        in_pool = sorted(
            ((ip, owner) for ip, owner in held.items() if pool.contains(ip)),
            key=lambda item: (item[0].version, int(item[0])),
        )
        holders = ", ".join(f"{ip}={owner.namespace}/{owner.name}" for ip, owner in in_pool[:8])
        text = f"pool {pool.describe()}: {len(in_pool)} of {pool.size} addresses held by Services in the bundle"
        evidence.append(Evidence(pool.obj.field_where(".spec.addresses"), text + (f" ({holders})" if holders else "")))
        if len(in_pool) >= pool.size:
            exhausted.append(pool.name)
    if len(exhausted) == len(eligible):
        return _Diagnosis(
            evidence,
            f"Every pool that could serve it is exhausted ({', '.join(exhausted)})",
            f"Free an address in {', '.join(exhausted)} or add addresses to a pool's spec.addresses.",
        )
    return _Diagnosis(evidence, "", None)


def _pool(obj: KubeObject) -> _Pool:
    ranges: list[tuple[int, int, int]] = []
    for raw in as_list(obj.spec.get("addresses")):
        text = str(raw).strip()
        try:
            if "-" in text:
                low, high = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
                if low.version == high.version and int(low) <= int(high):
                    ranges.append((low.version, int(low), int(high)))
            else:
                network = ipaddress.ip_network(text, strict=False)
                ranges.append((network.version, int(network[0]), int(network[-1])))
        except ValueError:
            continue
    return _Pool(obj, tuple(ranges))


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _held_addresses(snap: Snapshot, me: KubeObject) -> dict[IPAddress, KubeObject]:
    held: dict[IPAddress, KubeObject] = {}
    for svc in snap.objects_of("Service"):
        if svc is me or service_type(svc) != "LoadBalancer":
            continue
        for entry in as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress")):
            ip = _parse_ip(str(as_mapping(entry).get("ip") or ""))
            if ip is not None:
                held.setdefault(ip, svc)
    return held


def _may_share(svc: KubeObject, other: KubeObject) -> bool:
    mine = {svc.annotations.get(k) for k in _SHARE_KEYS} - {None}
    theirs = {other.annotations.get(k) for k in _SHARE_KEYS} - {None}
    return bool(mine & theirs)


def _allocates_to(snap: Snapshot, pool: _Pool, svc: KubeObject) -> bool:
    """MetalLB's serviceAllocation: listed namespaces / namespace selectors, and service selectors, when set."""
    allocation: Mapping[str, Any] = as_mapping(pool.obj.spec.get("serviceAllocation"))
    namespaces = [str(n) for n in as_list(allocation.get("namespaces"))]
    ns_selectors = as_list(allocation.get("namespaceSelectors"))
    svc_selectors = as_list(allocation.get("serviceSelectors"))
    namespace = svc.namespace or "default"
    try:
        if namespaces or ns_selectors:
            ns_labels = snap.namespace_labels(namespace)
            in_namespace = namespace in namespaces or any(
                selector_matches(as_mapping(sel), ns_labels) for sel in ns_selectors
            )
            if not in_namespace:
                return False
        if svc_selectors and not any(selector_matches(as_mapping(sel), svc.labels) for sel in svc_selectors):
            return False
    except SelectorError:
        return True
    return True
