"""NetworkPolicy evaluation: a table of connections under policy sets, then the helpers one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from mlops_trace.analysis.netpol import (
    METADATA_NAME_LABEL,
    Direction,
    Endpoint,
    NetworkPolicyError,
    Protocol,
    egress_allows,
    endpoint_from_pod,
    endpoint_from_template,
    evaluate,
    ingress_allows,
    policy_types,
    selects,
)

NS = "seldon-mesh"

AGENT = Endpoint(
    namespace=NS,
    labels={"app.kubernetes.io/name": "seldon-server", "seldon-server-name": "mlserver"},
    namespace_labels={"team": "ml"},
    ip="10.244.1.10",
    container_ports={"http": 9000, "grpc": 9500, "agent-http": 9001, "agent-grpc": 9501, "metrics": 9006},
    name="mlserver-0",
)
SCHEDULER = Endpoint(
    namespace=NS,
    labels={"app.kubernetes.io/name": "seldon-scheduler"},
    namespace_labels={"team": "ml"},
    ip="10.244.1.20",
    container_ports={"xds": 9002, "scheduler": 9004, "agent": 9005, "dataflow": 9008},
    name="seldon-scheduler-0",
)
ENVOY = Endpoint(
    namespace=NS,
    labels={"app.kubernetes.io/name": "seldon-envoy"},
    namespace_labels={"team": "ml"},
    ip="10.244.1.30",
    container_ports={"http": 9000, "stats": 9003},
    name="seldon-envoy-7d9f8-abcde",
)
NGINX = Endpoint(
    namespace="ingress-nginx",
    labels={"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    namespace_labels={},
    ip="10.244.2.5",
    name="ingress-nginx-controller-5c8d-x2x2x",
)
NGINX_WEBHOOK_JOB = Endpoint(
    namespace="ingress-nginx",
    labels={"app.kubernetes.io/component": "admission-webhook"},
    namespace_labels={},
    ip="10.244.2.6",
    name="ingress-nginx-admission-create-q7k2p",
)
COREDNS = Endpoint(
    namespace="kube-system",
    labels={"k8s-app": "kube-dns"},
    namespace_labels={},
    ip="10.244.0.3",
    container_ports={"dns": 53, "dns-tcp": 53, "metrics": 9153},
    name="coredns-5dd5756b68-abcde",
)
ROGUE_DNS = Endpoint(
    namespace="team-a",
    labels={"k8s-app": "kube-dns"},
    namespace_labels={},
    ip="10.244.3.3",
    name="fake-dns",
)
TEAM_A = Endpoint(
    namespace="team-a",
    labels={"app.kubernetes.io/name": "seldon-server"},
    namespace_labels={"team": "a"},
    ip="10.244.3.9",
    name="client",
)
NO_IP = Endpoint(namespace="team-a", labels={"app": "batch"}, namespace_labels={}, name="batch-from-template")
V6_POD = Endpoint(namespace="team-a", labels={"app": "v6"}, namespace_labels={}, ip="fd00::10", name="v6")


def netpol(
    name: str,
    namespace: str = NS,
    pod_selector: dict[str, Any] | None = None,
    *,
    ingress: list[Any] | None = None,
    egress: list[Any] | None = None,
    types: list[str] | None = None,
) -> dict[str, Any]:
    """A NetworkPolicy as kubectl prints it; only the fields given are set."""
    spec: dict[str, Any] = {"podSelector": pod_selector if pod_selector is not None else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def ns_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {METADATA_NAME_LABEL: namespace}}}


def app(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": name}}


DENY_INGRESS = netpol("default-deny-ingress", types=["Ingress"])
DENY_EGRESS = netpol("default-deny-egress", types=["Egress"])
ALLOW_SAME_NS = netpol("allow-same-namespace", ingress=[{"from": [{"podSelector": {}}]}])
ENVOY_FROM_NGINX = netpol(
    "envoy-from-ingress-nginx",
    pod_selector=app("seldon-envoy"),
    ingress=[{"from": [ns_peer("ingress-nginx")], "ports": [{"port": 9000, "protocol": "TCP"}]}],
    types=["Ingress"],
)
NGINX_CONTROLLER_ONLY = netpol(
    "envoy-from-nginx-controller",
    pod_selector=app("seldon-envoy"),
    ingress=[{"from": [{**ns_peer("ingress-nginx"), "podSelector": app("ingress-nginx")}]}],
)
NGINX_NS_OR_CONTROLLER = netpol(
    "envoy-from-nginx-namespace-or-controller",
    pod_selector=app("seldon-envoy"),
    ingress=[{"from": [ns_peer("ingress-nginx"), {"podSelector": app("ingress-nginx")}]}],
)
ALL_NAMESPACES = netpol("allow-all-namespaces", ingress=[{"from": [{"namespaceSelector": {}}]}])
SERVERS_ONLY = netpol("allow-seldon-servers", ingress=[{"from": [{"podSelector": app("seldon-server")}]}])
NAMED_AGENT_PORT = netpol(
    "scheduler-agent-port", pod_selector=app("seldon-scheduler"), ingress=[{"ports": [{"port": "agent"}]}]
)
NAMED_PORT_EVERYWHERE = netpol("named-http-port", ingress=[{"ports": [{"port": "http"}]}])
PORT_RANGE = netpol("scheduler-port-range", ingress=[{"ports": [{"port": 9000, "endPort": 9010, "protocol": "TCP"}]}])
DNS_UDP_ONLY = netpol("dns-udp-only", "kube-system", ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])
TCP_BY_DEFAULT = netpol("tcp-by-default", ingress=[{"ports": [{"port": 9005}]}])
EGRESS_DNS_TO_KUBE_SYSTEM = netpol(
    "egress-dns-only",
    types=["Egress"],
    egress=[
        {
            "to": [{**ns_peer("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        }
    ],
)
EGRESS_PRIVATE_EXCEPT_NODE_RANGE = netpol(
    "egress-10-except-node",
    types=["Egress"],
    egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.1.0/24"]}}]}],
)
EGRESS_ANYWHERE_V4 = netpol(
    "egress-anywhere-v4", types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
)
EGRESS_ANYWHERE_V6 = netpol("egress-anywhere-v6", types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "::/0"}}]}])
EGRESS_INTERNET_ONLY = netpol(
    "egress-internet-only",
    types=["Egress"],
    egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]}],
)
INGRESS_FROM_NGINX_CIDR = netpol(
    "ingress-from-nginx-node-cidr",
    ingress=[{"from": [{"ipBlock": {"cidr": "10.244.2.0/24", "except": ["10.244.2.6/32"]}}]}],
)
# No policyTypes, only egress rules: the API server defaults this to Ingress+Egress, so it also denies all ingress.
EGRESS_RULES_NO_TYPES = netpol("egress-rules-no-types", egress=[{"to": [{"podSelector": {}}]}])
EMPTY_EGRESS_NO_TYPES = netpol("empty-egress-no-types", egress=[])
EXPLICIT_EGRESS_TYPE_WITH_INGRESS_RULES = netpol(
    "egress-type-only", types=["Egress"], ingress=[{"from": [ns_peer("nowhere")]}], egress=[{}]
)
BOTH_TYPES_NO_INGRESS_LIST = netpol("both-types-egress-only-rules", types=["Ingress", "Egress"], egress=[{}])
ALLOW_ALL_RULE = netpol("allow-all-ingress", ingress=[{}])
ANY_SOURCE_PORT_9005 = netpol("any-source-9005", ingress=[{"from": [], "ports": [{"port": 9005}]}])
OTHER_NAMESPACE_DENY = netpol("deny-all", namespace="team-a", types=["Ingress", "Egress"])
ENVOY_ONLY_DENY = netpol("deny-envoy", pod_selector=app("seldon-envoy"), types=["Ingress"])
NOT_IN_PEER = netpol(
    "not-from-envoy",
    ingress=[
        {
            "from": [
                {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["seldon-envoy"]}
                        ]
                    }
                }
            ]
        }
    ],
)
CALICO_DENY = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "NetworkPolicy",
    "metadata": {"name": "calico-deny", "namespace": NS},
    "spec": {"selector": "all()", "types": ["Ingress"]},
}

SELDON_POLICY_YAML = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-nginx
  namespace: seldon-mesh
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: ingress-nginx
"""
SELDON_ONLY_NGINX: dict[str, Any] = yaml.safe_load(SELDON_POLICY_YAML)
SELDON_NGINX_AND_SAME_NS: dict[str, Any] = yaml.safe_load(SELDON_POLICY_YAML)
SELDON_NGINX_AND_SAME_NS["spec"]["ingress"][0]["from"].append({"podSelector": {}})


@dataclass(frozen=True)
class Case:
    id: str
    policies: list[dict[str, Any]]
    src: Endpoint
    dst: Endpoint
    port: int
    allowed: bool
    protocol: Protocol = Protocol.TCP
    blocked_by: Direction | None = None
    ingress_policies: tuple[str, ...] | None = None
    egress_policies: tuple[str, ...] | None = None


def ids(*names: str) -> tuple[str, ...]:
    return tuple(f"{NS}/{name}" for name in names)


CASES = [
    Case("no policies: everything flows", [], AGENT, SCHEDULER, 9005, True, ingress_policies=(), egress_policies=()),
    Case(
        "default deny ingress",
        [DENY_INGRESS],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
        ingress_policies=ids("default-deny-ingress"),
        egress_policies=(),
    ),
    Case("default deny ingress does not touch egress", [DENY_INGRESS], AGENT, NGINX, 80, True),
    Case(
        "deny + allow same namespace are OR-ed",
        [DENY_INGRESS, ALLOW_SAME_NS],
        AGENT,
        SCHEDULER,
        9005,
        True,
        ingress_policies=ids("default-deny-ingress", "allow-same-namespace"),
    ),
    Case(
        "podSelector {} peer is only the policy's namespace",
        [DENY_INGRESS, ALLOW_SAME_NS],
        TEAM_A,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("namespaceSelector on metadata.name admits nginx", [ENVOY_FROM_NGINX], NGINX, ENVOY, 9000, True),
    Case(
        "namespaceSelector rule limited to port 9000",
        [ENVOY_FROM_NGINX],
        NGINX,
        ENVOY,
        9003,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "namespaceSelector rejects other namespace",
        [ENVOY_FROM_NGINX],
        TEAM_A,
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "namespaceSelector rejects own namespace",
        [ENVOY_FROM_NGINX],
        AGENT,
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "policy for envoy leaves the scheduler open",
        [ENVOY_FROM_NGINX],
        AGENT,
        SCHEDULER,
        9005,
        True,
        ingress_policies=(),
    ),
    Case("both selectors: matching pod in matching namespace", [NGINX_CONTROLLER_ONLY], NGINX, ENVOY, 9000, True),
    Case(
        "both selectors: other pod of matching namespace",
        [NGINX_CONTROLLER_ONLY],
        NGINX_WEBHOOK_JOB,
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "both selectors: matching pod labels in another namespace",
        [NGINX_CONTROLLER_ONLY],
        Endpoint("team-a", dict(NGINX.labels), {}, name="lookalike"),
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "two peers are OR-ed: namespace peer admits any pod there",
        [NGINX_NS_OR_CONTROLLER],
        NGINX_WEBHOOK_JOB,
        ENVOY,
        9000,
        True,
    ),
    Case(
        "two peers: lone podSelector means the policy's namespace",
        [NGINX_NS_OR_CONTROLLER],
        Endpoint("team-a", dict(NGINX.labels), {}, name="lookalike"),
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("namespaceSelector {} admits every namespace", [ALL_NAMESPACES], TEAM_A, SCHEDULER, 9005, True),
    Case("namespaceSelector {} admits own namespace", [ALL_NAMESPACES], AGENT, SCHEDULER, 9005, True),
    Case("podSelector peer with labels, same namespace", [SERVERS_ONLY], AGENT, SCHEDULER, 9005, True),
    Case(
        "podSelector peer with labels, wrong pod",
        [SERVERS_ONLY],
        ENVOY,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "podSelector peer with labels, other namespace",
        [SERVERS_ONLY],
        TEAM_A,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("matchExpressions NotIn peer admits", [NOT_IN_PEER], AGENT, SCHEDULER, 9005, True),
    Case(
        "matchExpressions NotIn peer rejects",
        [NOT_IN_PEER],
        ENVOY,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("named port resolves on the destination", [NAMED_AGENT_PORT], AGENT, SCHEDULER, 9005, True),
    Case(
        "named port does not cover other ports",
        [NAMED_AGENT_PORT],
        AGENT,
        SCHEDULER,
        9004,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("named port: same name, per-pod number (envoy)", [NAMED_PORT_EVERYWHERE], NGINX, ENVOY, 9000, True),
    Case(
        "named port missing on destination matches nothing",
        [NAMED_PORT_EVERYWHERE],
        AGENT,
        SCHEDULER,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("endPort: inside the range", [PORT_RANGE], AGENT, SCHEDULER, 9005, True),
    Case("endPort: first port", [PORT_RANGE], AGENT, SCHEDULER, 9000, True),
    Case("endPort: last port", [PORT_RANGE], AGENT, SCHEDULER, 9010, True),
    Case("endPort: above the range", [PORT_RANGE], AGENT, SCHEDULER, 9011, False, blocked_by=Direction.INGRESS),
    Case("endPort: below the range", [PORT_RANGE], AGENT, SCHEDULER, 8999, False, blocked_by=Direction.INGRESS),
    Case(
        "endPort: protocol still applies", [PORT_RANGE], AGENT, SCHEDULER, 9005, False, Protocol.UDP, Direction.INGRESS
    ),
    Case("UDP rule admits UDP 53", [DNS_UDP_ONLY], AGENT, COREDNS, 53, True, Protocol.UDP),
    Case("UDP rule does not admit TCP 53", [DNS_UDP_ONLY], AGENT, COREDNS, 53, False, Protocol.TCP, Direction.INGRESS),
    Case("port without protocol means TCP", [TCP_BY_DEFAULT], AGENT, SCHEDULER, 9005, True, Protocol.TCP),
    Case(
        "port without protocol is not UDP",
        [TCP_BY_DEFAULT],
        AGENT,
        SCHEDULER,
        9005,
        False,
        Protocol.UDP,
        Direction.INGRESS,
    ),
    Case(
        "port without protocol is not SCTP",
        [TCP_BY_DEFAULT],
        AGENT,
        SCHEDULER,
        9005,
        False,
        Protocol.SCTP,
        Direction.INGRESS,
    ),
    Case(
        "default deny egress",
        [DENY_EGRESS],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
        ingress_policies=(),
        egress_policies=ids("default-deny-egress"),
    ),
    Case("egress DNS to kube-system over UDP", [EGRESS_DNS_TO_KUBE_SYSTEM], AGENT, COREDNS, 53, True, Protocol.UDP),
    Case("egress DNS to kube-system over TCP", [EGRESS_DNS_TO_KUBE_SYSTEM], AGENT, COREDNS, 53, True, Protocol.TCP),
    Case(
        "egress DNS rule does not open other coredns ports",
        [EGRESS_DNS_TO_KUBE_SYSTEM],
        AGENT,
        COREDNS,
        9153,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "egress DNS rule rejects kube-dns lookalike elsewhere",
        [EGRESS_DNS_TO_KUBE_SYSTEM],
        AGENT,
        ROGUE_DNS,
        53,
        False,
        Protocol.UDP,
        Direction.EGRESS,
    ),
    Case(
        "egress DNS-only policy cuts agent from scheduler",
        [EGRESS_DNS_TO_KUBE_SYSTEM],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
        egress_policies=ids("egress-dns-only"),
        ingress_policies=(),
    ),
    Case(
        "egress DNS-only policy does not restrict ingress of selected pods",
        [EGRESS_DNS_TO_KUBE_SYSTEM],
        NGINX,
        ENVOY,
        9000,
        True,
    ),
    Case("ipBlock contains the destination", [EGRESS_PRIVATE_EXCEPT_NODE_RANGE], AGENT, NGINX, 443, True),
    Case(
        "ipBlock except cuts the destination out",
        [EGRESS_PRIVATE_EXCEPT_NODE_RANGE],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "ipBlock with unknown destination ip does not match",
        [EGRESS_PRIVATE_EXCEPT_NODE_RANGE],
        AGENT,
        NO_IP,
        80,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "ipBlock of another family does not match",
        [EGRESS_PRIVATE_EXCEPT_NODE_RANGE],
        AGENT,
        V6_POD,
        80,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case("0.0.0.0/0 matches a pod of unknown ip", [EGRESS_ANYWHERE_V4], AGENT, NO_IP, 80, True),
    Case("::/0 matches a pod of unknown ip", [EGRESS_ANYWHERE_V6], AGENT, NO_IP, 80, True),
    Case("::/0 matches an IPv6 pod", [EGRESS_ANYWHERE_V6], AGENT, V6_POD, 80, True),
    Case(
        "::/0 does not match an IPv4 pod",
        [EGRESS_ANYWHERE_V6],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "0.0.0.0/0 with except cannot vouch for an unknown ip",
        [EGRESS_INTERNET_ONLY],
        AGENT,
        NO_IP,
        80,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "0.0.0.0/0 with except: pod ip excluded",
        [EGRESS_INTERNET_ONLY],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "0.0.0.0/0 with except: public ip admitted",
        [EGRESS_INTERNET_ONLY],
        AGENT,
        Endpoint("external", {}, {}, ip="52.95.110.1", name="s3"),
        443,
        True,
    ),
    Case("ingress ipBlock admits the source range", [INGRESS_FROM_NGINX_CIDR], NGINX, ENVOY, 9000, True),
    Case(
        "ingress ipBlock except (/32) rejects one source",
        [INGRESS_FROM_NGINX_CIDR],
        NGINX_WEBHOOK_JOB,
        ENVOY,
        9000,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case(
        "egress rules without policyTypes also isolate ingress",
        [EGRESS_RULES_NO_TYPES],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
        ingress_policies=ids("egress-rules-no-types"),
        egress_policies=ids("egress-rules-no-types"),
    ),
    Case(
        "egress rules without policyTypes restrict egress too",
        [EGRESS_RULES_NO_TYPES],
        AGENT,
        NGINX,
        80,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case(
        "empty egress list without policyTypes is Ingress only",
        [EMPTY_EGRESS_NO_TYPES],
        AGENT,
        NGINX,
        80,
        True,
        egress_policies=(),
    ),
    Case(
        "explicit policyTypes [Egress] ignores ingress rules",
        [EXPLICIT_EGRESS_TYPE_WITH_INGRESS_RULES],
        AGENT,
        SCHEDULER,
        9005,
        True,
        ingress_policies=(),
        egress_policies=ids("egress-type-only"),
    ),
    Case(
        "Ingress type without ingress list denies all ingress",
        [BOTH_TYPES_NO_INGRESS_LIST],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("empty ingress rule admits everything", [DENY_INGRESS, ALLOW_ALL_RULE], TEAM_A, SCHEDULER, 1234, True),
    Case("empty from admits any source on the port", [ANY_SOURCE_PORT_9005], TEAM_A, SCHEDULER, 9005, True),
    Case(
        "empty from still restricts the port",
        [ANY_SOURCE_PORT_9005],
        TEAM_A,
        SCHEDULER,
        9004,
        False,
        blocked_by=Direction.INGRESS,
    ),
    Case("policies of other namespaces do not apply", [OTHER_NAMESPACE_DENY], AGENT, SCHEDULER, 9005, True),
    Case(
        "other namespace's egress deny blocks its own pods",
        [OTHER_NAMESPACE_DENY],
        TEAM_A,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
        egress_policies=("team-a/deny-all",),
    ),
    Case(
        "podSelector not matching leaves the pod open",
        [ENVOY_ONLY_DENY],
        AGENT,
        SCHEDULER,
        9005,
        True,
        ingress_policies=(),
    ),
    Case(
        "same pod is never blocked",
        [DENY_INGRESS, DENY_EGRESS],
        SCHEDULER,
        SCHEDULER,
        9005,
        True,
        ingress_policies=ids("default-deny-ingress"),
        egress_policies=ids("default-deny-egress"),
    ),
    Case(
        "same pod recognised by name",
        [DENY_INGRESS],
        Endpoint(NS, {"app.kubernetes.io/name": "seldon-scheduler"}, {}, name="seldon-scheduler-0"),
        SCHEDULER,
        9005,
        True,
    ),
    Case("same pod recognised by ip", [DENY_INGRESS], Endpoint(NS, {}, {}, ip="10.244.1.20"), SCHEDULER, 9005, True),
    Case(
        "both sides blocked: egress reported first",
        [DENY_INGRESS, DENY_EGRESS],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.EGRESS,
    ),
    Case("non-Kubernetes policies are ignored", [CALICO_DENY], AGENT, SCHEDULER, 9005, True, ingress_policies=()),
    Case(
        "seldon: agent -> scheduler 9005 blocked when only ingress-nginx is admitted",
        [SELDON_ONLY_NGINX],
        AGENT,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
        ingress_policies=ids("allow-ingress-nginx"),
        egress_policies=(),
    ),
    Case("seldon: ingress-nginx -> envoy 9000 admitted", [SELDON_ONLY_NGINX], NGINX, ENVOY, 9000, True),
    Case(
        "seldon: podSelector {} peer added lets the agent reach the scheduler",
        [SELDON_NGINX_AND_SAME_NS],
        AGENT,
        SCHEDULER,
        9005,
        True,
        ingress_policies=ids("allow-ingress-nginx"),
    ),
    Case(
        "seldon: podSelector {} peer keeps other namespaces out",
        [SELDON_NGINX_AND_SAME_NS],
        TEAM_A,
        SCHEDULER,
        9005,
        False,
        blocked_by=Direction.INGRESS,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_evaluate(case: Case) -> None:
    verdict = evaluate(case.policies, case.src, case.dst, case.port, case.protocol)
    assert verdict.allowed is case.allowed, verdict.explanation
    assert verdict.blocked_by == case.blocked_by, verdict.explanation
    if case.ingress_policies is not None:
        assert verdict.ingress_policies == case.ingress_policies
    if case.egress_policies is not None:
        assert verdict.egress_policies == case.egress_policies
    assert "\n" not in verdict.explanation
    assert verdict.explanation.startswith("allowed" if case.allowed else "blocked")
    # A refusing side names every policy that isolates it; an admitting isolated side names one that admits.
    sides = (
        (ingress_allows(case.policies, case.src, case.dst, case.port, case.protocol), verdict.ingress_policies),
        (egress_allows(case.policies, case.src, case.dst, case.port, case.protocol), verdict.egress_policies),
    )
    for (side_allowed, side_policies), names in sides:
        assert side_policies == names
        if not names or "itself" in verdict.explanation:
            continue
        if side_allowed:
            assert any(f"via {name}" in verdict.explanation for name in names)
        else:
            assert all(name in verdict.explanation for name in names)


def test_seldon_blocked_explanation_names_the_policy_and_the_traffic() -> None:
    verdict = evaluate([SELDON_ONLY_NGINX], AGENT, SCHEDULER, 9005)
    assert verdict.explanation == (
        "blocked at ingress: egress of seldon-mesh/mlserver-0 is not restricted (no policy selects it); "
        "ingress of seldon-mesh/seldon-scheduler-0 is restricted by seldon-mesh/allow-ingress-nginx and no rule "
        "admits traffic from seldon-mesh/mlserver-0 on 9005/TCP"
    )


def test_allowed_explanation_names_the_admitting_policy_only() -> None:
    verdict = evaluate([DENY_INGRESS, ALLOW_SAME_NS], AGENT, SCHEDULER, 9005)
    assert (
        "admits traffic from seldon-mesh/mlserver-0 on 9005/TCP via seldon-mesh/allow-same-namespace"
        in verdict.explanation
    )
    assert "via seldon-mesh/default-deny-ingress" not in verdict.explanation


def test_explanation_when_both_sides_block() -> None:
    verdict = evaluate([DENY_INGRESS, DENY_EGRESS], AGENT, SCHEDULER, 9005, Protocol.UDP)
    assert verdict.explanation.startswith("blocked at egress and ingress: ")
    assert "9005/UDP" in verdict.explanation


def test_same_pod_explanation() -> None:
    verdict = evaluate([DENY_INGRESS], SCHEDULER, SCHEDULER, 9005)
    assert "itself" in verdict.explanation


def test_explanation_of_template_endpoint_shows_labels() -> None:
    dst = Endpoint(NS, {"app.kubernetes.io/name": "seldon-scheduler"}, {})
    verdict = evaluate([DENY_INGRESS], AGENT, dst, 9005)
    assert "seldon-mesh/pod[app.kubernetes.io/name=seldon-scheduler]" in verdict.explanation


def test_protocol_accepts_plain_strings() -> None:
    assert evaluate([DNS_UDP_ONLY], AGENT, COREDNS, 53, "UDP").allowed  # type: ignore[arg-type]


def test_duplicate_policy_objects_are_listed_once() -> None:
    verdict = evaluate([DENY_INGRESS, DENY_INGRESS], AGENT, SCHEDULER, 9005)
    assert verdict.ingress_policies == ids("default-deny-ingress")


# --- the directional helpers ----------------------------------------------------------------------------------------


def test_ingress_allows_reports_isolating_policies() -> None:
    assert ingress_allows([SELDON_ONLY_NGINX], AGENT, SCHEDULER, 9005, Protocol.TCP) == (
        False,
        ids("allow-ingress-nginx"),
    )
    assert ingress_allows([SELDON_ONLY_NGINX], NGINX, SCHEDULER, 9005, Protocol.TCP) == (
        True,
        ids("allow-ingress-nginx"),
    )
    assert ingress_allows([], AGENT, SCHEDULER, 9005, Protocol.TCP) == (True, ())


def test_egress_allows_looks_at_the_source_and_destination_ports() -> None:
    assert egress_allows([EGRESS_DNS_TO_KUBE_SYSTEM], AGENT, COREDNS, 53, Protocol.UDP) == (
        True,
        ids("egress-dns-only"),
    )
    assert egress_allows([EGRESS_DNS_TO_KUBE_SYSTEM], AGENT, SCHEDULER, 53, Protocol.UDP) == (
        False,
        ids("egress-dns-only"),
    )
    # The policy selects seldon-mesh pods; a kube-system source is not isolated by it.
    assert egress_allows([EGRESS_DNS_TO_KUBE_SYSTEM], COREDNS, AGENT, 9000, Protocol.TCP) == (True, ())


def test_egress_named_port_resolves_against_the_destination() -> None:
    policy = netpol("egress-to-agent-port", types=["Egress"], egress=[{"ports": [{"port": "agent"}]}])
    assert egress_allows([policy], AGENT, SCHEDULER, 9005, Protocol.TCP)[0]
    # The source has no port named "agent"; the destination's names count, not the source's.
    assert not egress_allows([policy], SCHEDULER, AGENT, 9005, Protocol.TCP)[0]


# --- policy_types and selects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"podSelector": {}}, {"Ingress"}),
        ({}, {"Ingress"}),
        ({"podSelector": {}, "ingress": [{}]}, {"Ingress"}),
        ({"podSelector": {}, "egress": [{}]}, {"Ingress", "Egress"}),
        ({"podSelector": {}, "egress": []}, {"Ingress"}),
        ({"podSelector": {}, "egress": [{}], "policyTypes": []}, {"Ingress", "Egress"}),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, {"Egress"}),
        ({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}, {"Egress"}),
        ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, {"Ingress", "Egress"}),
        ({"podSelector": {}, "policyTypes": ["ingress"]}, {"Ingress"}),
    ],
    ids=[
        "nothing",
        "empty spec",
        "ingress rules",
        "egress rules",
        "empty egress list",
        "empty policyTypes list defaults",
        "explicit egress",
        "explicit egress ignores ingress rules",
        "explicit both",
        "case-insensitive",
    ],
)
def test_policy_types(spec: dict[str, Any], expected: set[str]) -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": NS}}
    assert policy_types({**policy, "spec": spec}) == frozenset(expected)


def test_policy_types_rejects_unknown_type() -> None:
    with pytest.raises(NetworkPolicyError, match="seldon-mesh/bad.*'Both'"):
        policy_types(netpol("bad", types=["Both"]))


def test_selects() -> None:
    assert selects(DENY_INGRESS, AGENT)
    assert selects(SELDON_ONLY_NGINX, SCHEDULER)
    assert not selects(DENY_INGRESS, TEAM_A)
    assert selects(ENVOY_FROM_NGINX, ENVOY)
    assert not selects(ENVOY_FROM_NGINX, AGENT)
    assert not selects(CALICO_DENY, AGENT)


def test_selects_absent_pod_selector_means_all_pods() -> None:
    policy = netpol("no-selector")
    del policy["spec"]["podSelector"]
    assert selects(policy, AGENT)
    assert selects({**policy, "spec": None}, SCHEDULER)


def test_policy_without_namespace_lives_in_default() -> None:
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "deny"}, "spec": {"podSelector": {}}}
    assert selects(policy, Endpoint("default", {}, {}))
    assert not selects(policy, AGENT)
    assert evaluate([policy], AGENT, Endpoint("default", {}, {}, name="web"), 80).ingress_policies == ("default/deny",)


# --- malformed policies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        netpol("bad-cidr", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]),
        netpol("no-cidr", ingress=[{"from": [{"ipBlock": {"except": ["10.0.0.0/8"]}}]}]),
        netpol("bad-except", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["nope"]}}]}]),
        netpol(
            "bad-operator",
            ingress=[{"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}]}],
        ),
        netpol("from-not-list", ingress=[{"from": {"podSelector": {}}}]),
        netpol("rule-not-mapping", ingress=["everything"]),
        netpol("bool-port", ingress=[{"ports": [{"port": True}]}]),
    ],
    ids=lambda policy: policy["metadata"]["name"],
)
def test_malformed_policy_raises_with_its_name(policy: dict[str, Any]) -> None:
    with pytest.raises(NetworkPolicyError, match=f"seldon-mesh/{policy['metadata']['name']}"):
        evaluate([policy], TEAM_A, AGENT, 9000)


def test_null_list_items_decode_like_the_api_server() -> None:
    null_rule = netpol("null-rule", ingress=[None])
    assert evaluate([null_rule], TEAM_A, AGENT, 9000).allowed
    null_peer = netpol("null-peer", ingress=[{"from": [None]}])
    assert not evaluate([null_peer], TEAM_A, AGENT, 9000).allowed
    null_port = netpol("null-port", ingress=[{"ports": [None]}])
    assert evaluate([null_port], TEAM_A, AGENT, 9000).allowed
    assert not evaluate([null_port], TEAM_A, AGENT, 9000, Protocol.UDP).allowed


def test_numeric_port_string_from_hand_written_yaml() -> None:
    policy = netpol("quoted-port", ingress=[{"ports": [{"port": "9005"}]}])
    assert evaluate([policy], AGENT, SCHEDULER, 9005).allowed
    assert not evaluate([policy], AGENT, SCHEDULER, 9004).allowed


# --- Endpoint and its builders --------------------------------------------------------------------------------------


def test_endpoint_adds_metadata_name_label() -> None:
    endpoint = Endpoint("seldon-mesh", {}, {"team": "ml"})
    assert endpoint.namespace_labels == {"team": "ml", METADATA_NAME_LABEL: "seldon-mesh"}


def test_endpoint_keeps_a_given_metadata_name_label() -> None:
    endpoint = Endpoint("seldon-mesh", {}, {METADATA_NAME_LABEL: "seldon-mesh"})
    assert endpoint.namespace_labels == {METADATA_NAME_LABEL: "seldon-mesh"}


def test_endpoint_copies_its_inputs() -> None:
    labels = {"app": "a"}
    endpoint = Endpoint("ns", labels, {})
    labels["app"] = "b"
    assert endpoint.labels == {"app": "a"}


def test_endpoint_normalises_ip() -> None:
    assert Endpoint("ns", {}, {}, ip="").ip is None
    assert Endpoint("ns", {}, {}, ip="fd00:0:0::10").ip == "fd00::10"
    with pytest.raises(ValueError, match="not an IP address"):
        Endpoint("ns", {}, {}, ip="10.0.0.300")


SCHEDULER_POD_YAML = """
apiVersion: v1
kind: Pod
metadata:
  name: seldon-scheduler-0
  namespace: seldon-mesh
  labels:
    app.kubernetes.io/name: seldon-scheduler
    controller-revision-hash: seldon-scheduler-6b7c9
spec:
  initContainers:
  - name: setup
    image: busybox
    ports:
    - name: ignored
      containerPort: 1111
  - name: proxy-sidecar
    image: envoy
    restartPolicy: Always
    ports:
    - name: sidecar
      containerPort: 15001
  containers:
  - name: scheduler
    image: seldonio/seldon-scheduler:2.8.0
    ports:
    - name: xds
      containerPort: 9002
      protocol: TCP
    - name: scheduler
      containerPort: 9004
      protocol: TCP
    - name: agent
      containerPort: 9005
      protocol: TCP
    - containerPort: 9999
status:
  phase: Running
  podIP: 10.244.1.20
"""


def test_endpoint_from_pod() -> None:
    pod = yaml.safe_load(SCHEDULER_POD_YAML)
    endpoint = endpoint_from_pod(pod, {"team": "ml"})
    assert endpoint.namespace == NS
    assert endpoint.name == "seldon-scheduler-0"
    assert endpoint.ip == "10.244.1.20"
    assert endpoint.labels["app.kubernetes.io/name"] == "seldon-scheduler"
    assert endpoint.namespace_labels == {"team": "ml", METADATA_NAME_LABEL: NS}
    assert endpoint.container_ports == {"xds": 9002, "scheduler": 9004, "agent": 9005, "sidecar": 15001}
    assert evaluate([NAMED_AGENT_PORT], AGENT, endpoint, 9005).allowed


def test_endpoint_from_pending_pod_has_no_ip() -> None:
    pod = yaml.safe_load(SCHEDULER_POD_YAML)
    pod["status"] = {"phase": "Pending"}
    endpoint = endpoint_from_pod(pod)
    assert endpoint.ip is None
    assert endpoint.namespace_labels == {METADATA_NAME_LABEL: NS}


STATEFULSET_YAML = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: mlserver
  namespace: seldon-mesh
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/name: seldon-server
        seldon-server-name: mlserver
    spec:
      containers:
      - name: agent
        ports:
        - name: agent-http
          containerPort: 9001
        - name: agent-grpc
          containerPort: 9501
      - name: mlserver
        ports:
        - name: http
          containerPort: 9000
        - name: grpc
          containerPort: 9500
"""


def test_endpoint_from_template() -> None:
    workload = yaml.safe_load(STATEFULSET_YAML)
    endpoint = endpoint_from_template(NS, workload["spec"]["template"], name="mlserver")
    assert endpoint.ip is None
    assert endpoint.name == "mlserver"
    assert endpoint.labels == {"app.kubernetes.io/name": "seldon-server", "seldon-server-name": "mlserver"}
    assert endpoint.container_ports == {"agent-http": 9001, "agent-grpc": 9501, "http": 9000, "grpc": 9500}
    assert endpoint.namespace_labels == {METADATA_NAME_LABEL: NS}
    # The template endpoint stands in for the agent pod in the Seldon case.
    assert not evaluate([SELDON_ONLY_NGINX], endpoint, SCHEDULER, 9005).allowed
    assert evaluate([SELDON_NGINX_AND_SAME_NS], endpoint, SCHEDULER, 9005).allowed
