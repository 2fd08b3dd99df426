"""MT201 netpol-blocks-intra-namespace: NetworkPolicies stop Seldon's own components from talking inside a namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.netpol import (
    Direction,
    InvalidPort,
    NetworkPolicyError,
    Protocol,
    Verdict,
    evaluate,
    rules_text,
    undecided_rules,
)
from mlops_trace.analysis.pod_endpoints import (
    PodEndpoint,
    container_port,
    invalid_ports,
    pod_endpoints,
    workload_members,
)
from mlops_trace.analysis.seldon import (
    AGENT_PROXY_GRPC_PORT,
    AGENT_PROXY_HTTP_PORT,
    SCHEDULER_AGENT_PORT,
    SCHEDULER_API_PORT,
    SCHEDULER_XDS_PORT,
    runs_seldon_agent,
)
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT201",
    slug="netpol-blocks-intra-namespace",
    title="NetworkPolicy blocks Seldon components inside their namespace",
    severity=Severity.CRITICAL,
    requires=("kube:Pod|kube:StatefulSet|kube:Deployment",),
    reads=("kube:DaemonSet", "kube:Namespace", "kube:NetworkPolicy"),
    playbook="network-policy",
    fix=(
        "Admit the namespace's own pods: add `- from: [{podSelector: {}}]` to the ingress rules (and "
        "`- to: [{podSelector: {}}]` to the egress rules) of the policy, or at least the Seldon ports."
    ),
)


@dataclass(frozen=True)
class Flow:
    """A connection Seldon needs between two of its components in one namespace."""

    label: str
    source: Role
    target: Role
    port_names: tuple[str, ...]  # names of the destination container port, as Seldon's Helm charts set them
    container: str | None  # the destination container holding that port (None: any)
    default_port: int
    consequence: str


FLOWS = (
    Flow(
        "agent → scheduler",
        Role.AGENT,
        Role.SCHEDULER,
        ("agent",),
        None,
        SCHEDULER_AGENT_PORT,
        "server agents cannot subscribe to the scheduler, so no model is ever loaded",
    ),
    Flow(
        "Envoy → scheduler (xDS)",
        Role.ENVOY,
        Role.SCHEDULER,
        ("xds",),
        None,
        SCHEDULER_XDS_PORT,
        "Envoy receives no listeners, routes or clusters, so inference requests are refused or get 404",
    ),
    Flow(
        "modelgateway → scheduler",
        Role.MODELGATEWAY,
        Role.SCHEDULER,
        ("scheduler",),
        None,
        SCHEDULER_API_PORT,
        "the model gateway cannot subscribe to model events, so Kafka-based inference stops",
    ),
    Flow(
        "Envoy → server agent (REST proxy)",
        Role.ENVOY,
        Role.AGENT,
        ("http",),
        "agent",
        AGENT_PROXY_HTTP_PORT,
        "Envoy cannot reach the model servers, so REST inference fails with 503 (upstream connect error)",
    ),
    Flow(
        "Envoy → server agent (gRPC proxy)",
        Role.ENVOY,
        Role.AGENT,
        ("grpc",),
        "agent",
        AGENT_PROXY_GRPC_PORT,
        "Envoy cannot reach the model servers over gRPC, so gRPC inference fails with UNAVAILABLE",
    ),
)


def _member_of(role: Role) -> Callable[[KubeObject, Mapping[str, str]], bool]:
    def wanted(obj: KubeObject, labels: Mapping[str, str]) -> bool:
        if role is Role.AGENT:
            return pod_role(obj.name, labels) is Role.AGENT or runs_seldon_agent(obj)
        return pod_role(obj.name, labels) is role

    return wanted


def run(snap: Snapshot) -> Iterator[Finding]:
    policies = [p.raw for p in snap.objects_of("NetworkPolicy")]
    by_name = {f"{p.namespace}/{p.name}": p for p in snap.objects_of("NetworkPolicy")}
    roles = (Role.AGENT, Role.SCHEDULER, Role.ENVOY, Role.MODELGATEWAY)
    namespaces = [ns for ns in snap.namespaces() if any(workload_members(snap, ns, _member_of(role)) for role in roles)]
    if not namespaces:
        raise SkipCheck("no Seldon scheduler, Envoy, gateway or server pods (or workloads) in the bundle")
    judged: list[str] = []
    problems: list[str] = []
    for namespace in namespaces:
        if not snap.covers("NetworkPolicy", namespace):
            problems.append(f"{namespace}: NetworkPolicies not collected")
            continue
        members = {role: pod_endpoints(snap, workload_members(snap, namespace, _member_of(role))) for role in roles}
        try:
            blocked, allowed = _blocked_flows(policies, members)
        except NetworkPolicyError as exc:
            problems.append(f"{namespace}: {exc}")
            continue
        labels_known = snap.get("Namespace", None, namespace) is not None
        for key in list(blocked):
            # Keep only blocks that stand whatever the bundle lacks (labels of this Namespace, pod IPs of templates).
            in_play = [by_name[n].raw for n in key[3] if n in by_name]
            kept = []
            for pair in blocked[key]:
                try:
                    why = undecided_rules(
                        in_play,
                        key[2],
                        pair[0].endpoint,
                        pair[1].endpoint,
                        key[1],
                        Protocol.TCP,
                        peer_namespace_labels_known=labels_known,
                    )
                except NetworkPolicyError as exc:
                    why = [str(exc)]
                if why:
                    problems.append(f"{namespace}: {key[0].label} may be admitted by {why[0]}")
                else:
                    kept.append(pair)
            if kept:
                blocked[key] = kept
            else:
                del blocked[key]
        if not (blocked or allowed):
            problems.append(f"{namespace}: no pair of Seldon components to evaluate")
            continue
        judged.append(namespace)
        for (flow, port, side, names), pairs in blocked.items():
            yield _finding(namespace, flow, port, side, names, pairs, by_name)
    if not judged:
        reason = "; ".join(problems) or "nothing to evaluate"
        raise SkipCheck(f"cannot judge NetworkPolicies: {reason}")


BlockKey = tuple[Flow, int, Direction, tuple[str, ...]]


def _blocked_flows(
    policies: list[Mapping[str, Any]], members: Mapping[Role, list[PodEndpoint]]
) -> tuple[dict[BlockKey, list[tuple[PodEndpoint, PodEndpoint, Verdict]]], int]:
    """The blocked connections, grouped by flow, port, side and policies; and how many connections passed."""
    blocked: dict[BlockKey, list[tuple[PodEndpoint, PodEndpoint, Verdict]]] = {}
    allowed = 0
    for flow in FLOWS:
        for target in members[flow.target]:
            port = container_port(target.source, flow.container, flow.port_names, flow.default_port)
            for source in members[flow.source]:
                if source.source is target.source:
                    continue
                verdict = evaluate(policies, source.endpoint, target.endpoint, port, Protocol.TCP)
                if verdict.allowed or verdict.blocked_by is None:
                    allowed += 1
                    continue
                names = verdict.egress_policies if verdict.blocked_by is Direction.EGRESS else verdict.ingress_policies
                blocked.setdefault((flow, port, verdict.blocked_by, names), []).append((source, target, verdict))
    return blocked, allowed


def _finding(
    namespace: str,
    flow: Flow,
    port: int,
    side: Direction,
    names: tuple[str, ...],
    pairs: list[tuple[PodEndpoint, PodEndpoint, Verdict]],
    by_name: Mapping[str, KubeObject],
) -> Finding:
    key = "ingress" if side is Direction.INGRESS else "egress"
    short = [name.split("/", 1)[-1] for name in names]
    # The policy to edit: one that already has rules for this direction (a pure default-deny has none).
    target_policy = next(
        (n.split("/", 1)[-1] for n in names if n in by_name and as_list(by_name[n].spec.get(key))), short[0]
    )
    sources = sorted({s.label for s, _, _ in pairs})
    targets = sorted({t.label for _, t, _ in pairs})
    where = "ingress of the destination" if side is Direction.INGRESS else "egress of the source"
    broken = _broken_flow_ports(flow, pairs)
    message = (
        f"NetworkPolicy {', '.join(short)} in {namespace} isolate(s) the {where} and none admits {flow.label} on "
        f"{port}/TCP ({', '.join(sources)} → {', '.join(targets)}): {flow.consequence}."
    )
    if broken:
        label, _, bad = broken[0]
        default = f" ({port} is Seldon's default for it)" if port == flow.default_port else ""
        message += f" On {label}, {bad.problem}: rules that name that port admit nothing{default}."
    evidence: list[Evidence] = []
    for name in names:
        policy = by_name.get(name)
        if policy is not None:
            evidence.append(Evidence(policy.field_where(f".spec.{key}"), rules_text(policy.spec, key)))
    evidence.append(Evidence(f"NetworkPolicy evaluation ({flow.label})", pairs[0][2].explanation))
    for label, endpoint in ((sources[0], pairs[0][0]), (targets[0], pairs[0][1])):
        evidence.append(Evidence(endpoint.source.field_where(".metadata.labels"), f"{label}: {_labels(endpoint)}"))
    evidence += [Evidence(where_port, bad.problem) for _, where_port, bad in broken[:3]]
    if side is Direction.INGRESS:
        fix = (
            f"Add an ingress rule `- from: [{{podSelector: {{}}}}]` (optionally `ports: [{{port: {port}, protocol: "
            f"TCP}}]`) to NetworkPolicy {target_policy} in {namespace}, so {flow.label} is admitted."
        )
    else:
        fix = (
            f"Add an egress rule `- to: [{{podSelector: {{}}}}]` (optionally `ports: [{{port: {port}, protocol: "
            f"TCP}}]`) to NetworkPolicy {target_policy} in {namespace}, so {flow.label} may leave the source pods."
        )
    return CHECK.finding(
        namespace=namespace, object=f"NetworkPolicy/{target_policy}", message=message, evidence=evidence, fix=fix
    )


def _broken_flow_ports(
    flow: Flow, pairs: list[tuple[PodEndpoint, PodEndpoint, Verdict]]
) -> list[tuple[str, str, InvalidPort]]:
    """(pod label, evidence location, port) of each destination container port named like the flow's port whose
    number (or name) Kubernetes would not accept."""
    found: list[tuple[str, str, InvalidPort]] = []
    seen: set[int] = set()
    for _, target, _ in pairs:
        if id(target.source) in seen:
            continue
        seen.add(id(target.source))
        broken = invalid_ports(target.source)
        found += [(target.label, where, bad) for where, bad in broken if bad.name in flow.port_names]
    return found


def _labels(endpoint: PodEndpoint) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(endpoint.endpoint.labels.items())) or "(no labels)"
