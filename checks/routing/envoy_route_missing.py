"""MT302 envoy-route-missing: a Model, Experiment or Pipeline says Ready, but the namespace's Envoy has no route
whose `seldon-model` header match selects it, so every request for it gets Envoy's 404. Seen in a config_dump, or in
a recorded request for it that got Envoy's own 404 (empty body, no `x-seldon-route`; gRPC: UNIMPLEMENTED)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    UPSTREAM_TIME_HEADER,
    experiment_route_name,
    lua_effective_headers,
    pipeline_route_name,
    serving_route_configs,
)
from mlops_trace.analysis.seldon import is_ready
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.envoy_config import EnvoyConfig, Route
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import EnvoySource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT302",
    slug="envoy-route-missing",
    title="Envoy has no route for a Ready Model, Experiment or Pipeline",
    severity=Severity.CRITICAL,
    requires=("envoy:config_dump|requests", "kube:Model|kube:Experiment|kube:Pipeline"),
    reads=("kube:SeldonRuntime", "kube:Server"),
    playbook="envoy-404",
    fix="Fix why the scheduler did not push the route (controller-scheduler connection, one scheduler per namespace, "
    "model loaded on an agent); if only this Envoy lacks it, restart that Envoy pod to pull a fresh snapshot.",
    explained_by=("MT101", "MT102", "MT103", "MT104", "MT107"),
)

_LISTED = 8
_SAMPLES = 3


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
        ("Pipeline", pipeline_route_name),
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
    findings: dict[str, Finding] = {}  # by object ref
    routed_by_namespace: dict[str, list[set[str]]] = {}
    for namespace in namespaces:
        envoys = envoy_configs(snap, namespace)
        routed = [_routed_values(config, serving_route_configs(config)) for _, config in envoys]
        routed_by_namespace[namespace] = routed
        wanted = _expected(snap, namespace)
        judged += len(wanted)
        for item in wanted:
            missing = [pair for pair, values in zip(envoys, routed) if item.value not in values]
            if missing:
                findings[item.obj.ref] = _finding(item, missing, namespace)
    asked, refused = _refused_requests(snap, routed_by_namespace)
    judged += asked
    for item, records in refused:
        evidence = [Evidence(record.display, _describe(record)) for record in records[:_SAMPLES]]
        known = findings.get(item.obj.ref)
        if known is not None:
            findings[item.obj.ref] = replace(known, evidence=(*known.evidence, *evidence))
        else:
            findings[item.obj.ref] = _request_finding(item, records, evidence)
    if not judged:
        raise SkipCheck(
            "no Model, Experiment or Pipeline with Ready=True in the namespace(s) with an Envoy config_dump ("
            + ", ".join(namespaces)
            + "), and no recorded request got Envoy's own 404 for one"
        )
    yield from findings.values()


def _envoy_refused(record: RequestRecord) -> bool:
    """Envoy's own no-route answer: gRPC UNIMPLEMENTED, or a 404 with an empty body and nothing from behind Envoy
    (no `x-seldon-route`, no upstream service time), or one Envoy logged with flag NR."""
    if record.protocol == "grpc":
        return (record.grpc_status or "").upper() == "UNIMPLEMENTED"
    if record.status != 404:
        return False
    if "NR" in record.envoy_flags:
        return True
    answered = STICKY_HEADER in record.response_headers or UPSTREAM_TIME_HEADER in record.response_headers
    return not answered and not record.body.strip()


def _refused_requests(
    snap: Snapshot, routed_by_namespace: dict[str, list[set[str]]]
) -> tuple[int, list[tuple[_Expected, list[RequestRecord]]]]:
    """(recorded requests that asked for a Ready object by its exact route value, the objects of those that got
    Envoy's own 404 where no config_dump of the namespace shows a route for them: a dump that routes them says the
    404 had another cause)."""
    found: dict[tuple[str | None, str], tuple[_Expected, list[RequestRecord]]] = {}
    expected: dict[str, dict[str, _Expected]] = {}
    asked = 0
    for record in snap.requests:
        if STICKY_HEADER in record.headers:
            continue  # a sticky request that finds no route is MT307's
        path = record.path[record.path.find("/v2/") :] if "/v2/" in record.path else record.path
        value = lua_effective_headers(path, record.headers, record.protocol == "grpc").get(SELDON_MODEL)
        if not value:
            continue
        for namespace in [record.namespace] if record.namespace else snap.seldon_namespaces():
            if namespace not in expected:
                expected[namespace] = {wanted.value: wanted for wanted in _expected(snap, namespace)}
            item = expected[namespace].get(value)
            if item is None:
                continue
            asked += 1
            routed = routed_by_namespace.get(namespace, [])
            if _envoy_refused(record) and not any(value in values for values in routed):
                found.setdefault((namespace, value), (item, []))[1].append(record)
            break
    return asked, list(found.values())


def _describe(record: RequestRecord) -> str:
    outcome = record.grpc_status if record.protocol == "grpc" else record.status
    sent = record.headers.get(SELDON_MODEL)
    header = f"{SELDON_MODEL}: {sent}" if sent is not None else f"no {SELDON_MODEL} header"
    flags = f", Envoy flags {','.join(record.envoy_flags)}" if record.envoy_flags else ""
    return evidence_line(f"{record.method} {record.path} ({header}) -> {outcome}, empty body, no x-seldon-route{flags}")


def _request_finding(item: _Expected, records: list[RequestRecord], evidence: list[Evidence]) -> Finding:
    obj = item.obj
    more = f" (showing {_SAMPLES})" if len(records) > _SAMPLES else ""
    return CHECK.finding(
        namespace=obj.namespace,
        object=obj.ref,
        message=f"{obj.kind} {obj.name} is Ready, but {len(records)} request(s){more} for "
        f"`seldon-model: {item.value}` got Envoy's own 404 (no route): Envoy has no route for it",
        evidence=[Evidence(obj.field_where(".status.conditions[Ready]"), f"{obj.kind} {obj.name} Ready=True"), *evidence],
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
