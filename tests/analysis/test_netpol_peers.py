"""NetworkPolicy peer semantics, one spec rule per test, and `undecided_rules` (what stays unknown from a bundle)."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_trace.analysis.netpol import (
    Direction,
    Endpoint,
    NetworkPolicyError,
    Protocol,
    egress_allows,
    evaluate,
    ingress_allows,
    policy_types,
    undecided_rules,
)
from mlops_trace.analysis.selectors import SelectorError, selector_matches_partly

SERVING = "fraud-ml"
ENVOY = Endpoint(
    namespace=SERVING,
    labels={"app.kubernetes.io/name": "seldon-envoy"},
    namespace_labels={"team": "risk"},
    ip="10.1.0.5",
    container_ports={"http": 9000},
    name="seldon-envoy-0",
)
LOCAL_NGINX = Endpoint(
    namespace=SERVING,
    labels={"app.kubernetes.io/name": "ingress-nginx"},
    namespace_labels={"team": "risk"},
    ip="10.1.0.9",
    name="nginx-sidecar-0",
)
REMOTE_NGINX = Endpoint(
    namespace="edge",
    labels={"app.kubernetes.io/name": "ingress-nginx"},
    namespace_labels={"tier": "edge"},
    ip="10.2.0.7",
    name="ingress-nginx-controller-0",
)
REMOTE_OTHER = Endpoint(
    namespace="edge",
    labels={"app.kubernetes.io/name": "oauth-proxy"},
    namespace_labels={"tier": "edge"},
    ip="10.2.0.8",
    name="oauth-proxy-0",
)
DNS = Endpoint(
    namespace="kube-system",
    labels={"k8s-app": "kube-dns"},
    namespace_labels={},
    ip="10.3.0.10",
    container_ports={"dns": 53},
    name="coredns-0",
)
NGINX_LABELS = {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}
EDGE_TIER = {"matchLabels": {"tier": "edge"}}
DMZ_ZONE = {"matchLabels": {"zone": "dmz"}}
UDP_53 = [{"port": 53, "protocol": "UDP"}]


def _by_name(namespace: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def _app(value: str) -> dict[str, Any]:
    return {"matchLabels": {"app": value}}


def _ingress(*rules: Any, types: list[str] | None = None, namespace: str = SERVING) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}}}
    spec["ingress"] = list(rules)
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "envoy-in", "namespace": namespace},
        "spec": spec,
    }


def _egress(*rules: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "out", "namespace": SERVING},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": list(rules)},
    }


def _in(policy: dict[str, Any], src: Endpoint, port: int = 9000, protocol: Protocol = Protocol.TCP) -> bool:
    return ingress_allows([policy], src, ENVOY, port, protocol)[0]


# --- peers -------------------------------------------------------------------------------------------------------


def test_pod_selector_alone_selects_own_namespace_only() -> None:
    policy = _ingress({"from": [{"podSelector": NGINX_LABELS}]})
    assert _in(policy, LOCAL_NGINX)
    assert not _in(policy, REMOTE_NGINX)  # same labels, other namespace


def test_pod_selector_alone_never_reaches_kube_system_dns() -> None:
    policy = _egress({"to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": UDP_53})
    assert not egress_allows([policy], ENVOY, DNS, 53, Protocol.UDP)[0]


def test_namespace_selector_alone_selects_every_pod_of_matching_namespaces() -> None:
    policy = _ingress({"from": [{"namespaceSelector": EDGE_TIER}]})
    assert _in(policy, REMOTE_NGINX) and _in(policy, REMOTE_OTHER)
    assert not _in(policy, LOCAL_NGINX)


def test_both_selectors_in_one_peer_are_anded() -> None:
    policy = _ingress({"from": [{"namespaceSelector": EDGE_TIER, "podSelector": NGINX_LABELS}]})
    assert _in(policy, REMOTE_NGINX)
    assert not _in(policy, REMOTE_OTHER)
    assert not _in(policy, LOCAL_NGINX)


def test_selectors_as_separate_peers_are_ored() -> None:
    policy = _ingress({"from": [{"namespaceSelector": EDGE_TIER}, {"podSelector": NGINX_LABELS}]})
    assert _in(policy, REMOTE_NGINX) and _in(policy, REMOTE_OTHER) and _in(policy, LOCAL_NGINX)


def test_empty_pod_selector_selects_every_pod_of_own_namespace() -> None:
    policy = _ingress({"from": [{"podSelector": {}}]})
    assert _in(policy, LOCAL_NGINX)
    assert not _in(policy, REMOTE_NGINX)


def test_empty_namespace_selector_selects_every_namespace() -> None:
    policy = _ingress({"from": [{"namespaceSelector": {}}]})
    assert _in(policy, REMOTE_NGINX) and _in(policy, LOCAL_NGINX)
    both = _ingress({"from": [{"namespaceSelector": {}, "podSelector": NGINX_LABELS}]})
    assert _in(both, REMOTE_NGINX) and not _in(both, REMOTE_OTHER)


def test_metadata_name_label_is_always_set_on_namespaces() -> None:
    policy = _ingress({"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}}]})
    # REMOTE_NGINX was built without that label: the Endpoint adds it, as the API server does.
    assert _in(policy, REMOTE_NGINX)
    assert not _in(policy, LOCAL_NGINX)


def test_ip_block_matches_by_address_with_except() -> None:
    policy = _ingress({"from": [{"ipBlock": {"cidr": "10.2.0.0/16", "except": ["10.2.0.8/32"]}}]})
    assert _in(policy, REMOTE_NGINX)
    assert not _in(policy, REMOTE_OTHER)
    assert not _in(policy, LOCAL_NGINX)


def test_absent_and_empty_from_admit_every_peer() -> None:
    assert _in(_ingress({"ports": [{"port": 9000}]}), REMOTE_OTHER)
    assert _in(_ingress({"from": [], "ports": [{"port": 9000}]}), REMOTE_OTHER)


def test_empty_ingress_list_admits_nothing() -> None:
    assert not _in(_ingress(types=["Ingress"]), LOCAL_NGINX)


def test_empty_rule_admits_everything() -> None:
    assert _in(_ingress({}), REMOTE_OTHER)


# --- ports -------------------------------------------------------------------------------------------------------


def test_named_port_resolves_against_destination_container_ports() -> None:
    policy = _ingress({"ports": [{"port": "http"}]})
    assert _in(policy, REMOTE_NGINX, 9000)
    assert not _in(policy, REMOTE_NGINX, 9001)


def test_end_port_opens_a_range() -> None:
    policy = _ingress({"ports": [{"port": 8990, "endPort": 9000}]})
    assert _in(policy, REMOTE_NGINX, 9000)
    assert not _in(policy, REMOTE_NGINX, 9001)


def test_protocol_defaults_to_tcp() -> None:
    policy = _ingress({"ports": [{"port": 9000}]})
    assert _in(policy, REMOTE_NGINX, 9000, Protocol.TCP)
    assert not _in(policy, REMOTE_NGINX, 9000, Protocol.UDP)


def test_port_entry_without_port_opens_every_port_of_its_protocol() -> None:
    policy = _ingress({"ports": [{"protocol": "UDP"}]})
    assert _in(policy, REMOTE_NGINX, 5353, Protocol.UDP)
    assert not _in(policy, REMOTE_NGINX, 5353, Protocol.TCP)


# --- policyTypes defaulting --------------------------------------------------------------------------------------


def test_policy_types_default() -> None:
    assert policy_types(_ingress()) == {"Ingress"}
    assert policy_types({"spec": {"egress": [{}]}}) == {"Ingress", "Egress"}
    assert policy_types({"spec": {"egress": []}}) == {"Ingress"}


# --- undecided_rules ---------------------------------------------------------------------------------------------


def _undecided(policy: dict[str, Any], src: Endpoint, **known: bool) -> list[str]:
    return undecided_rules([policy], Direction.INGRESS, src, ENVOY, 9000, Protocol.TCP, **known)


def test_pod_selector_alone_is_decided_even_for_assumed_labels() -> None:
    policy = _ingress({"from": [{"podSelector": {"matchLabels": {"app": "something-else"}}}]})
    assert not _in(policy, REMOTE_NGINX)
    assert _undecided(policy, REMOTE_NGINX, peer_labels_known=False, peer_namespace_labels_known=False) == []


def test_assumed_pod_labels_leave_a_matching_namespace_peer_undecided() -> None:
    policy = _ingress(
        {"from": [{"namespaceSelector": _by_name("edge"), "podSelector": _app("gw")}]}
    )
    assert not _in(policy, REMOTE_NGINX)
    assert _undecided(policy, REMOTE_NGINX) == []
    why = _undecided(policy, REMOTE_NGINX, peer_labels_known=False)
    assert len(why) == 1 and "podSelector on labels of edge/ingress-nginx-controller-0" in why[0]


def test_assumed_pod_labels_do_not_rescue_a_namespace_that_surely_differs() -> None:
    policy = _ingress(
        {"from": [{"namespaceSelector": _by_name("other"), "podSelector": _app("gw")}]}
    )
    assert _undecided(policy, REMOTE_NGINX, peer_labels_known=False) == []


def test_missing_namespace_labels_leave_other_label_keys_undecided() -> None:
    policy = _ingress({"from": [{"namespaceSelector": DMZ_ZONE}]})
    assert not _in(policy, REMOTE_NGINX)
    why = _undecided(policy, REMOTE_NGINX, peer_namespace_labels_known=False)
    assert len(why) == 1 and "Namespace edge" in why[0]
    by_name = _ingress({"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dmz"}}}]})
    assert _undecided(by_name, REMOTE_NGINX, peer_namespace_labels_known=False) == []


def test_unknown_namespace_labels_do_not_rescue_a_pod_selector_that_fails() -> None:
    policy = _ingress({"from": [{"namespaceSelector": DMZ_ZONE, "podSelector": _app("x")}]})
    assert _undecided(policy, REMOTE_NGINX, peer_namespace_labels_known=False) == []


def test_rules_whose_ports_cannot_match_are_not_undecided() -> None:
    policy = _ingress({"from": [{"namespaceSelector": DMZ_ZONE}], "ports": [{"port": 8080}]})
    assert _undecided(policy, REMOTE_NGINX, peer_namespace_labels_known=False) == []


def test_ip_block_with_unknown_ip_is_undecided() -> None:
    template = Endpoint(namespace="edge", labels=REMOTE_NGINX.labels, namespace_labels={}, name="controller (template)")
    policy = _ingress({"from": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]})
    assert not _in(policy, template)
    why = _undecided(policy, template)
    assert len(why) == 1 and "ipBlock 10.2.0.0/16" in why[0]
    assert _undecided(policy, REMOTE_NGINX) == []  # IP known: decided


def test_undecided_egress_side_uses_the_destination_as_peer() -> None:
    coredns = {"matchLabels": {"k8s-app": "coredns"}}
    policy = _egress({"to": [{"namespaceSelector": {}, "podSelector": coredns}], "ports": UDP_53})
    assert not evaluate([policy], ENVOY, DNS, 53, Protocol.UDP).allowed
    why = undecided_rules([policy], Direction.EGRESS, ENVOY, DNS, 53, Protocol.UDP, peer_labels_known=False)
    assert len(why) == 1 and why[0].startswith("fraud-ml/out egress[0]")


def test_undecided_raises_on_malformed_selectors() -> None:
    policy = _ingress({"from": [{"namespaceSelector": {"matchExpressions": [{"key": "zone", "operator": "Near"}]}}]})
    with pytest.raises(NetworkPolicyError):
        _undecided(policy, REMOTE_NGINX, peer_namespace_labels_known=False)


# --- selector_matches_partly -------------------------------------------------------------------------------------


def test_partial_selector_matching() -> None:
    known = frozenset({"kubernetes.io/metadata.name"})
    labels = {"kubernetes.io/metadata.name": "edge"}
    no_zone = {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}
    partly = selector_matches_partly
    assert selector_matches_partly({}, labels, known) is True
    assert selector_matches_partly({"matchLabels": {"kubernetes.io/metadata.name": "edge"}}, labels, known) is True
    assert partly({"matchLabels": {"kubernetes.io/metadata.name": "x", "zone": "a"}}, labels, known) is False
    assert selector_matches_partly({"matchLabels": {"zone": "a"}}, labels, known) is None
    assert partly(no_zone, labels, known) is None
    assert selector_matches_partly({"matchLabels": {"zone": "a"}}, labels, None) is False
    with pytest.raises(SelectorError):
        partly({"matchLabels": _by_name("x")["matchLabels"], "matchExpressions": [3]}, labels, known)
