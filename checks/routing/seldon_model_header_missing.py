"""MT301 seldon-model-header-missing: requests aimed at an Experiment reach Envoy without
`seldon-model: <exp>.experiment`, so no route matches and Envoy answers 404 (gRPC: UNIMPLEMENTED)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import rewrite_target
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    envoy_access_logs,
    envoy_no_route,
    experiment_route_name,
    namespace_from_upstream,
    request_succeeded,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access, nginx_access
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT301",
    slug="seldon-model-header-missing",
    title="Requests to an Experiment lack the seldon-model: <exp>.experiment header",
    severity=Severity.WARNING,
    requires=("kube:Experiment", "logs:ingress|envoy:access|requests"),
    reads=("envoy:config_dump", "kube:Ingress", "kube:Model", "kube:Pipeline"),
    playbook="envoy-404",
    fix="Send `seldon-model: <experiment>.experiment` with every request to the Experiment (HTTP header or gRPC "
    "metadata), from the client or the ingress; the URL name alone never selects an Experiment.",
)

SAMPLES = 3
_TARGET_IN_PATH = re.compile(r"/v2/(?P<kind>models|pipelines)/(?P<name>[^/?#]+)")
_DEFAULT_BACKEND = "default-backend"


@dataclass(frozen=True)
class _Hit:
    """One request that reached Envoy without the experiment header."""

    namespace: str | None
    experiment: str
    where: str
    what: str
    from_log: bool = False  # an access line, which cannot show the headers that were sent
    prefixed: bool = False  # the path has a prefix before /v2/ (an ingress path that may not be rewritten)


@dataclass(frozen=True)
class _Experiments:
    """Experiment names per namespace, and the Model/Pipeline names that would make a path ambiguous."""

    by_namespace: dict[str, set[str]]
    models: dict[str, set[str]]
    pipelines: dict[str, set[str]]

    def namespaces_of(self, name: str, kind: str) -> list[str]:
        """Namespaces where `name` is an Experiment and not also a Model (Pipeline for /v2/pipelines/) there."""
        shadow = self.pipelines if kind == "pipelines" else self.models
        return sorted(
            ns for ns, names in self.by_namespace.items() if name in names and name not in shadow.get(ns, set())
        )


def _experiments(snap: Snapshot) -> _Experiments:
    by_namespace: dict[str, set[str]] = defaultdict(set)
    for exp in snap.objects_of("Experiment"):
        by_namespace[exp.namespace or ""].add(exp.name)
    models: dict[str, set[str]] = defaultdict(set)
    for model in snap.objects_of("Model"):
        models[model.namespace or ""].add(model.name)
    pipelines: dict[str, set[str]] = defaultdict(set)
    for pipe in snap.objects_of("Pipeline"):
        pipelines[pipe.namespace or ""].add(pipe.name)
    return _Experiments(dict(by_namespace), dict(models), dict(pipelines))


def _prefixed(path: str | None) -> bool:
    match = _TARGET_IN_PATH.search(path or "")
    return match is not None and match.start() > 0


def _target(path: str | None) -> tuple[str, str] | None:
    """(`models` | `pipelines`, name) of a V2 inference path, wherever an ingress prefix put it."""
    if not path:
        return None
    match = _TARGET_IN_PATH.search(path)
    return (match.group("kind"), match.group("name")) if match else None


def run(snap: Snapshot) -> Iterator[Finding]:
    known = _experiments(snap)
    recorded = {record.request_id for record in snap.requests if record.request_id}
    hits: list[_Hit] = []
    grpc_without_metadata: list[RequestRecord] = []
    judged = 0
    seen_by_envoy: set[str] = set()  # request ids of Envoy lines that show the routing headers
    witnessed: set[str] = set()  # namespaces whose Envoy access log shows them
    for log in envoy_access_logs(snap):
        for hit in _envoy_hits(log, known, recorded, seen_by_envoy, witnessed):
            judged += 1
            if hit is not None:
                hits.append(hit)
    # Where Envoy's access log shows the routing headers, its lines are the witness: an ingress line without an
    # Envoy line beside it is one the Envoy log has not flushed yet or was cut from, and cannot show the headers.
    for log in snap.logs_of(Role.INGRESS):
        for hit in _ingress_hits(log, known, recorded | seen_by_envoy, witnessed):
            judged += 1
            if hit is not None:
                hits.append(hit)
    for record in snap.requests:
        judged += 1
        hit = _request_hit(record, known)
        if hit is not None:
            hits.append(hit)
        elif _grpc_without_metadata(record):
            grpc_without_metadata.append(record)
    if not judged:
        raise SkipCheck("the ingress and Envoy logs hold no access log lines, and no requests were recorded")
    # An access line cannot show the headers sent: when Envoy has no route for the Experiment at all, the 404 is
    # explained without a missing header, and MT302 reports it.
    hits = [hit for hit in hits if not (hit.from_log and _route_missing(snap, hit.namespace, hit.experiment))]
    if not _ingress_rewrites(snap):
        # No Ingress rewrites paths, so a client prefix before /v2/ reaches Envoy as it is: those 404s are MT204's.
        hits = [hit for hit in hits if not hit.prefixed]
    yield from _group(hits, known)
    if grpc_without_metadata:
        yield _grpc_finding(grpc_without_metadata, known)


def _route_missing(snap: Snapshot, namespace: str | None, experiment: str) -> bool:
    """True when the namespace's Envoy config_dump(s) hold no first-request route for `<exp>.experiment`."""
    configs = [env.config for env in snap.envoy_configs(namespace) if env.config is not None] if namespace else []
    if not configs:
        return False
    value = experiment_route_name(experiment)
    return not any(
        route.header_contains(STICKY_HEADER) is None
        for config in configs
        for route in config.routes_with_header_exact(SELDON_MODEL, value)
    )


def _ingress_hits(
    log: LogSource, known: _Experiments, judged_elsewhere: set[str], witnessed: set[str]
) -> Iterator[_Hit | None]:
    """One item per access line: a hit for a 404 that Envoy (not nginx, not its default backend) gave on an
    Experiment's path, else None. A line of a recorded request, or of one whose Envoy line shows the routing headers,
    is left to that record or line: an ingress line cannot show the headers."""
    for record in nginx_access.iter_records(log.lines()):
        hit = None
        if record.request_id in judged_elsewhere:
            continue
        target = _target(record.path)
        upstream = record.proxy_upstream_name or ""
        if (
            target is not None
            and record.status == 404
            and record.upstream_status == 404
            and _DEFAULT_BACKEND not in upstream
        ):
            namespace = namespace_from_upstream(known.namespaces_of(target[1], target[0]), upstream)
            if namespace is not None and namespace not in witnessed:
                where, what = log.where(record.lineno), evidence_line(record.raw)
                hit = _Hit(namespace, target[1], where, what, from_log=True, prefixed=_prefixed(record.path))
        yield hit


def _ingress_rewrites(snap: Snapshot) -> bool:
    """Whether some Ingress of the bundle rewrites paths (or the bundle holds no Ingress, so we cannot tell)."""
    ingresses = snap.objects_of("Ingress")
    if not ingresses:
        return True
    return any(rewrite_target(ing) is not None for ing in ingresses)


def _envoy_hits(
    log: LogSource, known: _Experiments, recorded: set[str], seen: set[str], witnessed: set[str]
) -> Iterator[_Hit | None]:
    """One item per access line: a hit for a 404 Envoy made itself on an Experiment's path, else None (and for a
    line of a recorded request, which its record judges). A line that carries `x-seldon-route` is MT307's: the Lua
    filter leaves such a request alone. Adds to `seen` the request ids of the lines on an Experiment's path that
    show the routing headers, and to `witnessed` the log's namespace when it has such lines."""
    for record in envoy_access.iter_records(log.lines()):
        hit = None
        if record.request_id in recorded:
            continue
        target = _target(record.path)
        shows_headers = SELDON_MODEL in record.headers or STICKY_HEADER in record.headers
        if target is not None and shows_headers:
            witnessed.add(log.namespace)
            if record.request_id:
                seen.add(record.request_id)
        if STICKY_HEADER in record.headers:
            yield None
            continue
        if target is not None and envoy_no_route(record):
            kind, name = target
            sent = record.headers.get(SELDON_MODEL)
            if log.namespace in known.namespaces_of(name, kind) and sent != experiment_route_name(name):
                where, what = log.where(record.lineno), evidence_line(record.raw)
                # The path as Envoy saw it: with a prefix before /v2/ no Seldon route can match whatever the
                # headers were, so the 404 says nothing about `seldon-model` (an unrewritten ingress path, MT204).
                if not _prefixed(record.path):
                    hit = _Hit(log.namespace, name, where, what, from_log=True)
        yield hit


def _describe(record: RequestRecord) -> str:
    sent = record.headers.get(SELDON_MODEL)
    outcome = record.grpc_status if record.protocol == "grpc" and record.grpc_status else record.status
    header = f"seldon-model: {sent}" if sent is not None else "no seldon-model header"
    return evidence_line(f"{record.method} {record.path} ({record.protocol}, {header}) -> {outcome or 'no response'}")


def _request_hit(record: RequestRecord, known: _Experiments) -> _Hit | None:
    """A recorded request aimed at an Experiment (by its path, or by a header that names the bare Experiment) that
    does not carry `seldon-model: <exp>.experiment`."""
    sent = record.headers.get(SELDON_MODEL)
    aimed: list[tuple[str, str]] = []
    target = _target(record.path) if record.protocol != "grpc" else None
    if target is not None:
        aimed.append(target)
    if sent is not None:
        aimed.append(("models", sent))
    for kind, name in aimed:
        namespaces = known.namespaces_of(name, kind)
        if not namespaces or sent == experiment_route_name(name):
            continue
        if sent is None and request_succeeded(record):
            continue  # something on the way (e.g. an ingress snippet) added the header: it did reach a route
        if record.namespace in namespaces:
            namespaces = [record.namespace]
        namespace = namespaces[0] if len(namespaces) == 1 else None
        return _Hit(namespace, name, record.display, _describe(record))
    return None


def _grpc_without_metadata(record: RequestRecord) -> bool:
    return record.protocol == "grpc" and SELDON_MODEL not in record.headers and not request_succeeded(record)


def _group(hits: list[_Hit], known: _Experiments) -> Iterator[Finding]:
    grouped: dict[tuple[str | None, str], list[_Hit]] = defaultdict(list)
    for hit in hits:
        grouped[(hit.namespace, hit.experiment)].append(hit)
    for (namespace, name), group in sorted(grouped.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        route = experiment_route_name(name)
        where = (
            f"namespace {namespace}"
            if namespace
            else "namespaces " + ", ".join(ns for ns, names in sorted(known.by_namespace.items()) if name in names)
        )
        # Recorded requests first: they show the headers that were sent, an access line does not.
        shown = sorted(group, key=lambda hit: hit.from_log)[:SAMPLES]
        evidence = [Evidence(hit.where, hit.what) for hit in shown]
        more = f" (showing {SAMPLES})" if len(group) > SAMPLES else ""
        caveat = (
            "; some paths carry a prefix before /v2/: if the ingress does not rewrite it away, that alone gives the "
            "404 (MT204)"
            if any(hit.prefixed for hit in group)
            else ""
        )
        yield CHECK.finding(
            namespace=namespace,
            object=f"Experiment/{name}",
            message=f"{len(group)} request(s){more} aimed at Experiment {name} ({where}) did not carry "
            f"`seldon-model: {route}`, the only value Envoy routes to the Experiment; without a header Envoy's Lua "
            f"filter takes the URL name {name}, which no Model has, so Envoy answers 404{caveat}",
            evidence=evidence,
            fix=f"Send `seldon-model: {route}` with each request to {name} (the URL may name any model); for an "
            "ingress, set it there (e.g. a proxy_set_header snippet) or in the client.",
        )


def _grpc_finding(records: list[RequestRecord], known: _Experiments) -> Finding:
    routes = sorted({experiment_route_name(name) for names in known.by_namespace.values() for name in names})
    more = f" (showing {SAMPLES})" if len(records) > SAMPLES else ""
    return CHECK.finding(
        namespace=None,
        object="Request/grpc",
        message=f"{len(records)} gRPC request(s){more} carried no seldon-model metadata and failed: Envoy's Lua "
        "filter never adds it for gRPC, so no route matches (UNIMPLEMENTED)",
        evidence=[Evidence(record.display, _describe(record)) for record in records[:SAMPLES]],
        fix="Add `seldon-model` metadata to every gRPC call: `<model>`, `<pipeline>.pipeline`, or for an Experiment "
        + (", ".join(f"`{route}`" for route in routes[:3]) or "`<experiment>.experiment`")
        + ".",
    )
