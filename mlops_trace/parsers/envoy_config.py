"""Envoy admin `/config_dump` JSON turned into listeners, route configs and clusters, with Envoy's route selection.

Reads the `envoy.admin.v3` dump sections and their `envoy.admin.v2alpha` twins: `BootstrapConfigDump` static
resources, `ClustersConfigDump`, `ListenersConfigDump`, `RoutesConfigDump` and `EndpointsConfigDump` (EDS endpoints
are kept only as endpoints of a cluster the dump also lists), plus the per-resource entries that
`/config_dump?resource=…` returns. Other `envoy.admin` sections (Secrets, ECDS, ScopedRoutes, …) are only recorded
by name in `EnvoyConfig.sections`. `configs` is read both as Envoy's list and as the map keyed by section name that
early Envoys printed (`"configs": {"listeners": {...}, "routes": {...}}`: `map<string, Any> configs` in
envoy/admin/v2alpha/config_dump.proto as added for Envoy 1.7); static entries that are the bare
Listener/Cluster/RouteConfiguration (Envoy 1.7, before the `StaticListener`-style wrappers) and Envoy 1.6's
`envoy.admin.v2.RouteConfigDump` are read too. Route configs come from RDS dumps and from
HTTP connection managers that carry an inline `route_config`; listeners name the RDS configs they use. Envoy writes
snake_case keys; camelCase keys (protobuf JSON from other tools) are accepted too.

A dump filtered with `?resource=` or `?mask=` may lack sections: `EnvoyConfig.has_routes` / `has_clusters` say
whether it can answer "is there a route / cluster for X", and a dump with no Listeners, Routes or Clusters section at
all raises `ConfigDumpWithoutRouting` (an InputError) instead of reading as an empty config.

`EnvoyConfig.select_route` mirrors Envoy's first-match routing closely enough to explain a 404: virtual host by
authority (exact domain, then the longest `*suffix`, the longest `prefix*`, then `*`), then the first route whose
path match and header matchers all hold. Query-parameter, `grpc`, runtime-fraction and dynamic-metadata matchers are
ignored (a route with them matches as if they held); a header range matcher never holds, and a route with no path
matcher it understands (`prefix`, `path`, `safe_regex`/`regex`, `path_separated_prefix`) never matches.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError

__all__ = [
    "Cluster",
    "ClusterWeight",
    "ConfigDumpWithoutRouting",
    "EnvoyConfig",
    "HeaderMatchKind",
    "HeaderMatcher",
    "Listener",
    "Route",
    "RouteConfig",
    "VirtualHost",
    "load_config_dump",
    "parse_config_dump",
]


class HeaderMatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    CONTAINS = "contains"
    REGEX = "regex"
    PRESENT = "present"
    ABSENT = "absent"
    OTHER = "other"  # range or unknown matchers: never evaluated as matching


@dataclass(frozen=True)
class HeaderMatcher:
    """One `route.match.headers[]` entry."""

    name: str
    kind: HeaderMatchKind
    value: str | None
    invert: bool
    ignore_case: bool = False
    treat_missing_as_empty: bool = False

    def matches(self, headers: Mapping[str, str]) -> bool:
        """Envoy's HeaderUtility::matchHeaders for one matcher; `headers` has lower-case keys."""
        actual = headers.get(self.name.lower())
        if actual is None and self.treat_missing_as_empty:
            actual = ""
        if actual is None:
            # A missing header fails every matcher, inverted or not, except the two presence tests that ask for
            # absence: present_match false, or present_match true with invert_match.
            if self.kind is HeaderMatchKind.PRESENT:
                return self.invert
            if self.kind is HeaderMatchKind.ABSENT:
                return not self.invert
            return False
        return self._value_matches(actual) != self.invert

    def _value_matches(self, actual: str) -> bool:
        kind = self.kind
        if kind is HeaderMatchKind.PRESENT:
            return True
        if kind is HeaderMatchKind.ABSENT or kind is HeaderMatchKind.OTHER or self.value is None:
            return False
        if kind is HeaderMatchKind.REGEX:
            return _regex_fullmatch(self.value, actual)
        expected = self.value.lower() if self.ignore_case else self.value
        subject = actual.lower() if self.ignore_case else actual
        if kind is HeaderMatchKind.EXACT:
            return subject == expected
        if kind is HeaderMatchKind.PREFIX:
            return subject.startswith(expected)
        if kind is HeaderMatchKind.SUFFIX:
            return subject.endswith(expected)
        return expected in subject


@dataclass(frozen=True)
class ClusterWeight:
    """A cluster a route sends traffic to. Headers are what Envoy adds for this cluster: the route's own
    `*_headers_to_add`, overridden by the weighted cluster's."""

    cluster: str
    weight: int
    request_headers_to_add: Mapping[str, str] = field(default_factory=dict, hash=False)
    response_headers_to_add: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Route:
    """One route of a virtual host, in Envoy's order (`index` counts from 0 within the virtual host)."""

    route_config: str
    virtual_host: str
    index: int
    name: str
    prefix: str | None
    path: str | None
    regex: str | None
    headers: tuple[HeaderMatcher, ...]
    clusters: tuple[ClusterWeight, ...]
    mirror_clusters: tuple[str, ...]
    direct_response_status: int | None
    prefix_separated: bool = False  # the prefix came from path_separated_prefix: it must end at a path segment
    case_sensitive: bool = True
    request_headers_to_add: Mapping[str, str] = field(default_factory=dict, hash=False)
    response_headers_to_add: Mapping[str, str] = field(default_factory=dict, hash=False)

    def _matchers(self, name: str, kind: HeaderMatchKind) -> Iterator[HeaderMatcher]:
        lowered = name.lower()
        return (m for m in self.headers if m.name.lower() == lowered and m.kind is kind and not m.invert)

    def header_exact(self, name: str) -> str | None:
        """The value header `name` must equal for this route, if the route requires one."""
        return next((m.value for m in self._matchers(name, HeaderMatchKind.EXACT)), None)

    def header_contains(self, name: str) -> str | None:
        """The substring header `name` must contain for this route, if the route requires one."""
        return next((m.value for m in self._matchers(name, HeaderMatchKind.CONTAINS)), None)

    def requires_absent(self, name: str) -> bool:
        """Whether the route only matches requests without header `name`."""
        lowered = name.lower()
        return any(
            m.name.lower() == lowered
            and (
                (m.kind is HeaderMatchKind.ABSENT and not m.invert) or (m.kind is HeaderMatchKind.PRESENT and m.invert)
            )
            for m in self.headers
        )

    def _path_matches(self, path: str) -> bool:
        """The path part of the route match. Exact and regex matches ignore the query string, as Envoy does."""
        without_query = path.split("?", 1)[0].split("#", 1)[0]
        fold = (lambda text: text) if self.case_sensitive else str.lower
        if self.prefix is not None:
            if not fold(path).startswith(fold(self.prefix)):
                return False
            if self.prefix_separated:
                remainder = without_query[len(self.prefix) :]
                return remainder == "" or remainder.startswith("/")
            return True
        if self.path is not None:
            return fold(without_query) == fold(self.path)
        if self.regex is not None:
            return _regex_fullmatch(self.regex, without_query)
        return False

    def matches(self, path: str, headers: Mapping[str, str]) -> bool:
        """Path match and every header matcher; header names in `headers` may be in any case."""
        if not self._path_matches(path):
            return False
        lowered = {name.lower(): value for name, value in headers.items()}
        return all(matcher.matches(lowered) for matcher in self.headers)

    def weights_by_cluster(self) -> dict[str, int]:
        """Traffic weight per cluster (summed if a cluster appears twice)."""
        weights: dict[str, int] = {}
        for cluster_weight in self.clusters:
            weights[cluster_weight.cluster] = weights.get(cluster_weight.cluster, 0) + cluster_weight.weight
        return weights


@dataclass(frozen=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class RouteConfig:
    name: str
    virtual_hosts: tuple[VirtualHost, ...]
    dynamic: bool
    version_info: str | None


@dataclass(frozen=True)
class Listener:
    name: str
    address: str | None
    port: int | None
    route_config_names: tuple[str, ...]
    dynamic: bool
    warming: bool = False  # only a warming state was dumped: Envoy is not serving it yet


@dataclass(frozen=True)
class Cluster:
    name: str
    type: str | None
    endpoints: tuple[str, ...]
    dynamic: bool
    warming: bool = False  # listed under dynamic_warming_clusters


class ConfigDumpWithoutRouting(InputError):
    """A real `/config_dump` (e.g. `?resource=dynamic_active_secrets` or `?mask=`) that holds no Listeners, Routes or
    Clusters section, so nothing a check reads. `sections` names what it did hold (`ECDS`, `Secrets`, …)."""

    def __init__(self, message: str, sections: frozenset[str]) -> None:
        super().__init__(message)
        self.sections = sections


# Envoy's own order of the dump sections (ConfigDump.configs docs); others follow by name.
_SECTION_ORDER = ("Bootstrap", "Clusters", "ECDS", "Endpoints", "Listeners", "ScopedRoutes", "Routes", "Secrets")


def _section_list(sections: Iterable[str]) -> str:
    rank = {name: index for index, name in enumerate(_SECTION_ORDER)}
    return ", ".join(sorted(sections, key=lambda name: (rank.get(name, len(rank)), name)))


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True)
class EnvoyConfig:
    listeners: tuple[Listener, ...]
    route_configs: tuple[RouteConfig, ...]
    clusters: tuple[Cluster, ...]
    # Dump sections the document held, by Envoy's message name without `ConfigDump` ("Listeners", "Routes",
    # "Clusters", "Bootstrap", "Endpoints", "Secrets", "ECDS", "ScopedRoutes", …); per-resource entries count as
    # their section.
    sections: frozenset[str] = frozenset()

    @property
    def has_listeners(self) -> bool:
        """Whether the dump lists Envoy's listeners (a Listeners section): the bootstrap alone does not."""
        return "Listeners" in self.sections

    @property
    def has_routes(self) -> bool:
        """Whether "no route for X" can be concluded: the dump holds a Routes section, or a Listeners section whose
        listeners carry every route config they use inline."""
        if "Routes" in self.sections:
            return True
        names = {name for listener in self.listeners for name in listener.route_config_names}
        return self.has_listeners and all(self.route_config(name) is not None for name in names)

    @property
    def has_clusters(self) -> bool:
        """Whether "no cluster X" can be concluded: the dump holds a Clusters section (static and CDS clusters)."""
        return "Clusters" in self.sections

    def missing_for_checks(self) -> str | None:
        """None when the dump holds routes and clusters; else what it holds and lacks, for an input problem:
        `holds only Listeners: no routes or clusters to check`."""
        missing = [what for what, held in (("routes", self.has_routes), ("clusters", self.has_clusters)) if not held]
        if not missing:
            return None
        if not self.has_listeners and not self.has_routes and not self.has_clusters:
            missing = ["listeners", *missing]
        held = _section_list(self.sections) or "no sections"
        return f"holds only {held}: no {_or_list(missing)} to check"

    def route_config(self, name: str) -> RouteConfig | None:
        return next((config for config in self.route_configs if config.name == name), None)

    def routes(self, route_config: str | None = None) -> Iterator[Route]:
        """Every route, in order; only those of `route_config` when given."""
        for config in self.route_configs:
            if route_config is not None and config.name != route_config:
                continue
            for virtual_host in config.virtual_hosts:
                yield from virtual_host.routes

    def cluster(self, name: str) -> Cluster | None:
        return next((cluster for cluster in self.clusters if cluster.name == name), None)

    def cluster_names(self) -> frozenset[str]:
        return frozenset(cluster.name for cluster in self.clusters)

    def routes_with_header_exact(self, header: str, value: str) -> list[Route]:
        """Routes that require header `header` to equal `value` (e.g. `seldon-model: iris`)."""
        return [route for route in self.routes() if route.header_exact(header) == value]

    def select_route(self, route_config: str, authority: str, path: str, headers: Mapping[str, str]) -> Route | None:
        """The route Envoy would pick for this request in `route_config`, or None (Envoy answers 404 `NR`)."""
        config = self.route_config(route_config)
        if config is None:
            return None
        virtual_host = _select_virtual_host(config.virtual_hosts, authority)
        if virtual_host is None:
            return None
        return next((route for route in virtual_host.routes if route.matches(path, headers)), None)


def _regex_fullmatch(pattern: str, subject: str) -> bool:
    """RE2 patterns as Python `re` patterns (the common subset agrees); a pattern `re` rejects matches nothing."""
    try:
        return re.fullmatch(pattern, subject) is not None
    except re.error:
        return False


def _host_candidates(authority: str) -> list[str]:
    host = authority.strip().lower()
    candidates = [host]
    if host.startswith("["):
        bracket = host.find("]")
        if bracket > 0 and bracket + 1 < len(host) and host[bracket + 1] == ":":
            candidates.append(host[: bracket + 1])
    elif host.count(":") == 1:
        candidates.append(host.rsplit(":", 1)[0])
    return candidates


def _select_virtual_host(virtual_hosts: Iterable[VirtualHost], authority: str) -> VirtualHost | None:
    hosts = tuple(virtual_hosts)
    # Envoy compares the whole Host header (port included) unless told to strip the port; trying both is a superset.
    for host in _host_candidates(authority):
        for virtual_host in hosts:
            if host in (domain.lower() for domain in virtual_host.domains):
                return virtual_host
        best: tuple[int, VirtualHost] | None = None
        for virtual_host in hosts:
            for domain in virtual_host.domains:
                domain = domain.lower()
                suffix_matches = domain != "*" and domain.startswith("*") and host.endswith(domain[1:])
                # A wildcard stands for at least one character.
                if suffix_matches and len(host) >= len(domain) and (best is None or len(domain) > best[0]):
                    best = (len(domain), virtual_host)
        if best is not None:
            return best[1]
        for virtual_host in hosts:
            for domain in virtual_host.domains:
                domain = domain.lower()
                prefix_matches = domain != "*" and domain.endswith("*") and host.startswith(domain[:-1])
                if prefix_matches and len(host) >= len(domain) and (best is None or len(domain) > best[0]):
                    best = (len(domain), virtual_host)
        if best is not None:
            return best[1]
    return next((virtual_host for virtual_host in hosts if "*" in virtual_host.domains), None)


# ---- reading the JSON -------------------------------------------------------------------------------------------

_CAMEL_KEY = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


_SNAKE_CACHE: dict[str, str] = {}
_SNAKE_CACHE_LIMIT = 65_536  # key names repeat in every resource; user-chosen metadata keys must not grow it forever


def _snake_key(key: object) -> object:
    if not isinstance(key, str):
        return key
    snake = _SNAKE_CACHE.get(key)
    if snake is None:
        snake = _CAMEL_BOUNDARY.sub("_", key).lower() if _CAMEL_KEY.fullmatch(key) else key
        if len(_SNAKE_CACHE) >= _SNAKE_CACHE_LIMIT:
            _SNAKE_CACHE.clear()
        _SNAKE_CACHE[key] = snake
    return snake


def _snake_keys(value: Any) -> Any:
    """The same JSON value with camelCase object keys turned into Envoy's snake_case (`routeConfigName`)."""
    if isinstance(value, dict):
        return {_snake_key(key): _snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snake_keys(item) for item in value]
    return value


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _maps(value: object) -> Iterator[Mapping[str, Any]]:
    return (item for item in _list(value) if isinstance(item, Mapping))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _uint32(value: object) -> int | None:
    """A proto `UInt32Value` (a cluster weight): a larger or negative number is no value Envoy could hold."""
    number = _integer(value)
    return number if number is not None and 0 <= number <= 0xFFFFFFFF else None


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _type_name(document: Mapping[str, Any]) -> str:
    """`type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig` → `DynamicRouteConfig`."""
    type_url = _text(document.get("@type")) or ""
    return type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1]


_KIND_SECTIONS: Mapping[str, str] = {
    "BootstrapConfigDump": "Bootstrap",
    "ListenersConfigDump": "Listeners",
    "StaticListener": "Listeners",
    "DynamicListener": "Listeners",
    "ClustersConfigDump": "Clusters",
    "StaticCluster": "Clusters",
    "DynamicCluster": "Clusters",
    "RoutesConfigDump": "Routes",
    "RouteConfigDump": "Routes",  # envoy.admin.v2, Envoy 1.6
    "StaticRouteConfig": "Routes",
    "DynamicRouteConfig": "Routes",
    "EndpointsConfigDump": "Endpoints",
    "StaticEndpointConfig": "Endpoints",
    "DynamicEndpointConfig": "Endpoints",
}


def _section_name(type_url: str) -> str | None:
    """The dump section a `configs` element belongs to (`…admin.v3.EcdsConfigDump.EcdsFilterConfig` → `ECDS`), or
    None when its type is no `envoy.admin` config dump message."""
    known = _KIND_SECTIONS.get(type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1])
    if known is not None:
        return known
    parts = type_url.rsplit("/", 1)[-1].split(".")
    if len(parts) < 4 or parts[:2] != ["envoy", "admin"] or not parts[3].endswith("ConfigDump"):
        return None
    name = parts[3].removesuffix("ConfigDump")
    return "ECDS" if name == "Ecds" else name or None


def _wrapped(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The resource of a static entry: `{"listener": {...}}` since Envoy 1.8, the bare resource in Envoy 1.7."""
    inner = entry.get(key)
    if isinstance(inner, Mapping):
        return inner
    return entry if "name" in entry else {}


def _parse_header_matcher(matcher: Mapping[str, Any]) -> HeaderMatcher:
    name = _text(matcher.get("name")) or ""
    invert = matcher.get("invert_match") is True
    missing_as_empty = matcher.get("treat_missing_header_as_empty") is True
    kind = HeaderMatchKind.OTHER
    value: str | None = None
    ignore_case = False
    if "string_match" in matcher:
        string_match = _map(matcher["string_match"])
        ignore_case = string_match.get("ignore_case") is True
        for key, candidate_kind in (
            ("exact", HeaderMatchKind.EXACT),
            ("prefix", HeaderMatchKind.PREFIX),
            ("suffix", HeaderMatchKind.SUFFIX),
            ("contains", HeaderMatchKind.CONTAINS),
        ):
            if key in string_match:
                kind, value = candidate_kind, _text(string_match[key])
                break
        else:
            if "safe_regex" in string_match:
                kind, value = HeaderMatchKind.REGEX, _text(_map(string_match["safe_regex"]).get("regex"))
    elif "present_match" in matcher:
        kind = HeaderMatchKind.PRESENT if matcher["present_match"] is True else HeaderMatchKind.ABSENT
    elif "safe_regex_match" in matcher:
        kind, value = HeaderMatchKind.REGEX, _text(_map(matcher["safe_regex_match"]).get("regex"))
    elif "regex_match" in matcher:  # v2
        kind, value = HeaderMatchKind.REGEX, _text(matcher["regex_match"])
    elif "range_match" in matcher:
        bounds = _map(matcher["range_match"])
        kind, value = HeaderMatchKind.OTHER, f"[{bounds.get('start')},{bounds.get('end')})"
    else:
        for key, candidate_kind in (
            ("exact_match", HeaderMatchKind.EXACT),
            ("prefix_match", HeaderMatchKind.PREFIX),
            ("suffix_match", HeaderMatchKind.SUFFIX),
            ("contains_match", HeaderMatchKind.CONTAINS),
        ):
            if key in matcher:
                kind, value = candidate_kind, _text(matcher[key])
                break
        else:
            # A matcher with only a name matches any request that carries the header.
            kind = HeaderMatchKind.PRESENT
    return HeaderMatcher(
        name=name,
        kind=kind,
        value=value,
        invert=invert,
        ignore_case=ignore_case,
        treat_missing_as_empty=missing_as_empty,
    )


def _header_value(header: Mapping[str, Any]) -> str:
    value = _text(header.get("value"))
    if value is not None:
        return value
    raw_value = _text(header.get("raw_value"))  # bytes field: base64 in protobuf JSON
    if raw_value is not None:
        try:
            return base64.b64decode(raw_value, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return raw_value
    return ""


def _headers_to_add(options: object) -> dict[str, str]:
    headers: dict[str, str] = {}
    for option in _maps(options):
        header = _map(option.get("header"))
        key = _text(header.get("key"))
        if key:
            headers[key.lower()] = _header_value(header)
    return headers


def _parse_route(route_config: str, virtual_host: str, index: int, route: Mapping[str, Any]) -> Route:
    match = _map(route.get("match"))
    prefix = _text(match.get("prefix"))
    separated = _text(match.get("path_separated_prefix"))
    regex = _text(_map(match.get("safe_regex")).get("regex")) or _text(match.get("regex"))
    route_request_headers = _headers_to_add(route.get("request_headers_to_add"))
    route_response_headers = _headers_to_add(route.get("response_headers_to_add"))
    action = _map(route.get("route"))
    clusters: list[ClusterWeight] = []
    weighted = _map(action.get("weighted_clusters"))
    if weighted:
        for split in _maps(weighted.get("clusters")):
            name = _text(split.get("name"))
            if name is None:
                continue
            clusters.append(
                ClusterWeight(
                    cluster=name,
                    weight=_uint32(split.get("weight")) or 0,
                    request_headers_to_add={
                        **route_request_headers,
                        **_headers_to_add(split.get("request_headers_to_add")),
                    },
                    response_headers_to_add={
                        **route_response_headers,
                        **_headers_to_add(split.get("response_headers_to_add")),
                    },
                )
            )
    elif _text(action.get("cluster")) is not None:
        clusters.append(
            ClusterWeight(
                cluster=str(action["cluster"]),
                weight=1,
                request_headers_to_add=dict(route_request_headers),
                response_headers_to_add=dict(route_response_headers),
            )
        )
    mirror_policies = list(_maps(action.get("request_mirror_policies")))
    mirror_policies += list(_maps([action.get("request_mirror_policy")]))  # v2 singular form
    mirrors = tuple(name for name in (_text(policy.get("cluster")) for policy in mirror_policies) if name)
    case_sensitive = match.get("case_sensitive")
    return Route(
        route_config=route_config,
        virtual_host=virtual_host,
        index=index,
        name=_text(route.get("name")) or "",
        prefix=prefix if prefix is not None else separated,
        path=_text(match.get("path")),
        regex=regex,
        headers=tuple(_parse_header_matcher(matcher) for matcher in _maps(match.get("headers"))),
        clusters=tuple(clusters),
        mirror_clusters=mirrors,
        direct_response_status=_integer(_map(route.get("direct_response")).get("status")),
        prefix_separated=prefix is None and separated is not None,
        case_sensitive=case_sensitive is not False,
        request_headers_to_add=route_request_headers,
        response_headers_to_add=route_response_headers,
    )


def _parse_route_config(
    document: Mapping[str, Any], dynamic: bool, version_info: str | None, fallback_name: str = ""
) -> RouteConfig:
    name = _text(document.get("name")) or fallback_name
    virtual_hosts = []
    for virtual_host in _maps(document.get("virtual_hosts")):
        host_name = _text(virtual_host.get("name")) or ""
        routes = tuple(
            _parse_route(name, host_name, index, route) for index, route in enumerate(_maps(virtual_host.get("routes")))
        )
        domains = tuple(domain for domain in _list(virtual_host.get("domains")) if isinstance(domain, str))
        virtual_hosts.append(VirtualHost(name=host_name, domains=domains, routes=routes))
    return RouteConfig(name=name, virtual_hosts=tuple(virtual_hosts), dynamic=dynamic, version_info=version_info)


def _format_address(address: Mapping[str, Any]) -> tuple[str | None, int | None]:
    socket = _map(address.get("socket_address"))
    if socket:
        host = _text(socket.get("address"))
        port = _integer(socket.get("port_value"))
        return host, port
    pipe = _text(_map(address.get("pipe")).get("path"))
    if pipe is not None:
        return f"unix:{pipe}", None
    internal = _text(_map(address.get("envoy_internal_address")).get("server_listener_name"))
    return internal, None


def _endpoint_text(address: Mapping[str, Any]) -> str | None:
    host, port = _format_address(address)
    if host is None:
        return None
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host and not host.startswith("unix:") else f"{host}:{port}"


def _load_assignment_endpoints(assignment: Mapping[str, Any]) -> list[str]:
    endpoints: list[str] = []
    for locality in _maps(assignment.get("endpoints")):
        for lb_endpoint in _maps(locality.get("lb_endpoints")):
            text = _endpoint_text(_map(_map(lb_endpoint.get("endpoint")).get("address")))
            if text is not None:
                endpoints.append(text)
    return endpoints


def _http_connection_managers(listener: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    chains = list(_maps(listener.get("filter_chains")))
    chains += list(_maps([listener.get("default_filter_chain")]))
    for chain in chains:
        for network_filter in _maps(chain.get("filters")):
            config = _map(network_filter.get("typed_config")) or _map(network_filter.get("config"))
            if _type_name(config) == "TypedStruct":
                config = _map(config.get("value"))
            if "rds" in config or "route_config" in config:
                yield config


@dataclass(frozen=True)
class _ClusterParts:
    """What the EnvoyConfig keeps of a cluster document; EDS endpoints are added when the config is built."""

    type: str | None
    endpoints: tuple[str, ...]
    dynamic: bool
    warming: bool


def _cluster_parts(document: Mapping[str, Any], dynamic: bool, warming: bool) -> tuple[str | None, _ClusterParts]:
    endpoints = _load_assignment_endpoints(_map(document.get("load_assignment")))
    endpoints += [text for text in (_endpoint_text(host) for host in _maps(document.get("hosts"))) if text]
    cluster_type = _text(document.get("type")) or _text(_map(document.get("cluster_type")).get("name"))
    return _text(document.get("name")), _ClusterParts(cluster_type, tuple(endpoints), dynamic, warming)


@dataclass
class _Collector:
    """Pieces gathered from the dump sections, deduplicated by name, first seen wins. Clusters are kept as their
    parts, not their documents, so a streamed dump never holds its cluster JSON."""

    listeners: dict[str, Listener] = field(default_factory=dict)
    route_configs: dict[str, RouteConfig] = field(default_factory=dict)
    inline_route_configs: list[RouteConfig] = field(default_factory=list)
    clusters: dict[str, _ClusterParts] = field(default_factory=dict)
    eds_endpoints: dict[str, list[str]] = field(default_factory=dict)
    sections: set[str] = field(default_factory=set)

    def note_section(self, type_url: object) -> None:
        section = _section_name(_text(type_url) or "")
        if section is not None:
            self.sections.add(section)

    def add_listener(self, document: Mapping[str, Any], dynamic: bool, warming: bool = False) -> None:
        name = _text(document.get("name"))
        if name is None or name in self.listeners:
            return
        host, port = _format_address(_map(document.get("address")))
        route_names: list[str] = []
        for manager in _http_connection_managers(document):
            rds_name = _text(_map(manager.get("rds")).get("route_config_name"))
            if rds_name is not None:
                route_names.append(rds_name)
            inline = _map(manager.get("route_config"))
            if inline:
                config = _parse_route_config(inline, dynamic, None, fallback_name=f"{name}:inline")
                self.inline_route_configs.append(config)
                route_names.append(config.name)
        self.listeners[name] = Listener(
            name=name,
            address=host,
            port=port,
            route_config_names=tuple(dict.fromkeys(route_names)),
            dynamic=dynamic,
            warming=warming,
        )

    def add_route_config(self, document: Mapping[str, Any], dynamic: bool, version_info: object) -> None:
        self.keep_route_config(_parse_route_config(document, dynamic, _text(version_info)))

    def keep_route_config(self, config: RouteConfig) -> None:
        self.route_configs.setdefault(config.name, config)

    def add_cluster(self, document: Mapping[str, Any], dynamic: bool, warming: bool = False) -> None:
        self.keep_cluster(*_cluster_parts(document, dynamic, warming))

    def keep_cluster(self, name: str | None, parts: _ClusterParts) -> None:
        if name is not None and name not in self.clusters:
            self.clusters[name] = parts

    def add_endpoints(self, assignment: Mapping[str, Any]) -> None:
        self.keep_endpoints(_text(assignment.get("cluster_name")), _load_assignment_endpoints(assignment))

    def keep_endpoints(self, name: str | None, endpoints: list[str]) -> None:
        if name is not None:
            self.eds_endpoints.setdefault(name, []).extend(endpoints)

    def build(self) -> EnvoyConfig:
        route_configs = dict(self.route_configs)
        for config in self.inline_route_configs:
            route_configs.setdefault(config.name, config)
        clusters = [
            Cluster(
                name=name,
                type=parts.type,
                endpoints=tuple(dict.fromkeys([*parts.endpoints, *self.eds_endpoints.get(name, [])])),
                dynamic=parts.dynamic,
                warming=parts.warming,
            )
            for name, parts in self.clusters.items()
        ]
        return EnvoyConfig(
            listeners=tuple(self.listeners.values()),
            route_configs=tuple(route_configs.values()),
            clusters=tuple(clusters),
            sections=frozenset(self.sections),
        )


def _read_section(collector: _Collector, section: Mapping[str, Any]) -> None:
    collector.note_section(section.get("@type"))
    kind = _type_name(section)
    if kind == "BootstrapConfigDump":
        static = _map(_map(section.get("bootstrap")).get("static_resources"))
        for listener in _maps(static.get("listeners")):
            collector.add_listener(listener, dynamic=False)
        for cluster in _maps(static.get("clusters")):
            collector.add_cluster(cluster, dynamic=False)
    elif kind == "ListenersConfigDump":
        for entry in _maps(section.get("static_listeners")):
            collector.add_listener(_wrapped(entry, "listener"), dynamic=False)
        for entry in _maps(section.get("dynamic_listeners")):
            _read_dynamic_listener(collector, entry)
        for entry in _maps(section.get("dynamic_active_listeners")):  # v2alpha
            collector.add_listener(_map(entry.get("listener")), dynamic=True)
        for entry in _maps(section.get("dynamic_warming_listeners")):  # v2alpha
            collector.add_listener(_map(entry.get("listener")), dynamic=True, warming=True)
    elif kind == "ClustersConfigDump":
        for entry in _maps(section.get("static_clusters")):
            collector.add_cluster(_wrapped(entry, "cluster"), dynamic=False)
        for entry in _maps(section.get("dynamic_active_clusters")):
            collector.add_cluster(_map(entry.get("cluster")), dynamic=True)
        for entry in _maps(section.get("dynamic_warming_clusters")):
            collector.add_cluster(_map(entry.get("cluster")), dynamic=True, warming=True)
    elif kind == "RoutesConfigDump":
        for entry in _maps(section.get("static_route_configs")):
            collector.add_route_config(_wrapped(entry, "route_config"), dynamic=False, version_info=None)
        for entry in _maps(section.get("dynamic_route_configs")):
            collector.add_route_config(_map(entry.get("route_config")), True, entry.get("version_info"))
    elif kind == "RouteConfigDump":  # envoy.admin.v2 (Envoy 1.6): bare RouteConfigurations, no versions
        for document in _maps(section.get("static_route_configs")):
            collector.add_route_config(document, dynamic=False, version_info=None)
        for document in _maps(section.get("dynamic_route_configs")):
            collector.add_route_config(document, dynamic=True, version_info=None)
    elif kind == "EndpointsConfigDump":
        for key in ("static_endpoint_configs", "dynamic_endpoint_configs"):
            for entry in _maps(section.get(key)):
                collector.add_endpoints(_map(entry.get("endpoint_config")))
    else:
        _read_single_resource(collector, kind, section)


def _read_dynamic_listener(collector: _Collector, entry: Mapping[str, Any]) -> None:
    active = _map(_map(entry.get("active_state")).get("listener"))
    if active:
        collector.add_listener(active, dynamic=True)
        return
    warming = _map(_map(entry.get("warming_state")).get("listener"))
    if warming:
        collector.add_listener(warming, dynamic=True, warming=True)


def _read_single_resource(collector: _Collector, kind: str, entry: Mapping[str, Any]) -> None:
    """Entries of `/config_dump?resource=…`, which lists resources one by one instead of whole sections."""
    if kind == "StaticListener":
        collector.add_listener(_map(entry.get("listener")), dynamic=False)
    elif kind == "DynamicListener":
        _read_dynamic_listener(collector, entry)
    elif kind == "StaticCluster":
        collector.add_cluster(_map(entry.get("cluster")), dynamic=False)
    elif kind == "DynamicCluster":
        collector.add_cluster(_map(entry.get("cluster")), dynamic=True)
    elif kind == "StaticRouteConfig":
        collector.add_route_config(_map(entry.get("route_config")), dynamic=False, version_info=None)
    elif kind == "DynamicRouteConfig":
        collector.add_route_config(_map(entry.get("route_config")), True, entry.get("version_info"))
    elif kind in ("StaticEndpointConfig", "DynamicEndpointConfig"):
        collector.add_endpoints(_map(entry.get("endpoint_config")))


def parse_config_dump(document: Mapping[str, Any]) -> EnvoyConfig:
    """Read a parsed `/config_dump`. Raises InputError when the document is not one, and its subclass
    ConfigDumpWithoutRouting when it is one without Listeners, Routes or Clusters section."""
    return _require_routing(_parse_document(document))


_NOT_A_DUMP = "not an Envoy config_dump: 'configs' holds no envoy.admin config dump section"


def _parse_document(document: Mapping[str, Any]) -> EnvoyConfig:
    if not isinstance(document, Mapping):
        raise InputError("not an Envoy config_dump: the top level is not a JSON object")
    configs = document.get("configs")
    if isinstance(configs, Mapping):  # Envoy 1.7-1.9: sections keyed by name ("listeners", "routes", ...)
        configs = list(configs.values())
    if not isinstance(configs, list):
        raise InputError("not an Envoy config_dump: no top-level 'configs' list or map")
    collector = _Collector()
    for section in configs:
        if isinstance(section, Mapping):
            _read_section(collector, _snake_keys(section))
    if not collector.sections:
        raise InputError(_NOT_A_DUMP)
    return collector.build()


def _require_routing(config: EnvoyConfig) -> EnvoyConfig:
    if config.has_listeners or config.has_routes or config.has_clusters:
        return config
    raise ConfigDumpWithoutRouting(config.missing_for_checks() or _NOT_A_DUMP, config.sections)


def load_config_dump(path: Path) -> EnvoyConfig:
    """Read a `/config_dump` JSON file. Raises InputError naming the file when it cannot be read or is not a dump,
    and its subclass ConfigDumpWithoutRouting (`<path>: holds only ECDS, Secrets: no listeners, routes or clusters to
    check`) when it is a dump with no Listeners, Routes or Clusters section.

    The file is streamed (ijson): each route, cluster and endpoint entry is turned into its small parsed form as
    soon as it is read, so memory follows what the EnvoyConfig keeps, not the size of the JSON. A file the
    streaming reader cannot take exactly as `json.load` would (a syntax error, duplicate keys on the way to the
    resources, a lone surrogate escape, a section whose `@type` is not its first key), or in a shape it does not
    stream (the map form of `configs`, bare RouteConfiguration entries), is read whole instead, which gives the same
    result or the same error. A leading UTF-8 byte-order mark is dropped, as `utf-8-sig` does.
    """
    try:
        config = _stream_config_dump(path)
    except _NotStreamable:
        config = _load_whole(path)
    try:
        return _require_routing(config)
    except ConfigDumpWithoutRouting as error:
        raise ConfigDumpWithoutRouting(f"{path}: {error}", error.sections) from None


def _load_whole(path: Path) -> EnvoyConfig:
    try:
        with path.open("r", encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except OSError as error:
        raise InputError(f"{path}: cannot read config_dump ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: config_dump is not UTF-8 text") from error
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: config_dump is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error
    except RecursionError as error:
        raise InputError(f"{path}: config_dump JSON is nested too deeply") from error
    try:
        return _parse_document(document)
    except InputError as error:
        raise InputError(f"{path}: {error}") from error


# ---- streaming ----------------------------------------------------------------------------------------------------


class _NotStreamable(Exception):
    """The streaming reader cannot promise json.load's result for this file: read it whole instead."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_READ_SIZE = 1 << 18


class _CheckedReader:
    """Binary reader for ijson that drops a UTF-8 byte-order mark (as `utf-8-sig` does) and gives up on surrogate
    escapes, which yajl would turn into `?` where `json` keeps them."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._tail = b""
        self._first = True

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson asks for nothing to learn whether the file gives bytes or text
        data: bytes = self._raw.read(size if size > 0 else _READ_SIZE)
        if self._first:
            self._first = False
            data = data.removeprefix(b"\xef\xbb\xbf")
        window = self._tail + data
        if b"\\u" in window and _SURROGATE_ESCAPE.search(window):
            raise _NotStreamable
        self._tail = data[-6:]
        return data


_GROUPS: Mapping[str, tuple[str, ...]] = {
    "ListenersConfigDump": (
        "static_listeners",
        "dynamic_listeners",
        "dynamic_active_listeners",
        "dynamic_warming_listeners",
    ),
    "ClustersConfigDump": ("static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters"),
    "RoutesConfigDump": ("static_route_configs", "dynamic_route_configs"),
    "EndpointsConfigDump": ("static_endpoint_configs", "dynamic_endpoint_configs"),
}
_ROUTE_RESOURCES = ("StaticRouteConfig", "DynamicRouteConfig")


def _stream_config_dump(path: Path) -> EnvoyConfig:
    try:
        import ijson
    except ImportError:
        raise _NotStreamable from None
    try:
        with path.open("rb") as raw:
            events = _Events(ijson.basic_parse(_CheckedReader(raw), use_float=True, buf_size=_READ_SIZE))
            collector = _read_document(events)
            events.expect_end()
    except (ijson.JSONError, OSError, UnicodeDecodeError, RecursionError, ValueError) as error:
        raise _NotStreamable from error
    if not collector.sections:
        raise _NotStreamable
    return collector.build()


class _Events:
    """ijson's basic events with the few reads the streaming reader needs."""

    def __init__(self, events: Iterator[tuple[str, Any]]) -> None:
        self._events = events

    def next(self) -> tuple[str, Any]:
        try:
            return next(self._events)
        except StopIteration:
            raise _NotStreamable from None

    def expect_end(self) -> None:
        for _ in self._events:
            raise _NotStreamable

    def value(self, start: str, first: Any) -> Any:
        """The JSON value that starts with (start, first), as `_snake_keys(json.load(...))` would give it: keys are
        snake-cased while building. Two keys of one object that end up the same (a repeated key, or `fooBar` beside
        `foo_bar`) cannot be streamed: which one json keeps depends on their order."""
        if start == "start_map":
            root: Any = {}
        elif start == "start_array":
            root = []
        else:
            return first
        stack: list[Any] = [root]
        parent: Any = root
        in_map = start == "start_map"
        key: Any = None
        cache = _SNAKE_CACHE
        for event, item in self._events:
            if event == "map_key":
                key = cache.get(item)
                if key is None:
                    key = _snake_key(item)
                if key in parent:
                    raise _NotStreamable
                continue
            if event == "start_map" or event == "start_array":
                child: Any = {} if event == "start_map" else []
                if in_map:
                    parent[key] = child
                else:
                    parent.append(child)
                stack.append(child)
                parent = child
                in_map = event == "start_map"
            elif event == "end_map" or event == "end_array":
                stack.pop()
                if not stack:
                    return root
                parent = stack[-1]
                in_map = type(parent) is dict
            elif in_map:
                parent[key] = item
            else:
                parent.append(item)
        raise _NotStreamable

    def skip(self, start: str) -> None:
        if start != "start_map" and start != "start_array":
            return
        depth = 1
        for event, _ in self._events:
            if event == "start_map" or event == "start_array":
                depth += 1
            elif event == "end_map" or event == "end_array":
                depth -= 1
                if depth == 0:
                    return
        raise _NotStreamable

    def map_keys(self) -> Iterator[str]:
        """Keys of the map just opened, snake-cased as `_snake_keys` does; a repeated key cannot be streamed (json
        keeps the last one)."""
        seen: set[object] = set()
        while True:
            event, key = self.next()
            if event == "end_map":
                return
            snake = _snake_key(key)
            if snake in seen:
                raise _NotStreamable
            seen.add(snake)
            yield str(snake)

    def array_items(self) -> Iterator[tuple[str, Any]]:
        """(event, first value) of each element of the array just opened."""
        while True:
            event, value = self.next()
            if event == "end_array":
                return
            yield event, value


def _read_document(events: _Events) -> _Collector:
    event, _ = events.next()
    if event != "start_map":
        raise _NotStreamable
    collector = _Collector()
    found = False
    seen: set[str] = set()
    while True:
        event, key = events.next()
        if event == "end_map":
            break
        if key in seen:
            raise _NotStreamable
        seen.add(key)
        event, value = events.next()
        if key != "configs":
            events.skip(event)
            continue
        if event != "start_array":
            raise _NotStreamable
        found = True
        for event, value in events.array_items():
            if event == "start_map":
                _stream_section(events, collector)
            else:
                events.skip(event)
    if not found:
        raise _NotStreamable
    return collector


def _stream_section(events: _Events, collector: _Collector) -> None:
    """One element of `configs`: the big sections resource by resource, any other section built whole and read by
    `_read_section`; resources are applied in the order `_read_section` applies them, whatever the key order."""
    event, key = events.next()
    if event == "end_map":
        _read_section(collector, {})
        return
    event, type_url = events.next()
    if key != "@type" or event != "string":
        raise _NotStreamable  # Envoy writes `@type` first; anything else is read whole
    kind = type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    if kind in _ROUTE_RESOURCES:
        collector.keep_route_config(_stream_route_entry(events, dynamic=kind == "DynamicRouteConfig"))
        collector.note_section(type_url)
        return
    groups = _GROUPS.get(kind)
    if groups is None:
        section: dict[str, Any] = {"@type": type_url}
        for name in events.map_keys():
            if name == "@type":
                raise _NotStreamable
            event, value = events.next()
            section[name] = events.value(event, value)
        _read_section(collector, section)
        return
    found: dict[str, list[Any]] = {}
    for name in events.map_keys():
        if name == "@type":
            raise _NotStreamable
        event, _ = events.next()
        if name in groups and event == "start_array":
            found[name] = list(_stream_entries(events, kind, name))
        else:
            events.skip(event)
    for name in groups:
        for entry in found.get(name, ()):
            _apply(collector, kind, name, entry)
    collector.note_section(type_url)


def _stream_entries(events: _Events, kind: str, group: str) -> Iterator[Any]:
    """The parsed form of each entry of one resource list (route configs are streamed route by route)."""
    for event, value in events.array_items():
        if event != "start_map":
            events.skip(event)
            continue
        if kind == "RoutesConfigDump":
            yield _stream_route_entry(events, dynamic=group == "dynamic_route_configs")
            continue
        entry = events.value(event, value)
        if kind == "ClustersConfigDump":
            dynamic = group != "static_clusters"
            document = _wrapped(entry, "cluster") if group == "static_clusters" else _map(entry.get("cluster"))
            yield _cluster_parts(document, dynamic, group == "dynamic_warming_clusters")
        elif kind == "EndpointsConfigDump":
            assignment = _map(entry.get("endpoint_config"))
            yield _text(assignment.get("cluster_name")), _load_assignment_endpoints(assignment)
        else:
            yield entry


def _apply(collector: _Collector, kind: str, group: str, entry: Any) -> None:
    if kind == "ListenersConfigDump":
        if group == "static_listeners":
            collector.add_listener(_wrapped(entry, "listener"), dynamic=False)
        elif group == "dynamic_listeners":
            _read_dynamic_listener(collector, entry)
        else:
            warming = group == "dynamic_warming_listeners"
            collector.add_listener(_map(entry.get("listener")), dynamic=True, warming=warming)
    elif kind == "ClustersConfigDump":
        collector.keep_cluster(*entry)
    elif kind == "RoutesConfigDump":
        collector.keep_route_config(entry)
    else:
        collector.keep_endpoints(*entry)


def _stream_route_entry(events: _Events, dynamic: bool) -> RouteConfig:
    """A `{version_info, route_config, last_updated}` entry (or the same as a `?resource=` section) whose map is
    open; only dynamic entries keep their version, as `_read_section` does."""
    version: Any = None
    name: Any = None
    virtual_hosts: list[VirtualHost] = []
    for key in events.map_keys():
        if key in ("@type", "name", "virtual_hosts"):
            raise _NotStreamable  # a bare RouteConfiguration entry (Envoy 1.7): read whole
        event, value = events.next()
        if key == "version_info":
            version = events.value(event, value)
        elif key == "route_config" and event == "start_map":
            name, virtual_hosts = _stream_route_config(events, dynamic)
        elif key == "route_config":
            document = _map(events.value(event, value))
            config = _parse_route_config(document, dynamic, None)
            name, virtual_hosts = document.get("name"), list(config.virtual_hosts)
        else:
            events.skip(event)
    return RouteConfig(
        name=_text(name) or "",
        virtual_hosts=tuple(virtual_hosts),
        dynamic=dynamic,
        version_info=_text(version) if dynamic else None,
    )


def _stream_route_config(events: _Events, dynamic: bool) -> tuple[Any, list[VirtualHost]]:
    """(the `name` value, virtual hosts) of an open RouteConfiguration map, routes parsed one at a time."""
    name: Any = None
    virtual_hosts: list[VirtualHost] = []
    for key in events.map_keys():
        event, value = events.next()
        if key == "name":
            name = events.value(event, value)
        elif key == "virtual_hosts" and event == "start_array":
            for item_event, item in events.array_items():
                if item_event == "start_map":
                    virtual_hosts.append(_stream_virtual_host(events, _text(name) or ""))
                else:
                    events.skip(item_event)
        else:
            events.skip(event)
    final = _text(name) or ""
    for index, host in enumerate(virtual_hosts):
        if any(route.route_config != final for route in host.routes):
            routes = tuple(replace(route, route_config=final) for route in host.routes)
            virtual_hosts[index] = replace(host, routes=routes)
    return name, virtual_hosts


def _stream_virtual_host(events: _Events, route_config: str) -> VirtualHost:
    name: Any = None
    domains: Any = None
    routes: list[Route] = []
    for key in events.map_keys():
        event, value = events.next()
        if key == "name":
            name = events.value(event, value)
        elif key == "domains":
            domains = events.value(event, value)
        elif key == "routes" and event == "start_array":
            for item_event, item in events.array_items():
                if item_event != "start_map":
                    events.skip(item_event)
                    continue
                document = events.value(item_event, item)
                routes.append(_parse_route(route_config, _text(name) or "", len(routes), document))
        else:
            events.skip(event)
    host_name = _text(name) or ""
    if any(route.virtual_host != host_name for route in routes):
        routes = [replace(route, virtual_host=host_name) for route in routes]
    return VirtualHost(
        name=host_name,
        domains=tuple(domain for domain in _list(domains) if isinstance(domain, str)),
        routes=tuple(routes),
    )
