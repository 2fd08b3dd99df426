"""Decide whether Kubernetes NetworkPolicies (networking.k8s.io/v1) let one pod reach another on a port.

Pure functions over plain dicts as `kubectl get -o yaml` prints them. The rules follow the API reference:

- A pod is isolated for a direction when some policy of its namespace selects it and has that direction in its
  (defaulted) policy types. An isolated pod accepts only what at least one rule of those policies admits; rules and
  policies are OR-ed, and inside one rule the peer list and the port list must both match.
- A connection needs the source's egress and the destination's ingress; traffic of a pod to itself always passes.
- A peer is an ipBlock, or selectors: a `podSelector` alone selects pods of the policy's own namespace only, a
  `namespaceSelector` alone every pod of the matching namespaces, both in one peer the pods matching both (AND);
  separate peers are OR-ed. An empty selector `{}` matches everything of its kind; an absent or empty `from`/`to`
  list matches every peer, an absent or empty `ports` list every port.
- Ports are always the destination pod's (named ports resolve against its container ports), after Service DNAT:
  pass the container port, not the Service port.

Only NetworkPolicy objects of the Kubernetes API count; Calico, Cilium or AdminNetworkPolicy objects handed in by
mistake are skipped, since their semantics differ. Objects the API server would reject raise `NetworkPolicyError`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.analysis.selectors import SelectorError, label_value, selector_matches, selector_matches_partly
from mlops_trace.findings import evidence_line

__all__ = [
    "METADATA_NAME_LABEL",
    "Direction",
    "Endpoint",
    "InvalidPort",
    "NetworkPolicyError",
    "PolicyType",
    "Protocol",
    "Verdict",
    "egress_allows",
    "endpoint_from_pod",
    "endpoint_from_template",
    "evaluate",
    "ingress_allows",
    "invalid_container_ports",
    "policy_types",
    "selects",
    "undecided_rules",
]

METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server puts on every Namespace, holding its name."""

_POLICY_API_GROUPS = ("networking.k8s.io/", "extensions/")
# A policy object without metadata.namespace was applied to the namespace of the kubectl context; "default" is the
# namespace kubectl uses when the context names none.
_FALLBACK_NAMESPACE = "default"


class Protocol(StrEnum):
    """Transport protocols a NetworkPolicy port can name."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class PolicyType(StrEnum):
    """Values of a NetworkPolicy's `spec.policyTypes`."""

    INGRESS = "Ingress"
    EGRESS = "Egress"


class Direction(StrEnum):
    """The side of a connection at which policies stopped it."""

    INGRESS = "ingress"
    EGRESS = "egress"


class NetworkPolicyError(ValueError):
    """A NetworkPolicy the API server would have rejected (bad CIDR, unknown policy type, malformed selector)."""


@dataclass(frozen=True)
class Endpoint:
    """One pod at either end of a connection, reduced to what NetworkPolicy matching looks at."""

    namespace: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str]
    ip: str | None = None
    container_ports: Mapping[str, int] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        # Copies keep a frozen Endpoint from changing when the caller mutates the dicts it passed in.
        namespace_labels = {str(key): label_value(value) for key, value in self.namespace_labels.items()}
        namespace_labels.setdefault(METADATA_NAME_LABEL, self.namespace)
        object.__setattr__(self, "labels", {str(key): label_value(value) for key, value in self.labels.items()})
        object.__setattr__(self, "namespace_labels", namespace_labels)
        object.__setattr__(
            self, "container_ports", {str(key): int(value) for key, value in self.container_ports.items()}
        )
        ip = self.ip or None
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise ValueError(
                    f"endpoint {self.namespace}/{self.name or '?'}: {self.ip!r} is not an IP address"
                ) from None
        object.__setattr__(self, "ip", ip)

    @property
    def display(self) -> str:
        """`namespace/name`; without a name (built from a template) the IP or else the pod's labels."""
        if self.name:
            return f"{self.namespace}/{self.name}"
        if self.ip:
            return f"{self.namespace}/{self.ip}"
        shown = ",".join(f"{key}={value}" for key, value in sorted(self.labels.items()))
        return f"{self.namespace}/pod[{shown}]"


@dataclass(frozen=True)
class Verdict:
    """Whether a connection passes, which policies were in play on each side, and why, in one line."""

    allowed: bool
    ingress_policies: tuple[str, ...]
    egress_policies: tuple[str, ...]
    blocked_by: Direction | None
    explanation: str


@dataclass(frozen=True)
class _SideResult:
    allowed: bool
    isolating: tuple[str, ...]
    admitting: tuple[str, ...]


def policy_types(policy: Mapping[str, Any]) -> frozenset[str]:
    """Return the policy's types after API defaulting.

    Without `policyTypes` (or with an empty list) a policy is always an Ingress policy, and also an Egress policy when
    `spec.egress` holds at least one rule: the API server adds Egress only for a non-empty list, so `egress: []`
    alone restricts nothing.
    """
    spec = _spec(policy)
    declared = _as_list(spec.get("policyTypes"), "spec.policyTypes", policy)
    if declared:
        by_lower = {member.value.lower(): member for member in PolicyType}
        types: set[str] = set()
        for value in declared:
            member = by_lower.get(str(value).lower())
            if member is None:
                raise NetworkPolicyError(
                    f"{_policy_name(policy)}: unknown policy type {value!r} (expected Ingress or Egress)"
                )
            types.add(member)
        return frozenset(types)
    if _as_list(spec.get("egress"), "spec.egress", policy):
        return frozenset({PolicyType.INGRESS, PolicyType.EGRESS})
    return frozenset({PolicyType.INGRESS})


def selects(policy: Mapping[str, Any], pod: Endpoint) -> bool:
    """Tell whether the policy applies to the pod: same namespace and its `spec.podSelector` matches the labels.

    `spec.podSelector` is a required struct in the API, so an absent one means `{}` (every pod of the namespace).
    """
    if not _is_network_policy(policy) or _policy_namespace(policy) != pod.namespace:
        return False
    selector = _spec(policy).get("podSelector")
    return _selector_matches(policy, {} if selector is None else selector, pod.labels)


def ingress_allows(
    policies: Sequence[Mapping[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: Protocol
) -> tuple[bool, tuple[str, ...]]:
    """Tell whether the destination's ingress admits `src` on `port`/`protocol`.

    Returns the verdict and the `namespace/name` of every policy that isolates `dst` for ingress (empty: not isolated).
    """
    result = _evaluate_side(policies, PolicyType.INGRESS, src, dst, port, Protocol(protocol))
    return result.allowed, result.isolating


def egress_allows(
    policies: Sequence[Mapping[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: Protocol
) -> tuple[bool, tuple[str, ...]]:
    """Tell whether the source's egress lets `src` reach `dst` on `port`/`protocol`.

    Returns the verdict and the `namespace/name` of every policy that isolates `src` for egress (empty: not isolated).
    """
    result = _evaluate_side(policies, PolicyType.EGRESS, src, dst, port, Protocol(protocol))
    return result.allowed, result.isolating


def evaluate(
    policies: Sequence[Mapping[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: Protocol = Protocol.TCP
) -> Verdict:
    """Decide a connection from `src` to `dst`'s container `port`: both the source's egress and the destination's
    ingress must allow it. When both refuse, `blocked_by` names egress, the side the packet meets first."""
    protocol = Protocol(protocol)
    egress = _evaluate_side(policies, PolicyType.EGRESS, src, dst, port, protocol)
    ingress = _evaluate_side(policies, PolicyType.INGRESS, src, dst, port, protocol)
    blocked_by: Direction | None = None
    if not egress.allowed:
        blocked_by = Direction.EGRESS
    elif not ingress.allowed:
        blocked_by = Direction.INGRESS
    return Verdict(
        allowed=blocked_by is None,
        ingress_policies=ingress.isolating,
        egress_policies=egress.isolating,
        blocked_by=blocked_by,
        explanation=_explain(src, dst, port, protocol, egress, ingress),
    )


def endpoint_from_pod(pod: Mapping[str, Any], namespace_labels: Mapping[str, str] | None = None) -> Endpoint:
    """Build an Endpoint from a v1 Pod: its labels, `status.podIP` and the named ports of its containers."""
    metadata = _mapping(pod.get("metadata"))
    return Endpoint(
        namespace=str(metadata.get("namespace") or _FALLBACK_NAMESPACE),
        labels=_mapping(metadata.get("labels")),
        namespace_labels=namespace_labels or {},
        ip=_optional_str(_mapping(pod.get("status")).get("podIP")),
        container_ports=_named_ports(_mapping(pod.get("spec"))),
        name=str(metadata.get("name") or ""),
    )


def endpoint_from_template(
    namespace: str,
    template: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None = None,
    *,
    name: str = "",
) -> Endpoint:
    """Build an Endpoint from a workload's `spec.template` when its Pods are not at hand; the IP stays unknown.

    `name` labels the endpoint in explanations (a template has none of its own), e.g. `seldon-scheduler-0`.
    """
    metadata = _mapping(template.get("metadata"))
    return Endpoint(
        namespace=namespace,
        labels=_mapping(metadata.get("labels")),
        namespace_labels=namespace_labels or {},
        ip=None,
        container_ports=_named_ports(_mapping(template.get("spec"))),
        name=name or str(metadata.get("name") or ""),
    )


def _evaluate_side(
    policies: Iterable[Mapping[str, Any]],
    policy_type: PolicyType,
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: Protocol,
) -> _SideResult:
    if policy_type is PolicyType.INGRESS:
        subject, peer, rules_key, peers_key = dst, src, "ingress", "from"
    else:
        subject, peer, rules_key, peers_key = src, dst, "egress", "to"
    isolating: list[str] = []
    admitting: list[str] = []
    for policy in policies:
        if not selects(policy, subject) or policy_type not in policy_types(policy):
            continue
        name = _policy_name(policy)
        if name not in isolating:
            isolating.append(name)
        rules = _as_list(_spec(policy).get(rules_key), f"spec.{rules_key}", policy)
        admits = any(_rule_matches(policy, rule, peers_key, peer, dst, port, protocol) for rule in rules)
        if admits and name not in admitting:
            admitting.append(name)
    allowed = not isolating or bool(admitting) or _same_pod(src, dst)
    return _SideResult(allowed=allowed, isolating=tuple(isolating), admitting=tuple(admitting))


def _rule_matches(
    policy: Mapping[str, Any],
    rule: Any,
    peers_key: str,
    peer: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: Protocol,
) -> bool:
    # A null list item decodes to an empty rule in the API server, and an empty rule admits everything.
    rule = _item(rule, f"{peers_key} rule", policy)
    peers = _as_list(rule.get(peers_key), peers_key, policy)
    if peers and not any(_peer_matches(policy, peer_spec, peer) for peer_spec in peers):
        return False
    ports = _as_list(rule.get("ports"), "ports", policy)
    return not ports or any(_port_matches(policy, port_spec, dst, port, protocol) for port_spec in ports)


def _peer_matches(policy: Mapping[str, Any], peer_spec: Any, peer: Endpoint) -> bool:
    return _peer_decision(policy, peer_spec, peer, None, None)[0] is True


def _peer_decision(
    policy: Mapping[str, Any],
    peer_spec: Any,
    peer: Endpoint,
    pod_keys: frozenset[str] | None,
    namespace_keys: frozenset[str] | None,
) -> tuple[bool | None, str]:
    """Whether one peer of a rule matches `peer`: True, False, or None when it hinges on something unknown, with why.

    `pod_keys` / `namespace_keys` are the pod / Namespace label keys known for sure (None: all of them).
    """
    peer_spec = _item(peer_spec, "peer", policy)
    ip_block = peer_spec.get("ipBlock")
    if ip_block is not None:
        ip_block = _item(ip_block, "ipBlock", policy)
        matched = _ip_block_matches(policy, ip_block, peer.ip)
        if peer.ip is None and not matched:
            return None, f"ipBlock {ip_block.get('cidr')} and the IP of {peer.display} is unknown"
        return matched, ""
    pod_selector = peer_spec.get("podSelector")
    namespace_selector = peer_spec.get("namespaceSelector")
    if pod_selector is None and namespace_selector is None:
        # The API rejects a peer with no selector and no ipBlock; it admits nobody.
        return False, ""
    # Both selectors are evaluated before combining, so a malformed one raises whichever pod is asked about.
    if namespace_selector is None:
        # A podSelector alone selects pods of the policy's own namespace, whatever labels a pod elsewhere carries.
        namespace_ok: bool | None = peer.namespace == _policy_namespace(policy)
    else:
        namespace_ok = _selector_matches_partly(policy, namespace_selector, peer.namespace_labels, namespace_keys)
    pod_ok = True if pod_selector is None else _selector_matches_partly(policy, pod_selector, peer.labels, pod_keys)
    if namespace_ok is False or pod_ok is False:
        return False, ""
    if namespace_ok is None:
        return None, f"namespaceSelector on labels of Namespace {peer.namespace}, which the bundle does not hold"
    if pod_ok is None:
        return None, f"podSelector on labels of {peer.display}, whose Pod is not in the bundle"
    return True, ""


def undecided_rules(
    policies: Sequence[Mapping[str, Any]],
    direction: Direction,
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: Protocol = Protocol.TCP,
    *,
    peer_labels_known: bool = True,
    peer_namespace_labels_known: bool = True,
) -> list[str]:
    """Rules on the `direction` side that might admit the connection, had we the facts the bundle lacks.

    The peer is `src` for ingress and `dst` for egress. `peer_labels_known=False`: the peer pod's labels were assumed
    (its Pod is not in the bundle), so only an empty podSelector surely matches it. `peer_namespace_labels_known=False`:
    its Namespace object is missing, so only `kubernetes.io/metadata.name` is known. An ipBlock is undecided when the
    peer's IP is unknown. A podSelector without namespaceSelector is always decided: it selects the policy's own
    namespace only. Each entry names the policy and rule and says what is unknown; none means a blocked verdict stands.
    """
    protocol = Protocol(protocol)
    if direction is Direction.INGRESS:
        subject, peer, rules_key, peers_key = dst, src, "ingress", "from"
    else:
        subject, peer, rules_key, peers_key = src, dst, "egress", "to"
    pod_keys = None if peer_labels_known else frozenset[str]()
    namespace_keys = None if peer_namespace_labels_known else frozenset({METADATA_NAME_LABEL})
    found: list[str] = []
    for policy in policies:
        if not selects(policy, subject) or PolicyType(direction.value.capitalize()) not in policy_types(policy):
            continue
        for index, rule_value in enumerate(_as_list(_spec(policy).get(rules_key), f"spec.{rules_key}", policy)):
            rule = _item(rule_value, f"{peers_key} rule", policy)
            ports = _as_list(rule.get("ports"), "ports", policy)
            if ports and not any(_port_matches(policy, port_spec, dst, port, protocol) for port_spec in ports):
                continue
            peers = _as_list(rule.get(peers_key), peers_key, policy)
            decisions = [_peer_decision(policy, peer_spec, peer, pod_keys, namespace_keys) for peer_spec in peers]
            if not peers or any(decided is True for decided, _ in decisions):
                continue
            reasons = [why for decided, why in decisions if decided is None]
            if reasons:
                found.append(f"{_policy_name(policy)} {rules_key}[{index}]: {reasons[0]}")
    return found


def _ip_block_matches(policy: Mapping[str, Any], ip_block: Mapping[str, Any], ip: str | None) -> bool:
    network = _network(policy, ip_block.get("cidr"))
    excluded = [_network(policy, cidr) for cidr in _as_list(ip_block.get("except"), "ipBlock.except", policy)]
    if ip is None:
        # Without the peer's IP only a catch-all block is certain to contain it; an except list could cut it out.
        return network.prefixlen == 0 and not excluded
    address = ipaddress.ip_address(ip)
    if address.version != network.version or address not in network:
        return False
    return not any(address.version == cut.version and address in cut for cut in excluded)


def _port_matches(policy: Mapping[str, Any], port_spec: Any, dst: Endpoint, port: int, protocol: Protocol) -> bool:
    port_spec = _item(port_spec, "port", policy)
    if str(port_spec.get("protocol") or Protocol.TCP).upper() != protocol:
        return False
    wanted = port_spec.get("port")
    if wanted is None:
        return True
    first = _port_number(policy, wanted, dst)
    if first is None:
        return False
    end_port = port_spec.get("endPort")
    if end_port is None:
        return port == first
    last = fields.port_number(end_port)
    if last is None:
        raise NetworkPolicyError(f"{_policy_name(policy)}: endPort {fields.shown(end_port)} is not a port number")
    return first <= port <= last


def _port_number(policy: Mapping[str, Any], wanted: Any, dst: Endpoint) -> int | None:
    parsed = fields.port(wanted)
    if parsed is None:
        raise NetworkPolicyError(
            f"{_policy_name(policy)}: port {fields.shown(wanted)} is neither a port number (1-65535) nor a port name"
        )
    if isinstance(parsed, int):
        return parsed
    # A named port exists only on pods that declare it; elsewhere the rule matches nothing.
    return dst.container_ports.get(parsed)


def _network(policy: Mapping[str, Any], cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not cidr:
        raise NetworkPolicyError(f"{_policy_name(policy)}: ipBlock without a cidr")
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        raise NetworkPolicyError(f"{_policy_name(policy)}: {cidr!r} is not a CIDR") from None


def _selector_matches(policy: Mapping[str, Any], selector: Any, labels: Mapping[str, str]) -> bool:
    try:
        return selector_matches(selector, labels)
    except SelectorError as error:
        raise NetworkPolicyError(f"{_policy_name(policy)}: {error}") from None


def _selector_matches_partly(
    policy: Mapping[str, Any], selector: Any, labels: Mapping[str, str], known_keys: frozenset[str] | None
) -> bool | None:
    try:
        return selector_matches_partly(selector, labels, known_keys)
    except SelectorError as error:
        raise NetworkPolicyError(f"{_policy_name(policy)}: {error}") from None


def _same_pod(src: Endpoint, dst: Endpoint) -> bool:
    if src is dst:
        return True
    if src.namespace == dst.namespace and src.name and src.name == dst.name:
        return True
    return src.ip is not None and src.ip == dst.ip


def _named_ports(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    containers = list(_as_sequence(pod_spec.get("containers")))
    # Native sidecars (init containers that keep running) serve ports like ordinary containers.
    containers += [
        init for init in _as_sequence(pod_spec.get("initContainers")) if _mapping(init).get("restartPolicy") == "Always"
    ]
    ports: dict[str, int] = {}
    for container in containers:
        for port in _as_sequence(_mapping(container).get("ports")):
            port_spec = _mapping(port)
            name = fields.port_name(port_spec.get("name"))
            number = fields.port_number(port_spec.get("containerPort"))
            # A name whose containerPort is no port number (`"9002x"`, `-1`) names no port: rules using it admit
            # nothing, as `invalid_container_ports` tells the checks.
            if name is not None and number is not None:
                ports.setdefault(name, number)
    return ports


@dataclass(frozen=True)
class InvalidPort:
    """A container port Kubernetes would not accept: NetworkPolicy rules that name it admit nothing."""

    path: str  # below the pod spec: `.containers[0].ports[1]`
    name: str | None  # the port's name as written, when it is one
    problem: str  # `port xds: containerPort '9002x' is not a port number (1-65535)`


def invalid_container_ports(pod_spec: Mapping[str, Any]) -> list[InvalidPort]:
    """Container ports of a pod spec whose containerPort is no port number, or whose name is no valid port name."""
    found: list[InvalidPort] = []
    for key in ("containers", "initContainers"):
        for c_index, container in enumerate(_as_sequence(pod_spec.get(key))):
            for p_index, port in enumerate(_as_sequence(_mapping(container).get("ports"))):
                port_spec = _mapping(port)
                raw_name, raw_number = port_spec.get("name"), port_spec.get("containerPort")
                name = raw_name if isinstance(raw_name, str) and raw_name else None
                problems = []
                if fields.port_number(raw_number) is None:
                    problems.append(f"containerPort {fields.shown(raw_number)} is not a port number (1-65535)")
                if raw_name not in (None, "") and fields.port_name(raw_name) is None:
                    problems.append(f"name {fields.shown(raw_name)} is not a valid port name")
                if problems:
                    label = f"port {name}" if name is not None else "a port"
                    path = f".{key}[{c_index}].ports[{p_index}]"
                    found.append(InvalidPort(path, name, f"{label}: {'; '.join(problems)}"))
    return found


def _explain(
    src: Endpoint, dst: Endpoint, port: int, protocol: Protocol, egress: _SideResult, ingress: _SideResult
) -> str:
    target = f"{dst.display} on {port}/{protocol}"
    if _same_pod(src, dst):
        return f"allowed: {src.display} talks to itself on {port}/{protocol}, which NetworkPolicy never blocks"
    parts = [
        _explain_side(egress, f"egress of {src.display}", f"to {target}"),
        _explain_side(ingress, f"ingress of {dst.display}", f"from {src.display} on {port}/{protocol}"),
    ]
    if egress.allowed and ingress.allowed:
        verdict = "allowed"
    elif not egress.allowed and not ingress.allowed:
        verdict = "blocked at egress and ingress"
    else:
        verdict = "blocked at egress" if not egress.allowed else "blocked at ingress"
    return f"{verdict}: {'; '.join(parts)}"


def _explain_side(result: _SideResult, side: str, traffic: str) -> str:
    if not result.isolating:
        return f"{side} is not restricted (no policy selects it)"
    if result.admitting:
        return f"{side} admits traffic {traffic} via {', '.join(result.admitting)}"
    return f"{side} is restricted by {', '.join(result.isolating)} and no rule admits traffic {traffic}"


def _is_network_policy(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind is not None and kind != "NetworkPolicy":
        return False
    return api_version is None or str(api_version).startswith(_POLICY_API_GROUPS)


def _spec(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(policy.get("spec"))


def _policy_namespace(policy: Mapping[str, Any]) -> str:
    return str(_mapping(policy.get("metadata")).get("namespace") or _FALLBACK_NAMESPACE)


def _policy_name(policy: Mapping[str, Any]) -> str:
    name = _mapping(policy.get("metadata")).get("name") or "<unnamed>"
    return f"{_policy_namespace(policy)}/{name}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _item(value: Any, what: str, policy: Mapping[str, Any]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise NetworkPolicyError(f"{_policy_name(policy)}: a {what} must be a mapping, got {value!r}")


def _as_sequence(value: Any) -> Sequence[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value
    return ()


def _as_list(value: Any, field_name: str, policy: Mapping[str, Any]) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value
    raise NetworkPolicyError(f"{_policy_name(policy)}: {field_name} must be a list, got {type(value).__name__}")


def _optional_str(value: Any) -> str | None:
    return str(value) if value else None


def rules_text(policy_spec: Mapping[str, Any], direction: str) -> str:
    """A policy's types and its `ingress`/`egress` rules as one evidence line."""
    types = policy_spec.get("policyTypes")
    rules = policy_spec.get(direction)
    text = f"policyTypes={_json(types) if types else 'default'} {direction}={_json(rules)}"
    return evidence_line(text, 220)


def _json(value: Any) -> str:
    """JSON of a field as written; a YAML date or an integer too long to print is quoted as text, and keys of mixed
    types (`1:` beside `from:`) stay in their order."""
    try:
        return json.dumps(value, sort_keys=True, default=fields.shown)
    except (TypeError, ValueError):
        try:
            return json.dumps(value, default=fields.shown)
        except (TypeError, ValueError):
            return fields.shown(value)
