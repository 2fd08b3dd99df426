"""MT307 stale-sticky-route: requests carry an `x-seldon-route` header that no sticky route of the namespace's Envoy
matches; since every normal Seldon route requires that header to be absent, Envoy answers 404."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    envoy_access_logs,
    lua_effective_headers,
    object_of_route_value,
    request_succeeded,
    select_route,
    serving_route_configs,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access
from mlops_trace.parsers.envoy_config import EnvoyConfig
from mlops_trace.snapshot.snapshot import EnvoySource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT307",
    slug="stale-sticky-route",
    title="Requests carry an x-seldon-route that no sticky route matches",
    severity=Severity.WARNING,
    requires=("envoy:config_dump", "requests|envoy:access"),
    reads=(),
    playbook="envoy-404",
    fix="Drop a stored x-seldon-route when a request with it gets 404 and resend without it (then keep the new value "
    "Envoy returns); never send it to models outside an experiment.",
)

SAMPLES = 3
_LISTED = 8
_INFERENCE_PATH = re.compile(r"/v2/|/inference\.")


@dataclass(frozen=True)
class _Sticky:
    """One request that carried `x-seldon-route`, as a request record or an Envoy access line."""

    namespaces: tuple[str, ...]  # where to look for its routes
    path: str
    authority: str
    headers: Mapping[str, str]
    where: str
    what: str
    succeeded: bool = False  # it got an answer from a route when it was sent


@dataclass(frozen=True)
class _Stale:
    namespace: str
    seldon_model: str
    sent: str
    lua_skipped: bool  # no seldon-model was sent: the Lua filter does not fill it in when x-seldon-route is there
    config_display: str
    sticky_values: tuple[str, ...]
    where: str
    what: str


def _inference_path(path: str) -> str:
    """The path as Envoy sees it: an ingress prefix before `/v2/` or `/inference.` is assumed rewritten away."""
    match = _INFERENCE_PATH.search(path)
    return path[match.start() :] if match else path


def _sticky_values(config: EnvoyConfig, seldon_model: str) -> tuple[str, ...]:
    values = {
        value
        for name in serving_route_configs(config)
        for route in config.routes(name)
        if route.header_exact(SELDON_MODEL) == seldon_model and (value := route.header_contains(STICKY_HEADER))
    }
    return tuple(sorted(values))


def _judge(item: _Sticky, envoys: Mapping[str, list[tuple[EnvoySource, EnvoyConfig]]]) -> tuple[bool, _Stale | None]:
    """(judged, stale). Judged when some Envoy of the request's namespaces would route it without the header; stale
    when that Envoy routes it only without the header. Not judged: not routable even without it (another problem,
    for MT301/MT302) or no Envoy data."""
    path = _inference_path(item.path)
    with_header = lua_effective_headers(path, item.headers)
    without = lua_effective_headers(path, {k: v for k, v in item.headers.items() if k.lower() != STICKY_HEADER})
    for namespace in item.namespaces:
        for env, config in envoys.get(namespace, []):
            if select_route(config, item.authority, path, without) is None:
                continue
            if select_route(config, item.authority, path, with_header) is not None:
                return True, None
            seldon_model = without.get(SELDON_MODEL, "")
            return True, _Stale(
                namespace=namespace,
                seldon_model=seldon_model,
                sent=item.headers[STICKY_HEADER],
                lua_skipped=SELDON_MODEL not in with_header,
                config_display=env.config_display or f"envoy/{namespace}/{env.pod}",
                sticky_values=_sticky_values(config, seldon_model),
                where=item.where,
                what=item.what,
            )
    return False, None


def _request_items(snap: Snapshot, namespaces: tuple[str, ...]) -> Iterator[_Sticky]:
    for record in snap.requests:
        if STICKY_HEADER not in record.headers:
            continue
        yield _Sticky(
            namespaces=(record.namespace,) if record.namespace in namespaces else namespaces,
            path=record.path,
            authority=record.authority or "",
            headers=dict(record.headers),
            where=record.display,
            what=_describe(record),
            succeeded=request_succeeded(record),
        )


def _describe(record: RequestRecord) -> str:
    model = record.headers.get(SELDON_MODEL)
    header = f"seldon-model: {model}" if model is not None else "no seldon-model"
    outcome = record.grpc_status if record.protocol == "grpc" and record.grpc_status else record.status
    return evidence_line(
        f"{record.method} {record.path} ({header}, x-seldon-route: {record.headers[STICKY_HEADER]}) "
        f"-> {outcome or 'no response'}"
    )


def _access_items(snap: Snapshot) -> Iterator[_Sticky]:
    """Envoy access lines with a 404 (or no status) that record both `x-seldon-route` and `seldon-model`: without
    the latter a line cannot say which routes applied."""
    for log in envoy_access_logs(snap):
        for record in envoy_access.iter_records(log.lines()):
            if STICKY_HEADER not in record.headers or SELDON_MODEL not in record.headers or not record.path:
                continue
            if record.status is not None and record.status != 404:
                continue
            yield _Sticky(
                namespaces=(log.namespace,),
                path=record.path,
                authority=record.authority or "",
                headers=dict(record.headers),
                where=log.where(record.lineno),
                what=evidence_line(record.raw),
            )


def run(snap: Snapshot) -> Iterator[Finding]:
    envoys: dict[str, list[tuple[EnvoySource, EnvoyConfig]]] = defaultdict(list)
    for env in snap.envoys:
        if env.config is not None:
            envoys[env.namespace].append((env, env.config))
    namespaces = tuple(sorted(envoys))
    items = list(_request_items(snap, namespaces)) + list(_access_items(snap))
    if not items and not snap.requests:
        raise SkipCheck(
            "no requests were recorded, and no Envoy access line records both the x-seldon-route and seldon-model "
            "request headers"
        )
    stale: list[_Stale] = []
    judged = 0
    for item in items:
        if item.succeeded:
            judged += 1
            continue
        was_judged, verdict = _judge(item, envoys)
        judged += was_judged
        if verdict is not None:
            stale.append(verdict)
    if items and not judged:
        raise SkipCheck(
            f"{len(items)} failed request(s) carry x-seldon-route, but no Envoy config_dump of their namespace would "
            "route them even without it (see MT301/MT302)"
        )
    yield from _group(stale)


def _sticky_text(values: tuple[str, ...]) -> str:
    if not values:
        return "none"
    more = f" (+{len(values) - _LISTED} more)" if len(values) > _LISTED else ""
    return ", ".join(values[:_LISTED]) + more


def _group(stale: list[_Stale]) -> Iterator[Finding]:
    grouped: dict[tuple[str, str, str, bool], list[_Stale]] = defaultdict(list)
    for item in stale:
        grouped[(item.namespace, item.seldon_model, item.sent, item.lua_skipped)].append(item)
    for (namespace, seldon_model, sent, lua_skipped), group in sorted(grouped.items()):
        first = group[0]
        more = f" (showing {SAMPLES})" if len(group) > SAMPLES else ""
        if lua_skipped:
            reason = (
                f"without a seldon-model header: when x-seldon-route is present Envoy's Lua filter does not copy the "
                f"URL name ({seldon_model}) into seldon-model, so no route can match"
            )
        elif first.sticky_values:
            accepted = _sticky_text(first.sticky_values)
            reason = f"with `seldon-model: {seldon_model}`, whose sticky routes only accept {accepted}"
        else:
            reason = (
                f"with `seldon-model: {seldon_model}`, which has no sticky routes at all (no experiment or rolling "
                "update), so any x-seldon-route value fails"
            )
        evidence = [Evidence(item.where, item.what) for item in group[:SAMPLES]]
        evidence.append(
            Evidence(
                f"{first.config_display} sticky routes for seldon-model {seldon_model}",
                f"x-seldon-route contains: {_sticky_text(first.sticky_values)}",
            )
        )
        yield CHECK.finding(
            namespace=namespace,
            object=object_of_route_value(seldon_model),
            message=f"{len(group)} request(s){more} sent `x-seldon-route: {sent}` {reason}; every normal route "
            "requires the header to be absent, so Envoy answers 404",
            evidence=evidence,
        )
