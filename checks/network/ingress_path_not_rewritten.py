"""MT204 ingress-path-not-rewritten: an Ingress path hands Envoy a request path its Seldon routes cannot match."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    GRPC_PREFIX,
    REST_PREFIX,
    REWRITE_TARGET,
    USE_REGEX,
    PathSimulation,
    PathType,
    SeldonBackend,
    is_envoy_data_port,
    is_grpc_backend,
    literal_prefix,
    reaches_seldon_route,
    regex_hosts,
    rewrite_target,
    sample_client_path,
    seldon_backends,
    simulate_path,
    uses_regex_annotations,
)
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT204",
    slug="ingress-path-not-rewritten",
    title="Ingress path reaches Envoy without the /v2 prefix it routes on",
    severity=Severity.CRITICAL,
    requires=("kube:Ingress",),
    reads=("kube:IngressClass", "kube:Namespace", "kube:Service"),
    playbook="ingress-routing",
    fix=(
        "Rewrite the prefix away: path `/<prefix>(/|$)(.*)` with `nginx.ingress.kubernetes.io/rewrite-target: /$2` "
        'and `use-regex: "true"`, or serve Seldon on its own host with path `/`.'
    ),
)


def run(snap: Snapshot) -> Iterator[Finding]:
    leading = seldon_backends(snap)
    candidates = [sb for sb in leading if sb.backend.path is not None]
    defaults = [sb for sb in leading if sb.backend.path is None]
    if not candidates and not defaults:
        raise SkipCheck(
            "no ingress-nginx Ingress path or defaultBackend in the bundle leads to Seldon's Envoy (seldon-mesh)"
        )
    hosts_with_regex = regex_hosts(snap)
    judged = 0
    unreadable: list[str] = []
    for seldon in defaults:
        if not is_envoy_data_port(seldon.resolution):
            continue
        verdict = _judge_default(seldon, candidates)
        if isinstance(verdict, str):
            unreadable.append(verdict)
            continue
        judged += 1
        if verdict is not None:
            yield verdict
    for seldon in candidates:
        if not is_envoy_data_port(seldon.resolution):
            continue
        simulation = _simulate(seldon, hosts_with_regex)
        if simulation.error is not None or not simulation.matched or simulation.upstream_path is None:
            unreadable.append(f"{seldon.backend.ingress.ref} {seldon.backend.path}: {simulation.describe()}")
            continue
        judged += 1
        grpc = is_grpc_backend(seldon.backend.ingress)
        if reaches_seldon_route(simulation.upstream_path, grpc):
            continue
        yield _finding(seldon, simulation, grpc)
    if judged == 0:
        reason = "; ".join(unreadable) if unreadable else "the Ingress paths leading to Seldon target a non-data port"
        raise SkipCheck(f"could not simulate any Ingress path leading to Seldon: {reason}")


def _judge_default(seldon: SeldonBackend, paths: list[SeldonBackend]) -> Finding | str | None:
    """A defaultBackend that leads to Envoy: ingress-nginx serves it in the catch-all server's `location /` and
    applies no rewrite-target there, so the path reaches Envoy as the client sent it. That is right for clients that
    call `/v2/…`; a rewrite-target on a catch-all Ingress (no rules) shows the path was meant to be rewritten and is
    not. Returns a finding, None (fine), or why it cannot be judged."""
    backend = seldon.backend
    ingress = backend.ingress
    rewrite = rewrite_target(ingress)
    if rewrite is None:
        return None
    if as_list(ingress.spec.get("rules")):
        if any(p.backend.ingress is ingress for p in paths):
            return None  # the rewrite is for its rule paths, which are judged one by one
        return f"{ingress.ref} defaultBackend: its rules and rewrite-target ({rewrite}) lead elsewhere"
    grpc = is_grpc_backend(ingress)
    expected = GRPC_PREFIX if grpc else REST_PREFIX
    client = sample_client_path(f"/{seldon.namespace}", grpc)
    message = (
        f"Ingress {ingress.namespace}/{ingress.name} sends every request to Seldon's Envoy in {seldon.namespace} "
        f"through its defaultBackend, where ingress-nginx applies no rewrite: its rewrite-target {rewrite} is "
        f"ignored, so a prefixed path such as {client} reaches Envoy unchanged. Envoy's Seldon routes only match "
        f"paths starting with {expected}, so it answers 404 (no route) for such requests."
    )
    evidence = [
        Evidence(backend.where, f"defaultBackend → {seldon.resolution.chain()} (Seldon Envoy of {seldon.namespace})"),
        Evidence(ingress.field_where(".metadata.annotations"), _annotations(ingress)),
        Evidence(ingress.field_where(".spec.rules"), "no rules: the Ingress is ingress-nginx's catch-all"),
    ]
    fix = (
        "A defaultBackend forwards paths unchanged: either have clients call /v2/… (and drop the rewrite-target), or "
        "replace the defaultBackend by a rule path `/<prefix>(/|$)(.*)` with rewrite-target `/$2` and "
        '`use-regex: "true"`.'
    )
    return CHECK.finding(namespace=ingress.namespace, object=ingress.ref, message=message, evidence=evidence, fix=fix)


def _simulate(seldon: SeldonBackend, hosts_with_regex: set[str]) -> PathSimulation:
    backend = seldon.backend
    path = backend.path or "/"
    ingress = backend.ingress
    regex = uses_regex_annotations(ingress) or (backend.host or "") in hosts_with_regex
    grpc = is_grpc_backend(ingress)
    if backend.path_type == PathType.EXACT and not regex:
        client_path = path
    else:
        client_path = sample_client_path(literal_prefix(path, regex), grpc)
    return simulate_path(path, backend.path_type, client_path, regex=regex, rewrite=rewrite_target(ingress))


def _finding(seldon: SeldonBackend, simulation: PathSimulation, grpc: bool) -> Finding:
    backend = seldon.backend
    ingress = backend.ingress
    upstream = simulation.upstream_path or ""
    expected = GRPC_PREFIX if grpc else REST_PREFIX
    cause = _cause(simulation, upstream, expected)
    host = f" (host {backend.host})" if backend.host else ""
    message = (
        f"Ingress {ingress.namespace}/{ingress.name} path {backend.path}{host} sends {simulation.client_path} to "
        f"Seldon's Envoy in {seldon.namespace} as {upstream or '(empty)'}: {cause}. Envoy's Seldon routes only "
        f"match paths starting with {expected}, so it answers 404 (no route) for every model."
    )
    evidence = [
        Evidence(
            ingress.field_where(backend.path_field or backend.field),
            f"path={backend.path} pathType={backend.path_type}",
        ),
        Evidence(ingress.field_where(".metadata.annotations"), _annotations(ingress)),
        Evidence(f"ingress-nginx simulation of {ingress.ref}", simulation.describe()),
        Evidence(backend.where, f"backend {seldon.resolution.chain()} (Seldon Envoy of {seldon.namespace})"),
    ]
    return CHECK.finding(
        namespace=ingress.namespace,
        object=ingress.ref,
        message=message,
        evidence=evidence,
        fix=_fix(backend.path or "/", simulation, grpc),
    )


def _cause(simulation: PathSimulation, upstream: str, expected: str) -> str:
    if simulation.rewrite is None:
        return "the prefix is kept (no rewrite-target)"
    used = sorted({int(d) for d in re.findall(r"\$\{?(\d)", simulation.rewrite)})
    holding = [
        index
        for index, text in enumerate(simulation.groups, start=1)
        if text and (text.startswith(expected) or ("/" + text).startswith(expected)) and index not in used
    ]
    if holding and used:
        shown = ", ".join(f"${i}={simulation.groups[i - 1] or ''!r}" for i in used if i <= len(simulation.groups))
        return (
            f"rewrite-target {simulation.rewrite} uses the wrong capture group ({shown}; ${holding[0]} holds the rest)"
        )
    tail = expected.rstrip("/")
    if tail and tail.lower() in simulation.client_path.lower() and tail.lower() not in upstream.lower():
        return f"rewrite-target {simulation.rewrite} strips {tail} as well"
    if upstream.startswith("//"):
        return f"rewrite-target {simulation.rewrite} leaves a double slash"
    return f"rewrite-target {simulation.rewrite} does not produce {expected}…"


def _annotations(ingress: KubeObject) -> str:
    shown = [
        f"{key.rsplit('/', 1)[-1]}={ingress.annotations[key]}"
        for key in (REWRITE_TARGET, USE_REGEX)
        if key in ingress.annotations
    ]
    return ", ".join(shown) if shown else "no rewrite-target / use-regex annotation"


def _fix(path: str, simulation: PathSimulation, grpc: bool) -> str:
    stem = literal_prefix(path, simulation.location.startswith("~*")).rstrip("/")
    if grpc:
        return (
            "gRPC clients always call /inference.GRPCInferenceService/…: give Seldon its own host with path `/` "
            "(pathType Prefix) and no rewrite-target."
        )
    if stem.lower() in ("", "/v2"):
        return (
            "Drop the rewrite-target annotation (or move this path to an Ingress without it): Envoy expects the "
            "/v2/… path exactly as the client sends it."
        )
    return (
        f'Use path `{stem}(/|$)(.*)` with `nginx.ingress.kubernetes.io/rewrite-target: /$2` and `use-regex: "true"` '
        f"(on an Ingress of its own if other paths share the annotation), so {stem}/v2/… reaches Envoy as /v2/…."
    )
