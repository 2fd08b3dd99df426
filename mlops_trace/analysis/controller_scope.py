"""Which namespaces a Seldon v2 controller manager watches, read from its Deployment.

The operator (`operator/main.go`, `getWatchNamespaceConfig`) takes `--namespace`, `--clusterwide` (default false) and
`--watch-namespaces` (a comma list, used only when clusterwide; empty means all). Seldon's Helm chart passes them as
`$(POD_NAMESPACE)`, `$(CLUSTERWIDE)` and `$(WATCH_NAMESPACES)`, so `$(VAR)` references are expanded from the
container's env (a `fieldRef` to `metadata.namespace` is the Deployment's namespace). The operator reads no env of its
own for these: the flags are the only source.

Rules (the ones MT107 applies, kept here so every check that asks "who watches this namespace" reads them alike):
- not clusterwide: its `--namespace` (its own namespace when the flag is missing or empty);
- clusterwide, no or empty `--watch-namespaces`: every namespace;
- clusterwide with `--watch-namespaces=a,b`: those, plus its `--namespace` (the operator adds it to the set);
- scaled to 0: nothing; replicas that are no count, or a flag whose value the input does not hold: unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.container_args import VAR_REF, expand_vars, split_flag
from mlops_trace.analysis.seldon import replicas_text, workload_replicas
from mlops_trace.findings import Evidence
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping

__all__ = ["ControllerScope", "controller_scope"]

_MANAGER_CONTAINERS = ("manager", "controller", "seldon-v2-controller-manager")
_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")


@dataclass(frozen=True)
class ControllerScope:
    """What one controller watches. `unknown` holds the reason when its flags cannot be resolved from the input."""

    controller: KubeObject
    all_namespaces: bool
    namespaces: frozenset[str]
    evidence: tuple[Evidence, ...]
    unknown: str = ""
    running: bool = True  # False when scaled to 0: it watches nothing

    def watches(self, namespace: str) -> bool | None:
        """True/False, or None when the input does not tell."""
        if self.unknown:
            return None
        return self.all_namespaces or namespace in self.namespaces

    def describe(self) -> str:
        where = f"{self.controller.ref} in {self.controller.namespace}"
        if self.unknown:
            return f"{where}: {self.unknown}"
        if self.all_namespaces:
            return f"{where} watches all namespaces"
        return f"{where} watches {', '.join(sorted(self.namespaces)) or 'nothing'}"


def controller_scope(dep: KubeObject) -> ControllerScope:
    """The watch scope of a controller manager Deployment (see the module's rules)."""
    own = dep.namespace or ""
    replicas = workload_replicas(dep)
    if replicas == 0:
        proof = (Evidence(dep.field_where(".spec.replicas"), "replicas=0"),)
        return ControllerScope(dep, False, frozenset(), proof, running=False)
    if replicas is None:
        said = replicas_text(dep)
        proof = (Evidence(dep.field_where(".spec.replicas"), said),)
        return ControllerScope(dep, False, frozenset(), proof, unknown=f"its {said} does not tell whether it runs")
    found = _manager_container(dep)
    if found is None:
        return ControllerScope(dep, False, frozenset({own}), (), unknown="no containers in its pod template")
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

    def unknown(reason: str) -> ControllerScope:
        return ControllerScope(dep, False, frozenset(), tuple(evidence), unknown=reason)

    clusterwide = False
    if "clusterwide" in flags:
        raw, pos = flags["clusterwide"]
        value = expand_vars(raw, env) if raw is not None else "true"
        evidence.append(Evidence(where(pos), f"{tokens[pos]} = {value}"))
        if reason := _unresolved(value, opaque):
            return unknown(reason)
        if value.strip().lower() in _TRUE:
            clusterwide = True
        elif value.strip().lower() not in _FALSE:
            return unknown(f"--clusterwide={value} is not a boolean")
    else:
        evidence.append(Evidence(dep.field_where(f"{base}.args"), "no --clusterwide flag (default false)"))
    namespace_flag = own
    if "namespace" in flags:
        raw, pos = flags["namespace"]
        value = expand_vars(raw or "", env)
        if reason := _unresolved(value, opaque):
            return unknown(reason)
        namespace_flag = value.strip() or own
        if not clusterwide:
            evidence.append(Evidence(where(pos), f"{tokens[pos]} = {namespace_flag}"))
    if not clusterwide:
        return ControllerScope(dep, False, frozenset({namespace_flag}), tuple(evidence))
    if "watch-namespaces" not in flags:
        return ControllerScope(dep, True, frozenset(), tuple(evidence))
    raw, pos = flags["watch-namespaces"]
    value = expand_vars(raw or "", env)
    evidence.append(Evidence(where(pos), f"{tokens[pos]} = {value or '(empty: all namespaces)'}"))
    if reason := _unresolved(value, opaque):
        return unknown(reason)
    listed = {n.strip() for n in value.split(",") if n.strip()}
    if not listed:
        return ControllerScope(dep, True, frozenset(), tuple(evidence))
    return ControllerScope(dep, False, frozenset(listed | {namespace_flag}), tuple(evidence))


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
