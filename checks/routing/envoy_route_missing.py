"""MT302 envoy-route-missing: a Model, Experiment or Pipeline says Ready, but the namespace's Envoy has no route
whose `seldon-model` header match selects it, so every request for it gets Envoy's 404."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    serving_route_configs,
)
from mlops_trace.analysis.seldon import experiment_route_name, is_ready
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.parsers.envoy_config import EnvoyConfig, Route
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import EnvoySource, Snapshot

CHECK = make_check(
    id="MT302",
    slug="envoy-route-missing",
    title="Envoy has no route for a Ready Model, Experiment or Pipeline",
    severity=Severity.CRITICAL,
    requires=("envoy:config_dump", "kube:Model|kube:Experiment|kube:Pipeline"),
    playbook="envoy-404",
    fix="Fix why the scheduler did not push the route (controller-scheduler connection, one scheduler per namespace, "
    "model loaded on an agent); if only this Envoy lacks it, restart that Envoy pod to pull a fresh snapshot.",
)

_LISTED = 8


@dataclass(frozen=True)
class _Expected:
    obj: KubeObject
    value: str  # the seldon-model value that must have a route


def _normal_routes(config: EnvoyConfig, route_configs: list[str]) -> Iterator[Route]:
    """Routes that serve a request without `x-seldon-route` (sticky routes only serve returning sessions)."""
    for name in route_configs:
        for route in config.routes(name):
            if route.header_exact(SELDON_MODEL) is not None and route.header_contains(STICKY_HEADER) is None:
                yield route


def _expected(snap: Snapshot, namespace: str) -> list[_Expected]:
    wanted: list[_Expected] = []
    for kind, route_value in (
        ("Model", lambda name: name),
        ("Experiment", experiment_route_name),
        ("Pipeline", lambda name: f"{name}.pipeline"),
    ):
        for obj in sorted(snap.objects_of(kind, namespace), key=lambda o: o.name):
            if is_ready(obj) is True:
                wanted.append(_Expected(obj, route_value(obj.name)))
    return wanted


def _routed_values_text(values: list[str]) -> str:
    if not values:
        return "it routes no seldon-model value at all"
    shown = ", ".join(values[:_LISTED])
    more = f" (+{len(values) - _LISTED} more)" if len(values) > _LISTED else ""
    return f"it routes seldon-model {shown}{more}"


def envoy_configs(snap: Snapshot, namespace: str) -> list[tuple[EnvoySource, EnvoyConfig]]:
    return [(env, env.config) for env in snap.envoy_configs(namespace) if env.config is not None]


def run(snap: Snapshot) -> Iterator[Finding]:
    namespaces = sorted({env.namespace for env in snap.envoy_configs()})
    judged = 0
    for namespace in namespaces:
        envoys = envoy_configs(snap, namespace)
        routed = [_routed_values(config, serving_route_configs(config)) for _, config in envoys]
        wanted = _expected(snap, namespace)
        judged += len(wanted)
        for item in wanted:
            missing = [pair for pair, values in zip(envoys, routed) if item.value not in values]
            if missing:
                yield _finding(item, missing, namespace)
    if not judged:
        raise SkipCheck(
            "no Model, Experiment or Pipeline with Ready=True in the namespace(s) with an Envoy config_dump ("
            + ", ".join(namespaces)
            + ")"
        )


def _routed_values(config: EnvoyConfig, route_configs: list[str]) -> set[str]:
    return {value for route in _normal_routes(config, route_configs) if (value := route.header_exact(SELDON_MODEL))}


def _finding(item: _Expected, missing: list[tuple[EnvoySource, EnvoyConfig]], namespace: str) -> Finding:
    obj = item.obj
    evidence = [Evidence(obj.field_where(".status.conditions[Ready]"), f"{obj.kind} {obj.name} Ready=True")]
    for env, config in missing:
        route_configs = serving_route_configs(config)
        values = sorted(_routed_values(config, route_configs))
        searched = ", ".join(
            name if config.route_config(name) is not None else f"{name} (not in the dump)" for name in route_configs
        )
        evidence.append(
            Evidence(
                f"{env.config_display} route_config {searched or '(none)'}",
                f"no route with seldon-model exact {item.value!r}; {_routed_values_text(values)}",
            )
        )
    pods = ", ".join(env.pod for env, _ in missing)
    return CHECK.finding(
        namespace=namespace,
        object=obj.ref,
        message=f"{obj.kind} {obj.name} is Ready, but Envoy ({pods}) has no route for `seldon-model: {item.value}`: "
        "every request for it gets Envoy's 404 (gRPC: UNIMPLEMENTED)",
        evidence=evidence,
    )
