"""MetalLB address assignment, simulated: for each rule, a Service it stops and one it lets through."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from mlops_trace.analysis.metallb import Outcome, assign, parse_pool
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import BundleMetadata, Snapshot


def obj(doc: dict[str, Any], index: int = 0) -> KubeObject:
    meta = doc["metadata"]
    return KubeObject(doc["kind"], meta.get("namespace"), meta["name"], doc, f"kube/test.yaml#{index}")


def pool(name: str, *addresses: str, api: str = "metallb.io/v1beta1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": {"addresses": list(addresses), **spec},
    }


def lb_service(
    name: str,
    namespace: str = "serving",
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    holds: tuple[str, ...] = (),
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}, "labels": labels or {}},
        "spec": {"type": "LoadBalancer", **spec},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in holds]}},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def run(*docs: dict[str, Any], kinds: tuple[str, ...] = ("Service", "IPAddressPool"), target: str = "pending") -> Any:
    """Simulate MetalLB for the Service named `target` in a snapshot of `docs`."""
    snap = Snapshot(source="test", metadata=BundleMetadata(kinds=kinds))
    snap.add_objects(obj(doc, index) for index, doc in enumerate(docs))
    svc = next(s for s in snap.objects_of("Service") if s.name == target)
    return assign(snap, svc)


FREE = Outcome.ADDRESS_FREE


# --- rule 1: pools ---------------------------------------------------------------------------------------------------


def test_no_pool_collected_means_nothing_to_assign() -> None:
    assert run(lb_service("pending")).outcome is Outcome.NO_POOLS


def test_pools_not_collected_is_no_verdict() -> None:
    assert run(lb_service("pending"), kinds=("Service",)).outcome is Outcome.POOLS_NOT_COLLECTED


def test_a_pool_of_another_api_group_is_not_metallb() -> None:
    assert run(lb_service("pending"), pool("p", "10.0.0.0/30", api="other.example/v1")).outcome is Outcome.NO_POOLS


def test_a_pool_with_room_assigns() -> None:
    result = run(lb_service("pending"), pool("p", "10.0.0.0/30"))
    assert result.outcome is FREE
    assert [u.pool.name for u in result.usage] == ["p"]


# --- rule 2: a requested pool exists ---------------------------------------------------------------------------------


def test_requested_pool_that_does_not_exist() -> None:
    svc = lb_service("pending", annotations={"metallb.universe.tf/address-pool": "gold"})
    result = run(svc, pool("silver", "10.0.0.0/30"))
    assert result.outcome is Outcome.POOL_MISSING
    assert result.pool_name == "gold"


def test_requested_pool_is_used_even_without_auto_assign() -> None:
    svc = lb_service("pending", annotations={"metallb.io/address-pool": "gold"})
    result = run(svc, pool("gold", "10.0.0.0/30", autoAssign=False), pool("silver", "10.0.1.0/30"))
    assert result.outcome is FREE
    assert [u.pool.name for u in result.usage] == ["gold"]


# --- rule 3: requested addresses -------------------------------------------------------------------------------------


def test_requested_address_that_is_not_an_ip() -> None:
    result = run(lb_service("pending", loadBalancerIP="10.0.0.300"), pool("p", "10.0.0.0/24"))
    assert result.outcome is Outcome.IP_INVALID
    assert result.requested == "10.0.0.300"


def test_requested_address_outside_every_pool() -> None:
    svc = lb_service("pending", annotations={"metallb.io/loadBalancerIPs": "10.0.0.1, 192.168.9.9"})
    result = run(svc, pool("p", "10.0.0.0/30"))
    assert result.outcome is Outcome.IP_OUTSIDE_POOLS
    assert result.ip == ipaddress.ip_address("192.168.9.9")


@pytest.mark.parametrize(
    ("addresses", "inside", "outside"),
    [
        (("10.0.0.4-10.0.0.5",), "10.0.0.5", "10.0.0.6"),
        (("fd00::/127",), "fd00::1", "fd00::2"),
        (("10.0.0.0/30", "fd00::10-fd00::11"), "fd00::11", "10.0.0.4"),
    ],
)
def test_pool_ranges_and_cidrs_bound_the_addresses(addresses: tuple[str, ...], inside: str, outside: str) -> None:
    pools = pool("p", *addresses)
    assert run(lb_service("pending", loadBalancerIP=inside), pools).outcome is Outcome.REQUESTED_IPS_FREE
    assert run(lb_service("pending", loadBalancerIP=outside), pools).outcome is Outcome.IP_OUTSIDE_POOLS


def test_requested_address_held_by_another_service() -> None:
    result = run(
        lb_service("pending", loadBalancerIP="10.0.0.2"),
        lb_service("owner", "other", holds=("10.0.0.2",)),
        pool("p", "10.0.0.0/30"),
    )
    assert result.outcome is Outcome.IP_HELD
    assert result.holder is not None and (result.holder.namespace, result.holder.name) == ("other", "owner")


def test_requested_address_shared_under_the_same_key() -> None:
    share = {"metallb.universe.tf/allow-shared-ip": "front"}
    result = run(
        lb_service("pending", annotations={**share, "metallb.io/loadBalancerIPs": "10.0.0.2"}),
        lb_service("owner", "other", annotations={"metallb.io/allow-shared-ip": "front"}, holds=("10.0.0.2",)),
        pool("p", "10.0.0.0/30"),
    )
    assert result.outcome is Outcome.REQUESTED_IPS_FREE


def test_different_share_keys_do_not_share() -> None:
    result = run(
        lb_service("pending", annotations={"metallb.io/allow-shared-ip": "a"}, loadBalancerIP="10.0.0.2"),
        lb_service("owner", annotations={"metallb.io/allow-shared-ip": "b"}, holds=("10.0.0.2",)),
        pool("p", "10.0.0.0/30"),
    )
    assert result.outcome is Outcome.IP_HELD


def test_an_address_the_service_holds_itself_is_not_taken() -> None:
    result = run(lb_service("pending", loadBalancerIP="10.0.0.2", holds=("10.0.0.2",)), pool("p", "10.0.0.0/30"))
    assert result.outcome is Outcome.REQUESTED_IPS_FREE


def test_only_load_balancer_services_hold_addresses() -> None:
    cluster_ip = lb_service("owner", holds=("10.0.0.2",))
    cluster_ip["spec"]["type"] = "ClusterIP"
    result = run(lb_service("pending", loadBalancerIP="10.0.0.2"), cluster_ip, pool("p", "10.0.0.0/30"))
    assert result.outcome is Outcome.REQUESTED_IPS_FREE


# --- rule 4: eligible pools ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("auto_assign", "outcome"), [(False, Outcome.NO_ELIGIBLE_POOL), (True, FREE), (None, FREE)])
def test_auto_assign(auto_assign: bool | None, outcome: Outcome) -> None:
    spec = {} if auto_assign is None else {"autoAssign": auto_assign}
    assert run(lb_service("pending"), pool("p", "10.0.0.0/30", **spec)).outcome is outcome


@pytest.mark.parametrize(("allowed", "outcome"), [(["serving"], FREE), (["elsewhere"], Outcome.NO_ELIGIBLE_POOL)])
def test_service_allocation_namespaces(allowed: list[str], outcome: Outcome) -> None:
    result = run(lb_service("pending", "serving"), pool("p", "10.0.0.0/30", serviceAllocation={"namespaces": allowed}))
    assert result.outcome is outcome


@pytest.mark.parametrize(("team", "outcome"), [("ml", FREE), ("web", Outcome.NO_ELIGIBLE_POOL)])
def test_service_allocation_namespace_selectors(team: str, outcome: Outcome) -> None:
    allocation = {"namespaceSelectors": [{"matchLabels": {"team": "ml"}}]}
    result = run(
        lb_service("pending", "serving"),
        namespace("serving", team=team),
        pool("p", "10.0.0.0/30", serviceAllocation=allocation),
    )
    assert result.outcome is outcome


@pytest.mark.parametrize(("tier", "outcome"), [("edge", FREE), ("internal", Outcome.NO_ELIGIBLE_POOL)])
def test_service_allocation_service_selectors(tier: str, outcome: Outcome) -> None:
    allocation = {"serviceSelectors": [{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["edge"]}]}]}
    result = run(lb_service("pending", labels={"tier": tier}), pool("p", "10.0.0.0/30", serviceAllocation=allocation))
    assert result.outcome is outcome


def test_an_unreadable_selector_excludes_no_service() -> None:
    allocation = {"serviceSelectors": [{"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}]}
    result = run(lb_service("pending"), pool("p", "10.0.0.0/30", serviceAllocation=allocation))
    assert result.outcome is FREE


# --- rule 5: exhaustion ----------------------------------------------------------------------------------------------


def test_every_eligible_pool_full() -> None:
    result = run(
        lb_service("pending"),
        lb_service("a", holds=("10.0.0.0", "10.0.0.1")),
        lb_service("b", "other", holds=("10.0.0.2",)),
        pool("p", "10.0.0.0/31"),
        pool("q", "10.0.0.2/32"),
    )
    assert result.outcome is Outcome.POOLS_EXHAUSTED
    assert result.exhausted == ["p", "q"]


def test_one_free_address_is_enough() -> None:
    result = run(lb_service("pending"), lb_service("a", holds=("10.0.0.0",)), pool("p", "10.0.0.0/31"))
    assert result.outcome is FREE
    assert result.exhausted == []


def test_a_free_pool_the_service_may_not_use_does_not_help() -> None:
    result = run(
        lb_service("pending"),
        lb_service("a", holds=("10.0.0.0",)),
        pool("full", "10.0.0.0/32"),
        pool("reserved", "10.0.1.0/24", autoAssign=False),
    )
    assert result.outcome is Outcome.POOLS_EXHAUSTED
    assert result.exhausted == ["full"]


def test_pool_usage_lists_holders_in_address_order() -> None:
    result = run(
        lb_service("pending"),
        lb_service("b", holds=("10.0.0.2",)),
        lb_service("a", holds=("10.0.0.1",)),
        pool("p", "10.0.0.0/30"),
    )
    (usage,) = result.usage
    assert [(str(ip), owner.name) for ip, owner in usage.holders] == [("10.0.0.1", "a"), ("10.0.0.2", "b")]


# --- pools and rule order --------------------------------------------------------------------------------------------


def test_pool_size_counts_valid_entries_only() -> None:
    parsed = parse_pool(obj(pool("p", "10.0.0.0/30", "10.0.1.1-10.0.1.2", "not-an-address", "10.0.2.9-10.0.2.1")))
    assert parsed.size == 6


def test_the_first_failing_rule_decides() -> None:
    svc = lb_service("pending", annotations={"metallb.io/address-pool": "gold"}, loadBalancerIP="not-an-ip")
    assert run(svc, pool("silver", "10.0.0.0/30")).outcome is Outcome.POOL_MISSING
