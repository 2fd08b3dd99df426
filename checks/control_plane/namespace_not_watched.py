"""MT107 namespace-not-watched: Seldon resources sit in a namespace that no controller manager watches, so nobody
hands them to a scheduler and they never get a status."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.container_args import VAR_REF, expand_vars, split_flag
from mlops_trace.analysis.seldon import controller_workloads, replicas_text, workload_replicas
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import SELDON_KINDS, Snapshot

CHECK = make_check(
    id="MT107",
    slug="namespace-not-watched",
    title="No controller watches a namespace that holds Seldon resources",
    severity=Severity.CRITICAL,
    requires=("kube:Deployment",),
    reads=("kube:Experiment", "kube:Model", "kube:Pipeline", "kube:SeldonRuntime", "kube:Server", "logs:controller"),
    playbook="scheduler-connectivity",
    fix="Run the controller clusterwide (controller.clusterwide=true, --clusterwide=true) and list the namespace in "
    "--watch-namespaces (or leave it empty for all), or install a controller in that namespace.",
)

_MANAGER_CONTAINERS = ("manager", "controller", "seldon-v2-controller-manager")
_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")
_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Scope:
    """What one controller watches. `unknown` holds the reason when its flags cannot be resolved from the input."""

    controller: KubeObject
    all_namespaces: bool
    namespaces: frozenset[str]
    evidence: tuple[Evidence, ...]
    unknown: str = ""

    def watches(self, namespace: str) -> bool | None:
        if self.unknown:
            return None
        return self.all_namespaces or namespace in self.namespaces

    def describe(self) -> str:
        if self.unknown:
            return f"{self.controller.ref} in {self.controller.namespace}: {self.unknown}"
        if self.all_namespaces:
            return f"{self.controller.ref} in {self.controller.namespace} watches all namespaces"
        listed = ", ".join(sorted(self.namespaces)) or "nothing"
        return f"{self.controller.ref} in {self.controller.namespace} watches {listed}"


def run(snap: Snapshot) -> Iterator[Finding]:
    controllers = controller_workloads(snap)
    if not controllers:
        raise SkipCheck("no Seldon controller manager Deployment among the objects, so its watch scope is unknown")
    scopes = [_scope(dep) for dep in controllers]
    log_evidence = _log_evidence(snap)
    undecided: list[str] = []
    for namespace in snap.seldon_namespaces():
        verdicts = [scope.watches(namespace) for scope in scopes]
        if any(v is True for v in verdicts):
            continue
        if any(v is None for v in verdicts):
            undecided.append(namespace)
            continue
        held = _held_resources(snap, namespace)
        message = (
            f"Namespace {namespace} holds {held}, but no controller watches it ("
            + "; ".join(scope.describe() for scope in scopes)
            + "): these resources are never sent to a scheduler and get no status."
        )
        evidence = [e for scope in scopes for e in scope.evidence] + log_evidence
        yield CHECK.finding(namespace=namespace, object=f"Namespace/{namespace}", message=message, evidence=evidence)
    if undecided:
        reasons = "; ".join(scope.unknown for scope in scopes if scope.unknown)
        raise SkipCheck(f"cannot tell whether {', '.join(undecided)} is watched: {reasons}")


def _held_resources(snap: Snapshot, namespace: str) -> str:
    parts = []
    for kind in SELDON_KINDS:
        names = sorted(o.name for o in snap.objects_of(kind, namespace))
        if names:
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            parts.append(f"{len(names)} {kind}(s) ({shown})")
    return ", ".join(parts)


# --- reading a controller's flags ------------------------------------------------------------------------------------


def _scope(dep: KubeObject) -> Scope:
    own = dep.namespace or ""
    replicas = workload_replicas(dep)
    if replicas == 0:
        return Scope(dep, False, frozenset(), (Evidence(dep.field_where(".spec.replicas"), "replicas=0"),))
    if replicas is None:
        # Whether the controller runs at all is unknown, so is what it watches.
        said = replicas_text(dep)
        proof = (Evidence(dep.field_where(".spec.replicas"), said),)
        return Scope(dep, False, frozenset(), proof, unknown=f"its {said} does not tell whether it runs")
    found = _manager_container(dep)
    if found is None:
        return Scope(dep, False, frozenset({own}), (), unknown="no containers in its pod template")
    index, container = found
    env, opaque = _env(container, own)
    tokens = [str(t) for t in as_list(container.get("command")) + as_list(container.get("args"))]
    flags: dict[str, tuple[str | None, int]] = {}
    for pos, token in enumerate(tokens):
        name, value = split_flag(token)
        if name is None:
            continue
        if value is None and name != "clusterwide" and pos + 1 < len(tokens) and not tokens[pos + 1].startswith("-"):
            value = tokens[pos + 1]
        flags[name] = (value, pos)
    base = f".spec.template.spec.containers[{index}]"
    n_command = len(as_list(container.get("command")))

    def where(pos: int) -> str:
        field = f"command[{pos}]" if pos < n_command else f"args[{pos - n_command}]"
        return dep.field_where(f"{base}.{field}")

    evidence: list[Evidence] = []
    clusterwide = False
    if "clusterwide" in flags:
        raw, pos = flags["clusterwide"]
        value = expand_vars(raw, env) if raw is not None else "true"
        evidence.append(Evidence(where(pos), f"{tokens[pos]} = {value}"))
        unresolved = _unresolved(value, opaque)
        if unresolved:
            return Scope(dep, False, frozenset(), tuple(evidence), unknown=unresolved)
        if value.strip().lower() in _TRUE:
            clusterwide = True
        elif value.strip().lower() not in _FALSE:
            return Scope(dep, False, frozenset(), tuple(evidence), unknown=f"--clusterwide={value} is not a boolean")
    else:
        evidence.append(Evidence(dep.field_where(f"{base}.args"), "no --clusterwide flag (default false)"))
    namespace_flag = own
    if "namespace" in flags:
        raw, pos = flags["namespace"]
        value = expand_vars(raw or "", env)
        unresolved = _unresolved(value, opaque)
        if unresolved:
            return Scope(dep, False, frozenset(), tuple(evidence), unknown=unresolved)
        namespace_flag = value.strip() or own
        if not clusterwide:
            evidence.append(Evidence(where(pos), f"{tokens[pos]} = {namespace_flag}"))
    if not clusterwide:
        return Scope(dep, False, frozenset({namespace_flag}), tuple(evidence))
    if "watch-namespaces" not in flags:
        return Scope(dep, True, frozenset(), tuple(evidence))
    raw, pos = flags["watch-namespaces"]
    value = expand_vars(raw or "", env)
    evidence.append(Evidence(where(pos), f"{tokens[pos]} = {value or '(empty: all namespaces)'}"))
    unresolved = _unresolved(value, opaque)
    if unresolved:
        return Scope(dep, False, frozenset(), tuple(evidence), unknown=unresolved)
    listed = {n.strip() for n in value.split(",") if n.strip()}
    if not listed:
        return Scope(dep, True, frozenset(), tuple(evidence))
    return Scope(dep, False, frozenset(listed | {namespace_flag}), tuple(evidence))


def _manager_container(dep: KubeObject) -> tuple[int, Mapping[str, Any]] | None:
    spec = as_mapping(as_mapping(dep.spec.get("template")).get("spec"))
    containers = [(i, as_mapping(c)) for i, c in enumerate(as_list(spec.get("containers")))]
    if not containers:
        return None
    for index, container in containers:
        if container.get("name") in _MANAGER_CONTAINERS:
            return index, container
    for index, container in containers:
        args = " ".join(str(a) for a in as_list(container.get("args")) + as_list(container.get("command")))
        if "--clusterwide" in args or "--watch-namespaces" in args or "--namespace" in args:
            return index, container
    return containers[0]


def _env(container: Mapping[str, Any], own: str) -> tuple[dict[str, str], set[str]]:
    """Literal env values (POD_NAMESPACE-style fieldRefs resolved), and names whose value the object does not hold."""
    env: dict[str, str] = {}
    opaque: set[str] = set()
    for item in as_list(container.get("env")):
        entry = as_mapping(item)
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if entry.get("value") is not None:
            env[name] = str(entry["value"])
            continue
        field_path = as_mapping(as_mapping(entry.get("valueFrom")).get("fieldRef")).get("fieldPath")
        if field_path == "metadata.namespace":
            env[name] = own
        elif "valueFrom" in entry:
            opaque.add(name)
        else:
            env[name] = ""
    return env, opaque


def _unresolved(value: str, opaque: set[str]) -> str:
    """Why a flag value still holds a `$(VAR)` after expansion, or "" when it is fully resolved."""
    for match in VAR_REF.finditer(value):
        name = match.group(1)
        if name in opaque:
            return f"$({name}) comes from a ConfigMap, Secret or field the input does not hold"
        return f"$({name}) is not defined in the controller container's env"
    return ""


def _log_evidence(snap: Snapshot) -> list[Evidence]:
    """The controller's own startup lines about its watch scope, when its log is in the input."""
    evidence: list[Evidence] = []
    for log in snap.logs_of(Role.CONTROLLER):
        last = None
        for record in iter_records(log.lines()):
            text = record.message or record.raw
            lowered = text.lower()
            if "watching namespace" in lowered or "clusterwide mode enabled" in lowered:
                extra = record.fields.get("namespace") or record.fields.get("namespaces") or ""
                last = (record.lineno, f"{text} {extra}".strip())
        if last is not None:
            lineno, text = last
            one_line = " ".join(text.split())[:_MESSAGE_LIMIT]
            evidence.append(Evidence(log.where(lineno), one_line))
    return evidence
