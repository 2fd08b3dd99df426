"""The data model of an Envoy `/config_dump`: listeners, route configurations with their virtual hosts, routes and
header matchers, clusters, and the `EnvoyConfig` that holds them with the questions checks ask of it (which routes
require a header value, which sections the dump held, which route a request would take).

Values only: reading a dump into them is `document` / `streaming`, and what a match means is `selection`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config.selection import (
    HeaderMatchKind,
    first_matching_route,
    header_matches,
    route_matches,
    select_virtual_host,
)

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
]


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
        return header_matches(self, headers)


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
    # The route action's `timeout` as dumped (`"60s"`), None when the route sets none: then Envoy's default, 15 s,
    # applies (RouteAction.timeout); `timeout_ms` is its value, 0.0 meaning disabled, None when absent or not a
    # duration Envoy could hold.
    timeout_text: str | None = None
    timeout_ms: float | None = None

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

    def matches(self, path: str, headers: Mapping[str, str]) -> bool:
        """Path match and every header matcher; header names in `headers` may be in any case."""
        return route_matches(self, path, headers)

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
        virtual_host = select_virtual_host(config.virtual_hosts, authority)
        if virtual_host is None:
            return None
        return first_matching_route(virtual_host.routes, path, headers)
