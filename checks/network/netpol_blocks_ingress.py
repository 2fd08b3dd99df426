"""MT202 netpol-blocks-ingress: NetworkPolicies stop the ingress controller from reaching Seldon's Envoy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mlops_trace.analysis import fields
from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    SeldonBackend,
    controller_pods,
    controller_workloads,
    controllers_for,
    seldon_backends,
    target_port,
)
from mlops_trace.analysis.netpol import (
    Direction,
    Endpoint,
    InvalidPort,
    NetworkPolicyError,
    Protocol,
    Verdict,
    evaluate,
    rules_text,
    undecided_rules,
)
from mlops_trace.analysis.pod_endpoints import PodEndpoint, invalid_ports, pod_endpoints, workload_members
from mlops_trace.analysis.seldon import ENVOY_HTTP_PORT
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT202",
    slug="netpol-blocks-ingress",
    title="NetworkPolicy blocks the ingress controller from Seldon's Envoy",
    severity=Severity.CRITICAL,
    requires=("kube:Ingress",),
    reads=(
        "kube:DaemonSet",
        "kube:Deployment",
        "kube:IngressClass",
        "kube:Namespace",
        "kube:NetworkPolicy",
        "kube:Pod",
        "kube:Service",
        "kube:StatefulSet",
    ),
    playbook="network-policy",
    fix=(
        "Admit the ingress controller: add `- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "
        "<controller namespace>}}}]` with Envoy's port (9000/TCP) to the ingress rules of the policy."
    ),
)

SYNTHETIC_NAMESPACE = "ingress-nginx"
SYNTHETIC_LABELS = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
}


@dataclass(frozen=True)
class Source:
    """Where proxied traffic comes from: a controller Pod/workload, or an assumed one."""

    endpoint: Endpoint
    member: PodEndpoint | None  # None: synthetic
    note: str = ""


@dataclass
class Blocked:
    namespace: str
    side: Direction
    policies: tuple[str, ...]
    port: int
    source: Source
    envoys: list[str] = field(default_factory=list)
    ingresses: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    service_port: int | None = None  # the Service port the Ingress dials, a common wrong value in policies
    broken_ports: list[tuple[str, str, InvalidPort]] = field(default_factory=list)  # (Envoy, where, port)


def _is_envoy(obj: KubeObject, labels: Mapping[str, str]) -> bool:
    return pod_role(obj.name, labels) is Role.ENVOY


def run(snap: Snapshot) -> Iterator[Finding]:
    routed = seldon_backends(snap)
    if not routed:
        raise SkipCheck(
            "no ingress-nginx Ingress in the bundle leads to Seldon's Envoy (seldon-mesh or an Envoy Service)"
        )
    policy_objects = snap.objects_of("NetworkPolicy")
    policies = [p.raw for p in policy_objects]
    by_name = {f"{p.namespace}/{p.name}": p for p in policy_objects}
    controllers = controller_pods(snap) or controller_workloads(snap)
    blocked: dict[tuple[str, str, Direction, tuple[str, ...], int], Blocked] = {}
    judged = 0
    reasons: list[str] = []
    for seldon in routed:
        namespace = seldon.namespace
        if not snap.covers("NetworkPolicy", namespace):
            reasons.append(f"NetworkPolicies of {namespace} not collected")
            continue
        envoys = pod_endpoints(snap, workload_members(snap, namespace, _is_envoy))
        if not envoys:
            reasons.append(f"no Envoy Pod or workload of {namespace} in the bundle")
            continue
        sources = _sources(snap, seldon, controllers)
        try:
            for source in sources:
                for envoy in envoys:
                    port = _envoy_port(seldon, envoy)
                    verdict = evaluate(policies, source.endpoint, envoy.endpoint, port, Protocol.TCP)
                    if verdict.allowed or verdict.blocked_by is None:
                        judged += 1
                        continue
                    names = (
                        verdict.ingress_policies if verdict.blocked_by is Direction.INGRESS else verdict.egress_policies
                    )
                    why = _undecided(snap, policies, verdict.blocked_by, source, envoy.endpoint, port)
                    if why:
                        reasons.append(f"the controller may be admitted by {'; '.join(why[:3])}")
                        continue
                    judged += 1
                    key = (namespace, source.endpoint.display, verdict.blocked_by, names, port)
                    entry = blocked.setdefault(
                        key,
                        Blocked(
                            namespace,
                            verdict.blocked_by,
                            names,
                            port,
                            source,
                            verdict=verdict,
                            service_port=_service_port(seldon),
                        ),
                    )
                    if envoy.label not in entry.envoys:
                        entry.envoys.append(envoy.label)
                        entry.broken_ports += _broken_target_ports(seldon, envoy)
                    ingress_ref = f"{seldon.backend.namespace}/{seldon.backend.ingress.name}"
                    if ingress_ref not in entry.ingresses:
                        entry.ingresses.append(ingress_ref)
        except NetworkPolicyError as exc:
            reasons.append(str(exc))
            continue
    for entry in blocked.values():
        yield _finding(entry, by_name)
    if judged == 0:
        raise SkipCheck(
            "cannot judge the path from the ingress controller to Envoy: " + "; ".join(sorted(set(reasons)))
        )


def _sources(snap: Snapshot, seldon: SeldonBackend, controllers: list[KubeObject]) -> list[Source]:
    if controllers:
        chosen = controllers_for(snap, seldon.backend.ingress, controllers)
        members = pod_endpoints(snap, chosen)
        return [Source(m.endpoint, m) for m in members]
    ingress_ns = seldon.backend.namespace
    namespace = ingress_ns if ingress_ns != seldon.namespace else SYNTHETIC_NAMESPACE
    endpoint = Endpoint(
        namespace=namespace,
        labels=SYNTHETIC_LABELS,
        namespace_labels=snap.namespace_labels(namespace),
        name="ingress-nginx-controller (assumed)",
    )
    note = (
        f"no ingress-nginx controller Pod or workload in the bundle: assumed a controller pod in namespace "
        f"{namespace} labelled app.kubernetes.io/name=ingress-nginx"
    )
    return [Source(endpoint, None, note)]


def _envoy_port(seldon: SeldonBackend, envoy: PodEndpoint) -> int:
    """Envoy's container port behind the Service port the Ingress uses (its targetPort, by number or name)."""
    port = target_port(seldon.resolution)
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        return envoy.endpoint.container_ports.get(port, ENVOY_HTTP_PORT)
    return ENVOY_HTTP_PORT


def _broken_target_ports(seldon: SeldonBackend, envoy: PodEndpoint) -> list[tuple[str, str, InvalidPort]]:
    """Envoy container ports named like the Service's targetPort that Kubernetes would not accept: the name then
    resolves to nothing, and rules naming it admit nothing."""
    name = target_port(seldon.resolution)
    if not isinstance(name, str):
        return []
    return [(envoy.label, where, bad) for where, bad in invalid_ports(envoy.source) if bad.name == name]


def _service_port(seldon: SeldonBackend) -> int | None:
    matched = seldon.resolution.final.service_port
    value = matched.get("port") if matched is not None else seldon.resolution.final.port.number
    return fields.port_number(value)


def _names_port(policy: KubeObject, key: str, number: int) -> bool:
    for rule in as_list(policy.spec.get(key)):
        for port in as_list(as_mapping(rule).get("ports")):
            if str(as_mapping(port).get("port")) == str(number):
                return True
    return False


def _undecided(
    snap: Snapshot, policies: list[Mapping[str, object]], side: Direction, source: Source, envoy: Endpoint, port: int
) -> list[str]:
    """Rules of the blocked side that might admit the controller given what the bundle lacks: the controller's IP
    (ipBlock), its pod labels when it was assumed, or labels of the peer's Namespace when that object is missing. A
    podSelector without namespaceSelector is never among them: it selects pods of the policy's own namespace."""
    peer = source.endpoint if side is Direction.INGRESS else envoy
    return undecided_rules(
        policies,
        side,
        source.endpoint,
        envoy,
        port,
        Protocol.TCP,
        peer_labels_known=side is Direction.EGRESS or source.member is not None,
        peer_namespace_labels_known=snap.get("Namespace", None, peer.namespace) is not None,
    )


def _pod_selector_only(policy: KubeObject, key: str, peers_key: str, labels: Mapping[str, str]) -> bool:
    """Whether a rule has a peer with a podSelector, no namespaceSelector, that matches `labels`."""
    for rule in as_list(policy.spec.get(key)):
        for peer in as_list(as_mapping(rule).get(peers_key)):
            peer_spec = as_mapping(peer)
            selector = peer_spec.get("podSelector")
            if "namespaceSelector" in peer_spec or not isinstance(selector, Mapping) or not selector:
                continue
            try:
                if selector_matches(selector, labels):
                    return True
            except SelectorError:
                continue
    return False


def _finding(entry: Blocked, by_name: Mapping[str, KubeObject]) -> Finding:
    key = "ingress" if entry.side is Direction.INGRESS else "egress"
    policies = [by_name[name] for name in entry.policies if name in by_name]
    short = [name.split("/", 1)[-1] for name in entry.policies]
    source = entry.source
    origin = source.member.label if source.member is not None else source.endpoint.display
    src_ns = source.endpoint.namespace
    side = "ingress of Envoy" if entry.side is Direction.INGRESS else f"egress of the controller in {src_ns}"
    policy_ns = entry.namespace if entry.side is Direction.INGRESS else src_ns
    hint = ""
    wrong_port = entry.service_port
    naming: list[str] = []
    if wrong_port is not None and wrong_port != entry.port:
        naming = [p.name for p in policies if _names_port(p, key, wrong_port)]
        if naming:
            hint = (
                f" {', '.join(naming)} admit(s) port {wrong_port}, the Service port: NetworkPolicy ports are the pod's "
                f"({entry.port}), after the Service has translated the port."
            )
    peers_key = "from" if entry.side is Direction.INGRESS else "to"
    peer_labels = source.endpoint.labels if entry.side is Direction.INGRESS else {}
    same_ns_only = [p.name for p in policies if peer_labels and _pod_selector_only(p, key, peers_key, peer_labels)]
    if same_ns_only:
        hint += (
            f" {', '.join(same_ns_only)} admit(s) the controller's labels by podSelector without a namespaceSelector: "
            f"that selects pods of {entry.namespace} only, never the controller in {src_ns}."
        )
    # The policy to edit: the one with the Service port or the podSelector-only peer, else one that already has rules
    # for this direction (a pure default-deny has none).
    target = next(iter(naming + same_ns_only), None) or next(
        (p.name for p in policies if as_list(p.spec.get(key))), short[0]
    )
    message = (
        f"NetworkPolicy {', '.join(short)} in {policy_ns} isolate(s) the {side} and none admits the ingress controller "
        f"({origin}, namespace {src_ns}) to Seldon's Envoy in {entry.namespace} ({', '.join(entry.envoys)}) on "
        f"{entry.port}/TCP: requests through Ingress {', '.join(entry.ingresses)} time out and ingress-nginx answers "
        f"504/502.{hint}"
    )
    if entry.broken_ports:
        label, _, bad = entry.broken_ports[0]
        message += f" On {label}, {bad.problem}: rules that name that port admit nothing."
    evidence: list[Evidence] = []
    for name in entry.policies:
        policy = by_name.get(name)
        if policy is not None:
            evidence.append(Evidence(policy.field_where(f".spec.{key}"), rules_text(policy.spec, key)))
    if entry.verdict is not None:
        evidence.append(Evidence("NetworkPolicy evaluation (ingress controller → Envoy)", entry.verdict.explanation))
    evidence += [Evidence(where, bad.problem) for _, where, bad in entry.broken_ports[:3]]
    if source.member is not None:
        labels = ",".join(f"{k}={v}" for k, v in sorted(source.endpoint.labels.items()))
        evidence.append(Evidence(source.member.source.field_where(".metadata.labels"), f"{origin}: {labels}"))
    else:
        evidence.append(Evidence("kube/ (ingress controller)", source.note))
    if entry.side is Direction.INGRESS:
        fix = (
            f"Add to NetworkPolicy {target} in {entry.namespace} an ingress rule `- from: [{{namespaceSelector: "
            f"{{matchLabels: {{kubernetes.io/metadata.name: {src_ns}}}}}}}]` with `ports: [{{port: {entry.port}, "
            "protocol: TCP}]` for the Envoy pods."
        )
    else:
        fix = (
            f"Add to NetworkPolicy {target} in {src_ns} an egress rule `- to: [{{namespaceSelector: {{matchLabels: "
            f"{{kubernetes.io/metadata.name: {entry.namespace}}}}}}}]` with `ports: [{{port: {entry.port}, protocol: "
            "TCP}]` for the controller pods."
        )
    return CHECK.finding(
        namespace=policy_ns, object=f"NetworkPolicy/{target}", message=message, evidence=evidence, fix=fix
    )
