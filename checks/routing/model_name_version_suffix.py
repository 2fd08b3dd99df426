"""MT306 model-name-version-suffix: requests use the wrong form of a model's name for where they are sent:
`<model>_<version>` through Envoy (which routes `<model>`), or `<model>` straight at MLServer (which only knows
`<model>_<version>`), and get 404."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    envoy_access_logs,
    envoy_no_route,
    namespace_from_upstream,
    split_versioned,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access, logs, nginx_access
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT306",
    slug="model-name-version-suffix",
    title="Model called with the wrong name form (with or without the _<version> suffix)",
    severity=Severity.WARNING,
    requires=("kube:Model", "logs:ingress|envoy:access|logs:mlserver|requests"),
    reads=("kube:Experiment",),
    playbook="envoy-404",
    fix="Through Envoy (seldon-mesh, the ingress) call /v2/models/<model>/...; straight at a server pod or MLServer "
    "call /v2/models/<model>_<version>/...",
)

SAMPLES = 3
_MODEL_IN_PATH = re.compile(r"/v2/models/(?P<name>[^/?#]+)")
_NOT_FOUND = re.compile(r"\bModel (?P<name>\S+?)(?: with version \S*)? not found", re.IGNORECASE)
_DEFAULT_BACKEND = "default-backend"


class Direction(StrEnum):
    VIA_ENVOY = "versioned name through Envoy"
    DIRECT = "plain name straight at MLServer"


@dataclass(frozen=True)
class _Hit:
    namespace: str | None
    model: str
    called: str  # the name as the request used it
    direction: Direction
    where: str
    what: str
    recorded: bool = False  # a recorded request, not a log line


@dataclass(frozen=True)
class _Names:
    models: dict[str, set[str]]
    experiments: dict[str, set[str]]

    def versioned_model(self, name: str, namespace: str) -> str | None:
        """`<m>` when `name` is `<m>_<n>` for a Model m of the namespace and not itself a Model or Experiment."""
        model, version = split_versioned(name)
        models = self.models.get(namespace, set())
        if version is None or name in models or name in self.experiments.get(namespace, set()):
            return None
        return model if model in models else None

    def plain_model(self, name: str, namespace: str) -> bool:
        """`name` is a Model of the namespace (and not an Experiment, which is MT301's)."""
        return name in self.models.get(namespace, set()) and name not in self.experiments.get(namespace, set())

    def namespaces(self) -> list[str]:
        return sorted(self.models)


def _names(snap: Snapshot) -> _Names:
    models: dict[str, set[str]] = defaultdict(set)
    for model in snap.objects_of("Model"):
        models[model.namespace or ""].add(model.name)
    experiments: dict[str, set[str]] = defaultdict(set)
    for exp in snap.objects_of("Experiment"):
        experiments[exp.namespace or ""].add(exp.name)
    return _Names(dict(models), dict(experiments))


def _called_name(path: str | None) -> str | None:
    if not path:
        return None
    match = _MODEL_IN_PATH.search(path)
    return match.group("name") if match else None


def run(snap: Snapshot) -> Iterator[Finding]:
    names = _names(snap)
    hits: list[_Hit] = []
    seen_versions: dict[tuple[str, str], set[str]] = defaultdict(set)
    recorded = {request.request_id for request in snap.requests if request.request_id}
    judged = 0
    for log in snap.logs_of(Role.INGRESS):
        for record in nginx_access.iter_records(log.lines()):
            judged += 1
            hit = None if record.request_id in recorded else _ingress_hit(log, record, names)
            if hit is not None:
                hits.append(hit)
    envoy_logs = envoy_access_logs(snap)
    for log in envoy_logs:
        for access in envoy_access.iter_records(log.lines()):
            judged += 1
            hit = None if access.request_id in recorded else _envoy_hit(log, access, names)
            if hit is not None:
                hits.append(hit)
    for log in snap.logs_of(Role.MLSERVER):
        read, found = _mlserver_hits(log, names, seen_versions)
        judged += read
        hits.extend(found)
    for request in snap.requests:
        judged += 1
        hit = _request_hit(request, names)
        if hit is not None:
            hits.append(hit)
    if not judged:
        raise SkipCheck("the ingress, Envoy and MLServer logs hold no access lines, and no requests were recorded")
    yield from _group(hits, seen_versions)


def _ingress_hit(log: LogSource, record: nginx_access.NginxAccessRecord, names: _Names) -> _Hit | None:
    called = _called_name(record.path)
    upstream = record.proxy_upstream_name or ""
    if called is None or record.status != 404 or record.upstream_status != 404 or _DEFAULT_BACKEND in upstream:
        return None
    candidates = [ns for ns in names.namespaces() if names.versioned_model(called, ns) is not None]
    namespace = namespace_from_upstream(candidates, upstream)
    model = names.versioned_model(called, namespace) if namespace is not None else None
    if namespace is None or model is None:
        return None
    return _Hit(namespace, model, called, Direction.VIA_ENVOY, log.where(record.lineno), evidence_line(record.raw))


def _envoy_hit(log: LogSource, record: envoy_access.EnvoyAccessRecord, names: _Names) -> _Hit | None:
    called = _called_name(record.path)
    if called is None or not envoy_no_route(record):
        return None
    sent = record.headers.get(SELDON_MODEL)
    if (sent is not None and sent != called) or STICKY_HEADER in record.headers:
        return None  # routed by an explicit header, or a sticky request (MT307): the URL name played no part
    model = names.versioned_model(called, log.namespace)
    if model is None:
        return None
    return _Hit(log.namespace, model, called, Direction.VIA_ENVOY, log.where(record.lineno), evidence_line(record.raw))


def _mlserver_hits(
    log: LogSource, names: _Names, seen_versions: dict[tuple[str, str], set[str]]
) -> tuple[int, list[_Hit]]:
    """(access and not-found lines read, hits). A `Model <m> not found` line only counts for a model whose 404s the
    log's access lines do not already show, so one request is not counted twice. Also notes which versioned names
    MLServer served, to name the right one in the fix."""
    read = 0
    access_hits: list[_Hit] = []
    error_hits: list[_Hit] = []
    for record in logs.iter_records(log.lines()):
        path = record.fields.get("path")
        not_found = _NOT_FOUND.search(record.message)
        if path is None and not_found is None:
            continue
        read += 1
        called = _called_name(path)
        if called is not None:
            model, version = split_versioned(called)
            if version is not None and names.plain_model(model, log.namespace):
                seen_versions[(log.namespace, model)].add(called)
            if record.fields.get("status") == "404" and names.plain_model(called, log.namespace):
                where, what = log.where(record.lineno), evidence_line(record.raw)
                access_hits.append(_Hit(log.namespace, called, called, Direction.DIRECT, where, what))
        elif not_found is not None and names.plain_model(not_found.group("name"), log.namespace):
            name = not_found.group("name")
            where, what = log.where(record.lineno), evidence_line(record.raw)
            error_hits.append(_Hit(log.namespace, name, name, Direction.DIRECT, where, what))
    with_access = {hit.model for hit in access_hits}
    return read, access_hits + [hit for hit in error_hits if hit.model not in with_access]


def _describe(record: RequestRecord) -> str:
    sent = record.headers.get(SELDON_MODEL)
    header = f", seldon-model: {sent}" if sent is not None else ""
    target = f" to {record.authority}" if record.authority else ""
    return evidence_line(f"{record.method} {record.path}{target}{header} -> {record.status}")


def _only(namespaces: list[str]) -> str | None:
    return namespaces[0] if len(namespaces) == 1 else None


def _request_hit(record: RequestRecord, names: _Names) -> _Hit | None:
    called = _called_name(record.path)
    if record.protocol == "grpc" or called is None or record.status != 404:
        return None
    from_mlserver = "uvicorn" in record.response_headers.get("server", "").lower() or any(
        match.group("name") == called for match in _NOT_FOUND.finditer(record.body)
    )
    if from_mlserver:
        namespaces = [ns for ns in _aimed(record, names) if names.plain_model(called, ns)]
        if not namespaces:
            return None
        return _Hit(_only(namespaces), called, called, Direction.DIRECT, record.display, _describe(record), True)
    sent = record.headers.get(SELDON_MODEL)
    if STICKY_HEADER in record.response_headers or STICKY_HEADER in record.headers:
        return None  # a 404 from behind Envoy, or a sticky request the Lua filter leaves alone (MT307)
    if sent is not None and sent != called:
        return None  # routed by an explicit header: the URL name played no part
    namespaces = [ns for ns in _aimed(record, names) if names.versioned_model(called, ns) is not None]
    namespace = _only(namespaces)
    model = names.versioned_model(called, namespaces[0]) if namespaces else None
    if model is None:
        return None
    return _Hit(namespace, model, called, Direction.VIA_ENVOY, record.display, _describe(record), True)


def _aimed(record: RequestRecord, names: _Names) -> list[str]:
    """The namespaces a recorded request may have been aimed at: the one its sender names, else every one."""
    return [record.namespace] if record.namespace else names.namespaces()


def _version_number(name: str) -> int:
    version = split_versioned(name)[1]
    return int(version) if version is not None else 0


def _group(hits: list[_Hit], seen_versions: dict[tuple[str, str], set[str]]) -> Iterator[Finding]:
    grouped: dict[tuple[str | None, str, Direction], list[_Hit]] = defaultdict(list)
    for hit in hits:
        grouped[(hit.namespace, hit.model, hit.direction)].append(hit)
    for (namespace, model, direction), group in sorted(
        grouped.items(), key=lambda i: (i[0][0] or "", i[0][1], i[0][2])
    ):
        called = sorted({hit.called for hit in group})
        more = f" (showing {SAMPLES})" if len(group) > SAMPLES else ""
        # Recorded requests first: they show what was sent and what came back, whole.
        shown = sorted(group, key=lambda hit: not hit.recorded)[:SAMPLES]
        evidence = [Evidence(hit.where, hit.what) for hit in shown]
        if direction is Direction.VIA_ENVOY:
            message = (
                f"{len(group)} request(s){more} called {', '.join(f'/v2/models/{c}/' for c in called)} through Envoy "
                f"and got 404: Envoy routes Model {model} by its plain name (the Lua filter copies the URL name into "
                f"seldon-model), and no route is named after a versioned name"
            )
            fix = f"Call /v2/models/{model}/... (or send `seldon-model: {model}`) through Envoy or the ingress."
        else:
            known = sorted(seen_versions.get((namespace or "", model), set()), key=_version_number)
            served = f" (it served {', '.join(known)})" if known else ""
            message = (
                f"{len(group)} request(s){more} called /v2/models/{model}/ straight at MLServer and got 404: MLServer "
                f"only knows the versioned name {model}_<version> the Seldon agent loads{served}"
            )
            target = known[-1] if known else f"{model}_<version>"
            fix = f"Call /v2/models/{target}/... on the server pod, or go through Envoy (seldon-mesh) as {model}."
        yield CHECK.finding(namespace=namespace, object=f"Model/{model}", message=message, evidence=evidence, fix=fix)
