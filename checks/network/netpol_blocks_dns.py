"""MT203 netpol-blocks-dns: egress NetworkPolicies on Seldon pods leave no way to reach cluster DNS (UDP 53)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import service_ports
from mlops_trace.analysis.netpol import (
    Direction,
    Endpoint,
    NetworkPolicyError,
    Protocol,
    egress_allows,
    rules_text,
    undecided_rules,
)
from mlops_trace.analysis.pod_endpoints import PodEndpoint, invalid_ports, pod_endpoints, workload_members
from mlops_trace.analysis.seldon import runs_seldon_agent
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT203",
    slug="netpol-blocks-dns",
    title="Egress NetworkPolicy on Seldon pods allows no DNS",
    severity=Severity.CRITICAL,
    requires=("kube:Pod|kube:StatefulSet|kube:Deployment",),
    reads=("kube:DaemonSet", "kube:Namespace", "kube:NetworkPolicy", "kube:Service"),
    playbook="network-policy",
    fix=(
        "Add an egress rule for DNS: `- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "
        "kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]` with ports 53/UDP and 53/TCP."
    ),
)

DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
_SELDON_ROLES = (Role.SCHEDULER, Role.ENVOY, Role.AGENT, Role.MODELGATEWAY, Role.CONTROLLER)


def _is_seldon(obj: KubeObject, labels: Mapping[str, str]) -> bool:
    if pod_role(obj.name, labels) in _SELDON_ROLES:
        return True
    if runs_seldon_agent(obj):
        return True
    for key in ("app.kubernetes.io/name", "app"):
        value = labels.get(key, "")
        if value.startswith("seldon-") or value == "hodometer":
            return True
    return False


def run(snap: Snapshot) -> Iterator[Finding]:
    policy_objects = snap.objects_of("NetworkPolicy")
    policies = [p.raw for p in policy_objects]
    by_name = {f"{p.namespace}/{p.name}": p for p in policy_objects}
    namespaces = [ns for ns in snap.namespaces() if ns != DNS_NAMESPACE and workload_members(snap, ns, _is_seldon)]
    if not namespaces:
        raise SkipCheck("no Seldon pods or workloads in the bundle")
    dns, dns_source = _dns_endpoint(snap)
    dns_port = _dns_port(snap, dns)
    judged: list[str] = []
    reasons: list[str] = []
    for namespace in namespaces:
        if not snap.covers("NetworkPolicy", namespace):
            reasons.append(f"NetworkPolicies of {namespace} not collected")
            continue
        blocked: dict[tuple[str, ...], list[PodEndpoint]] = {}
        decided = 0
        unknown: list[str] = []
        try:
            for member in pod_endpoints(snap, workload_members(snap, namespace, _is_seldon)):
                allowed, isolating = egress_allows(policies, member.endpoint, dns, dns_port, Protocol.UDP)
                if allowed or not isolating:
                    decided += 1
                    continue
                in_play = [by_name[n] for n in isolating if n in by_name]
                if _dns_by_ip_block(in_play, dns, dns_port):
                    decided += 1
                    continue
                why = undecided_rules(
                    [p.raw for p in in_play],
                    Direction.EGRESS,
                    member.endpoint,
                    dns,
                    dns_port,
                    Protocol.UDP,
                    peer_labels_known=dns_source is not None,
                    peer_namespace_labels_known=snap.get("Namespace", None, DNS_NAMESPACE) is not None,
                )
                if why:
                    unknown += [item for item in why if item not in unknown]
                    continue
                decided += 1
                blocked.setdefault(isolating, []).append(member)
        except NetworkPolicyError as exc:
            reasons.append(f"{namespace}: {exc}")
            continue
        if unknown:
            reasons.append(f"{namespace}: DNS may be admitted by {'; '.join(unknown[:3])}")
        if not decided:
            continue
        judged.append(namespace)
        for names, members in blocked.items():
            yield _finding(namespace, names, members, by_name, dns, dns_port, dns_source)
    if not judged:
        raise SkipCheck("cannot judge DNS egress: " + "; ".join(reasons))


def _dns_endpoint(snap: Snapshot) -> tuple[Endpoint, KubeObject | None]:
    """A kube-dns Pod of the bundle, else one assumed with the labels CoreDNS and kube-dns both carry."""
    for pod in snap.objects_of("Pod", DNS_NAMESPACE):
        if all(pod.labels.get(k) == v for k, v in DNS_LABELS.items()):
            member = pod_endpoints(snap, [pod])[0]
            return member.endpoint, pod
    endpoint = Endpoint(
        namespace=DNS_NAMESPACE,
        labels=DNS_LABELS,
        namespace_labels=snap.namespace_labels(DNS_NAMESPACE),
        container_ports={"dns": DNS_PORT, "dns-tcp": DNS_PORT},
        name="kube-dns (assumed)",
    )
    return endpoint, None


def _dns_port(snap: Snapshot, dns: Endpoint) -> int:
    """The DNS pods' port behind the kube-dns Service's port 53/UDP (53 on CoreDNS; some distributions use 5353)."""
    for svc in snap.objects_of("Service", DNS_NAMESPACE):
        selector = {str(k): str(v) for k, v in as_mapping(svc.spec.get("selector")).items()}
        if not selector or any(dns.labels.get(k) != v for k, v in selector.items()):
            continue
        for port in service_ports(svc):
            udp = str(port.get("protocol") or "TCP").upper() == "UDP"
            if fields.port_number(port.get("port")) == DNS_PORT and udp:
                # A targetPort that is neither a port number nor a port name tells nothing: look further.
                target = fields.port(port.get("targetPort"))
                if isinstance(target, int):
                    return target
                if isinstance(target, str):
                    return dns.container_ports.get(target, DNS_PORT)
    return DNS_PORT


def _dns_by_ip_block(policies: list[KubeObject], dns: Endpoint, dns_port: int) -> bool:
    """Whether a rule opens UDP 53 (or every port) to an ipBlock: pods may resolve through a node-local DNS cache
    (169.254.20.10) or a CIDR the bundle cannot tie to the DNS pods, so such a rule counts as a DNS rule."""
    for policy in policies:
        for rule_value in as_list(policy.spec.get("egress")):
            rule = as_mapping(rule_value)
            if _ports_admit_dns(as_list(rule.get("ports")), dns, dns_port) and any(
                "ipBlock" in as_mapping(peer) for peer in as_list(rule.get("to"))
            ):
                return True
    return False


def _pod_selector_only_dns_rule(policy: KubeObject) -> bool:
    """Whether an egress rule picks DNS pods (`k8s-app: kube-dns`) by podSelector with no namespaceSelector, which
    selects pods of the policy's own namespace only."""
    for rule_value in as_list(policy.spec.get("egress")):
        for peer in as_list(as_mapping(rule_value).get("to")):
            peer_spec = as_mapping(peer)
            if "namespaceSelector" in peer_spec or "podSelector" not in peer_spec:
                continue
            labels = as_mapping(as_mapping(peer_spec.get("podSelector")).get("matchLabels"))
            if any(str(labels.get(key)) == value for key, value in DNS_LABELS.items()):
                return True
    return False


def _ports_admit_dns(ports: list[Any], dns: Endpoint, dns_port: int) -> bool:
    if not ports:
        return True
    for item in ports:
        port = as_mapping(item)
        if str(port.get("protocol") or "TCP").upper() != "UDP":
            continue
        wanted = port.get("port")
        if wanted is None:
            return True
        parsed = fields.port(wanted)
        number = dns.container_ports.get(parsed) if isinstance(parsed, str) else parsed
        if number is None:
            continue
        end = fields.port_number(port.get("endPort"))
        if number in (DNS_PORT, dns_port) or (end is not None and number <= dns_port <= end):
            return True
    return False


def _finding(
    namespace: str,
    names: tuple[str, ...],
    members: list[PodEndpoint],
    by_name: Mapping[str, KubeObject],
    dns: Endpoint,
    dns_port: int,
    dns_source: KubeObject | None,
) -> Finding:
    short = [name.split("/", 1)[-1] for name in names]
    target = next((n.split("/", 1)[-1] for n in names if n in by_name and as_list(by_name[n].spec.get("egress"))), None)
    pods = sorted({m.label for m in members})
    shown = ", ".join(pods[:10]) + (f" and {len(pods) - 10} more" if len(pods) > 10 else "")
    message = (
        f"Egress NetworkPolicy {', '.join(short)} in {namespace} select(s) Seldon pods ({shown}) and allow(s) no DNS "
        f"({dns_port}/UDP to kube-dns in {DNS_NAMESPACE}): every lookup of seldon-scheduler, seldon-mesh or the model "
        "storage fails, so agents never subscribe, Envoy gets no configuration and models do not load."
    )
    if any(_pod_selector_only_dns_rule(by_name[n]) for n in names if n in by_name):
        message += (
            f" A rule selects k8s-app=kube-dns by podSelector without a namespaceSelector: that selects pods of "
            f"{namespace} only, never the DNS pods of {DNS_NAMESPACE}."
        )
    if any(_opens_dns_tcp_only(by_name[n], dns_port) for n in names if n in by_name):
        message += f" A rule opens {dns_port} for TCP only (a port without protocol means TCP); lookups use UDP first."
    evidence: list[Evidence] = []
    for name in names:
        policy = by_name.get(name)
        if policy is not None:
            evidence.append(Evidence(policy.field_where(".spec.egress"), rules_text(policy.spec, "egress")))
    first = members[0]
    evidence.append(Evidence(first.source.field_where(".metadata.labels"), f"{first.label}: {_labels(first.endpoint)}"))
    if dns_source is not None:
        evidence.append(
            Evidence(dns_source.field_where(".metadata.labels"), f"DNS pod {dns_source.name}: {_labels(dns)}")
        )
        broken = invalid_ports(dns_source)
        if broken:
            problem = broken[0][1].problem
            message += f" On DNS pod {dns_source.name}, {problem}: rules that name that port admit nothing."
            evidence += [Evidence(where, bad.problem) for where, bad in broken[:3]]
    else:
        evidence.append(
            Evidence(
                f"kube/ (namespace {DNS_NAMESPACE})",
                f"no kube-dns Pod in the bundle: assumed one in {DNS_NAMESPACE} labelled k8s-app=kube-dns",
            )
        )
    fix = None
    if target is not None:
        fix = (
            f"Add to NetworkPolicy {target} in {namespace} an egress rule `- to: [{{namespaceSelector: {{matchLabels: "
            f"{{kubernetes.io/metadata.name: {DNS_NAMESPACE}}}}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}]`"
            f" with `ports: [{{port: {dns_port}, protocol: UDP}}, {{port: {dns_port}, protocol: TCP}}]`."
        )
    return CHECK.finding(
        namespace=namespace,
        object=f"NetworkPolicy/{target or short[0]}",
        message=message,
        evidence=evidence,
        fix=fix,
    )


def _opens_dns_tcp_only(policy: KubeObject, dns_port: int) -> bool:
    """Whether a rule opens the DNS port for TCP and no rule of the policy opens it for UDP."""
    protocols: set[str] = set()
    for rule in as_list(policy.spec.get("egress")):
        for item in as_list(as_mapping(rule).get("ports")):
            port = as_mapping(item)
            if str(port.get("port")) in (str(DNS_PORT), str(dns_port)):
                protocols.add(str(port.get("protocol") or "TCP").upper())
    return "TCP" in protocols and "UDP" not in protocols


def _labels(endpoint: Endpoint) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(endpoint.labels.items())) or "(no labels)"
