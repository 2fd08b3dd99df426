"""MetalLB address assignment, simulated: whether MetalLB can give a LoadBalancer Service an external address, and
if not, which of its rules stands in the way.

`assign(snap, svc)` reads what the Service asks for (`spec.loadBalancerIP`, the `metallb.universe.tf/*` and
`metallb.io/*` annotations: address-pool, loadBalancerIPs, allow-shared-ip) and the IPAddressPools
(`metallb.io/v1beta1`) of the snapshot, and applies MetalLB's rules in the order a check reports them:

1. pools: without IPAddressPools there is nothing to assign (or nothing known, when they were not collected);
2. a requested pool must exist;
3. each requested address must be an IP address, inside some pool, and not held by another LoadBalancer Service
   unless both carry the same allow-shared-ip key;
4. without requested addresses, a pool is eligible when it is requested by name, or (none being named) has
   `autoAssign` on, and its `serviceAllocation` (namespaces, namespace selectors, service selectors) admits the
   Service;
5. an eligible pool whose addresses are all held by LoadBalancer Services of the snapshot is exhausted.

The outcome names the rule and the objects it involves; wording a finding from it is the check's job (MT206).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis.ingress import service_type
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

ANNOTATION_PREFIXES = ("metallb.universe.tf/", "metallb.io/")
POOL_KEYS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
IP_KEYS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
SHARE_KEYS = ("metallb.universe.tf/allow-shared-ip", "metallb.io/allow-shared-ip")
POOL_KIND = "IPAddressPool"
POOL_API_PREFIX = "metallb.io/"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Outcome(StrEnum):
    """What MetalLB makes of a Service's request, one value per rule that decides it."""

    POOLS_NOT_COLLECTED = "pools-not-collected"  # no pool in the snapshot, and nothing says pools were looked for
    NO_POOLS = "no-pools"  # IPAddressPools were collected and there is none
    POOL_MISSING = "pool-missing"  # a requested pool does not exist
    IP_INVALID = "ip-invalid"  # a requested address is not an IP address
    IP_OUTSIDE_POOLS = "ip-outside-pools"  # a requested address is in no pool
    IP_HELD = "ip-held"  # a requested address is held by another Service that does not share it
    REQUESTED_IPS_FREE = "requested-ips-free"  # every requested address is in a pool and free (or shared)
    NO_ELIGIBLE_POOL = "no-eligible-pool"  # no pool hands out addresses to this Service
    POOLS_EXHAUSTED = "pools-exhausted"  # every eligible pool is full
    ADDRESS_FREE = "address-free"  # some eligible pool has an address left


@dataclass(frozen=True)
class Pool:
    """An IPAddressPool with its `spec.addresses` (CIDRs and `first-last` ranges) as integer ranges; entries that are
    not addresses are left out."""

    obj: KubeObject
    ranges: tuple[tuple[int, int, int], ...]  # (IP version, first, last) as integers

    @property
    def name(self) -> str:
        return self.obj.name

    @property
    def size(self) -> int:
        return sum(last - first + 1 for _, first, last in self.ranges)

    @property
    def auto_assign(self) -> bool:
        """`spec.autoAssign`, which defaults to true: only an explicit false turns it off."""
        return self.obj.spec.get("autoAssign") is not False

    def contains(self, ip: IPAddress) -> bool:
        return any(version == ip.version and first <= int(ip) <= last for version, first, last in self.ranges)


@dataclass(frozen=True)
class AddressRequest:
    """What a Service asks of MetalLB: addresses as written (`spec.loadBalancerIP` first, then the loadBalancerIPs
    annotations, comma-separated) and pool names (the address-pool annotations)."""

    ips: tuple[str, ...]
    pools: tuple[str, ...]


@dataclass(frozen=True)
class PoolUsage:
    """An eligible pool and the addresses of it that LoadBalancer Services of the snapshot hold, in address order."""

    pool: Pool
    holders: tuple[tuple[IPAddress, KubeObject], ...]

    @property
    def full(self) -> bool:
        return len(self.holders) >= self.pool.size


@dataclass(frozen=True)
class Assignment:
    """The outcome of MetalLB's rules for one Service, with what the deciding rule looked at.

    `pool_name` is set for POOL_MISSING; `requested` (as written) for IP_INVALID; `ip` for IP_OUTSIDE_POOLS and
    IP_HELD, with `holder` for IP_HELD; `usage` (one entry per eligible pool) for POOLS_EXHAUSTED and ADDRESS_FREE.
    """

    outcome: Outcome
    request: AddressRequest
    pools: tuple[Pool, ...] = ()
    pool_name: str | None = None
    requested: str | None = None
    ip: IPAddress | None = None
    holder: KubeObject | None = None
    usage: tuple[PoolUsage, ...] = ()

    @property
    def exhausted(self) -> list[str]:
        """Names of the eligible pools that are full, in pool order."""
        return [u.pool.name for u in self.usage if u.full]


# --- reading the objects ---------------------------------------------------------------------------------------------


def address_request(svc: KubeObject) -> AddressRequest:
    requested_ip = str(svc.spec.get("loadBalancerIP") or "").strip()
    ips = [requested_ip] if requested_ip else []
    for key in IP_KEYS:
        ips += [part.strip() for part in svc.annotations.get(key, "").split(",") if part.strip()]
    pools = [svc.annotations[key].strip() for key in POOL_KEYS if svc.annotations.get(key, "").strip()]
    return AddressRequest(tuple(ips), tuple(pools))


def parse_pool(obj: KubeObject) -> Pool:
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
    return Pool(obj, tuple(ranges))


def pools(snap: Snapshot) -> list[Pool]:
    """The IPAddressPools of MetalLB's own API group (another group's kind of that name is not MetalLB's)."""
    return [parse_pool(obj) for obj in snap.objects_of(POOL_KIND) if obj.api_version.startswith(POOL_API_PREFIX)]


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def held_addresses(snap: Snapshot, me: KubeObject) -> dict[IPAddress, KubeObject]:
    """The IPs in `status.loadBalancer` of the other LoadBalancer Services, each with the first Service holding it."""
    held: dict[IPAddress, KubeObject] = {}
    for svc in snap.objects_of("Service"):
        if svc is me or service_type(svc) != "LoadBalancer":
            continue
        for entry in as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress")):
            ip = parse_ip(str(as_mapping(entry).get("ip") or ""))
            if ip is not None:
                held.setdefault(ip, svc)
    return held


def may_share(svc: KubeObject, other: KubeObject) -> bool:
    """Whether two Services may hold the same address: both carry an allow-shared-ip key, and a value in common."""
    mine = {svc.annotations.get(k) for k in SHARE_KEYS} - {None}
    theirs = {other.annotations.get(k) for k in SHARE_KEYS} - {None}
    return bool(mine & theirs)


def allocates_to(snap: Snapshot, pool: Pool, svc: KubeObject) -> bool:
    """MetalLB's serviceAllocation: listed namespaces / namespace selectors, and service selectors, when set. A
    selector we cannot read does not exclude the Service (no verdict on what we cannot evaluate)."""
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


def eligible_pools(snap: Snapshot, candidates: Iterable[Pool], svc: KubeObject, requested: Iterable[str]) -> list[Pool]:
    """The pools MetalLB may take an address from for a Service that names no address: the requested pools (any
    autoAssign), or every autoAssign pool when none is requested; either way only those whose serviceAllocation
    admits the Service."""
    named = set(requested)
    return [
        pool
        for pool in candidates
        if (pool.name in named if named else pool.auto_assign) and allocates_to(snap, pool, svc)
    ]


def pool_usage(pool: Pool, held: Mapping[IPAddress, KubeObject]) -> PoolUsage:
    in_pool = sorted(
        ((ip, owner) for ip, owner in held.items() if pool.contains(ip)),
        key=lambda item: (item[0].version, int(item[0])),
    )
    return PoolUsage(pool, tuple(in_pool))


# --- the simulation --------------------------------------------------------------------------------------------------


def assign(snap: Snapshot, svc: KubeObject) -> Assignment:
    """Apply MetalLB's rules to a LoadBalancer Service; the first rule that fails decides the outcome."""
    request = address_request(svc)
    found = tuple(pools(snap))
    if not found:
        if POOL_KIND in snap.metadata.kinds:
            return Assignment(Outcome.NO_POOLS, request)
        return Assignment(Outcome.POOLS_NOT_COLLECTED, request)

    for pool_name in request.pools:
        if not any(p.name == pool_name for p in found):
            return Assignment(Outcome.POOL_MISSING, request, found, pool_name=pool_name)
    held = held_addresses(snap, svc)
    for raw_ip in request.ips:
        ip = parse_ip(raw_ip)
        if ip is None:
            return Assignment(Outcome.IP_INVALID, request, found, requested=raw_ip)
        if not any(p.contains(ip) for p in found):
            return Assignment(Outcome.IP_OUTSIDE_POOLS, request, found, ip=ip)
        owner = held.get(ip)
        if owner is not None and not may_share(svc, owner):
            return Assignment(Outcome.IP_HELD, request, found, ip=ip, holder=owner)
    if request.ips:
        return Assignment(Outcome.REQUESTED_IPS_FREE, request, found)

    eligible = eligible_pools(snap, found, svc, request.pools)
    if not eligible:
        return Assignment(Outcome.NO_ELIGIBLE_POOL, request, found)
    usage = tuple(pool_usage(pool, held) for pool in eligible)
    outcome = Outcome.POOLS_EXHAUSTED if all(u.full for u in usage) else Outcome.ADDRESS_FREE
    return Assignment(outcome, request, found, usage=usage)
