"""A loaded `/config_dump` document (what `json.load` gives) read into an `EnvoyConfig`: the `configs` sections
and per-resource entries, gathered by a `Collector` that keeps the first of each name.

Reads the `envoy.admin.v3` dump sections and their `envoy.admin.v2alpha` twins: `BootstrapConfigDump` static
resources, `ClustersConfigDump`, `ListenersConfigDump`, `RoutesConfigDump` and `EndpointsConfigDump` (EDS endpoints
are kept only as endpoints of a cluster the dump also lists), plus the per-resource entries that
`/config_dump?resource=…` returns. Other `envoy.admin` sections (Secrets, ECDS, ScopedRoutes, …) are only recorded
by name in `EnvoyConfig.sections`. `configs` is read both as Envoy's list and as the map keyed by section name that
early Envoys printed (`"configs": {"listeners": {...}, "routes": {...}}`: `map<string, Any> configs` in
envoy/admin/v2alpha/config_dump.proto as added for Envoy 1.7); static entries that are the bare
Listener/Cluster/RouteConfiguration (Envoy 1.7, before the `StaticListener`-style wrappers) and Envoy 1.6's
`envoy.admin.v2.RouteConfigDump` are read too. Route configs come from RDS dumps and from HTTP connection managers
that carry an inline `route_config`; listeners name the RDS configs they use. The streaming reader feeds the same
`Collector` and `read_section`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config.model import (
    Cluster,
    ConfigDumpWithoutRouting,
    EnvoyConfig,
    Listener,
    RouteConfig,
)
from mlops_trace.parsers.envoy_config.protojson import as_map, as_maps, as_text, snake_keys, type_name
from mlops_trace.parsers.envoy_config.resources import (
    ClusterParts,
    cluster_parts,
    format_address,
    http_connection_managers,
    load_assignment_endpoints,
    parse_route_config,
)

__all__ = [
    "Collector",
    "parse_config_dump",
    "parse_document",
    "read_dynamic_listener",
    "read_section",
    "require_routing",
    "wrapped",
]


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


def wrapped(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The resource of a static entry: `{"listener": {...}}` since Envoy 1.8, the bare resource in Envoy 1.7."""
    inner = entry.get(key)
    if isinstance(inner, Mapping):
        return inner
    return entry if "name" in entry else {}


@dataclass
class Collector:
    """Pieces gathered from the dump sections, deduplicated by name, first seen wins. Clusters are kept as their
    parts, not their documents, so a streamed dump never holds its cluster JSON."""

    listeners: dict[str, Listener] = field(default_factory=dict)
    route_configs: dict[str, RouteConfig] = field(default_factory=dict)
    inline_route_configs: list[RouteConfig] = field(default_factory=list)
    clusters: dict[str, ClusterParts] = field(default_factory=dict)
    eds_endpoints: dict[str, list[str]] = field(default_factory=dict)
    sections: set[str] = field(default_factory=set)

    def note_section(self, type_url: object) -> None:
        section = _section_name(as_text(type_url) or "")
        if section is not None:
            self.sections.add(section)

    def add_listener(self, document: Mapping[str, Any], dynamic: bool, warming: bool = False) -> None:
        name = as_text(document.get("name"))
        if name is None or name in self.listeners:
            return
        host, port = format_address(as_map(document.get("address")))
        route_names: list[str] = []
        for manager in http_connection_managers(document):
            rds_name = as_text(as_map(manager.get("rds")).get("route_config_name"))
            if rds_name is not None:
                route_names.append(rds_name)
            inline = as_map(manager.get("route_config"))
            if inline:
                config = parse_route_config(inline, dynamic, None, fallback_name=f"{name}:inline")
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
        self.keep_route_config(parse_route_config(document, dynamic, as_text(version_info)))

    def keep_route_config(self, config: RouteConfig) -> None:
        self.route_configs.setdefault(config.name, config)

    def add_cluster(self, document: Mapping[str, Any], dynamic: bool, warming: bool = False) -> None:
        self.keep_cluster(*cluster_parts(document, dynamic, warming))

    def keep_cluster(self, name: str | None, parts: ClusterParts) -> None:
        if name is not None and name not in self.clusters:
            self.clusters[name] = parts

    def add_endpoints(self, assignment: Mapping[str, Any]) -> None:
        self.keep_endpoints(as_text(assignment.get("cluster_name")), load_assignment_endpoints(assignment))

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


def read_section(collector: Collector, section: Mapping[str, Any]) -> None:
    collector.note_section(section.get("@type"))
    kind = type_name(section)
    if kind == "BootstrapConfigDump":
        static = as_map(as_map(section.get("bootstrap")).get("static_resources"))
        for listener in as_maps(static.get("listeners")):
            collector.add_listener(listener, dynamic=False)
        for cluster in as_maps(static.get("clusters")):
            collector.add_cluster(cluster, dynamic=False)
    elif kind == "ListenersConfigDump":
        for entry in as_maps(section.get("static_listeners")):
            collector.add_listener(wrapped(entry, "listener"), dynamic=False)
        for entry in as_maps(section.get("dynamic_listeners")):
            read_dynamic_listener(collector, entry)
        for entry in as_maps(section.get("dynamic_active_listeners")):  # v2alpha
            collector.add_listener(as_map(entry.get("listener")), dynamic=True)
        for entry in as_maps(section.get("dynamic_warming_listeners")):  # v2alpha
            collector.add_listener(as_map(entry.get("listener")), dynamic=True, warming=True)
    elif kind == "ClustersConfigDump":
        for entry in as_maps(section.get("static_clusters")):
            collector.add_cluster(wrapped(entry, "cluster"), dynamic=False)
        for entry in as_maps(section.get("dynamic_active_clusters")):
            collector.add_cluster(as_map(entry.get("cluster")), dynamic=True)
        for entry in as_maps(section.get("dynamic_warming_clusters")):
            collector.add_cluster(as_map(entry.get("cluster")), dynamic=True, warming=True)
    elif kind == "RoutesConfigDump":
        for entry in as_maps(section.get("static_route_configs")):
            collector.add_route_config(wrapped(entry, "route_config"), dynamic=False, version_info=None)
        for entry in as_maps(section.get("dynamic_route_configs")):
            collector.add_route_config(as_map(entry.get("route_config")), True, entry.get("version_info"))
    elif kind == "RouteConfigDump":  # envoy.admin.v2 (Envoy 1.6): bare RouteConfigurations, no versions
        for document in as_maps(section.get("static_route_configs")):
            collector.add_route_config(document, dynamic=False, version_info=None)
        for document in as_maps(section.get("dynamic_route_configs")):
            collector.add_route_config(document, dynamic=True, version_info=None)
    elif kind == "EndpointsConfigDump":
        for key in ("static_endpoint_configs", "dynamic_endpoint_configs"):
            for entry in as_maps(section.get(key)):
                collector.add_endpoints(as_map(entry.get("endpoint_config")))
    else:
        _read_single_resource(collector, kind, section)


def read_dynamic_listener(collector: Collector, entry: Mapping[str, Any]) -> None:
    active = as_map(as_map(entry.get("active_state")).get("listener"))
    if active:
        collector.add_listener(active, dynamic=True)
        return
    warming = as_map(as_map(entry.get("warming_state")).get("listener"))
    if warming:
        collector.add_listener(warming, dynamic=True, warming=True)


def _read_single_resource(collector: Collector, kind: str, entry: Mapping[str, Any]) -> None:
    """Entries of `/config_dump?resource=…`, which lists resources one by one instead of whole sections."""
    if kind == "StaticListener":
        collector.add_listener(as_map(entry.get("listener")), dynamic=False)
    elif kind == "DynamicListener":
        read_dynamic_listener(collector, entry)
    elif kind == "StaticCluster":
        collector.add_cluster(as_map(entry.get("cluster")), dynamic=False)
    elif kind == "DynamicCluster":
        collector.add_cluster(as_map(entry.get("cluster")), dynamic=True)
    elif kind == "StaticRouteConfig":
        collector.add_route_config(as_map(entry.get("route_config")), dynamic=False, version_info=None)
    elif kind == "DynamicRouteConfig":
        collector.add_route_config(as_map(entry.get("route_config")), True, entry.get("version_info"))
    elif kind in ("StaticEndpointConfig", "DynamicEndpointConfig"):
        collector.add_endpoints(as_map(entry.get("endpoint_config")))


def parse_config_dump(document: Mapping[str, Any]) -> EnvoyConfig:
    """Read a parsed `/config_dump`. Raises InputError when the document is not one, and its subclass
    ConfigDumpWithoutRouting when it is one without Listeners, Routes or Clusters section."""
    return require_routing(parse_document(document))


_NOT_A_DUMP = "not an Envoy config_dump: 'configs' holds no envoy.admin config dump section"


def parse_document(document: Mapping[str, Any]) -> EnvoyConfig:
    if not isinstance(document, Mapping):
        raise InputError("not an Envoy config_dump: the top level is not a JSON object")
    configs = document.get("configs")
    if isinstance(configs, Mapping):  # Envoy 1.7-1.9: sections keyed by name ("listeners", "routes", ...)
        configs = list(configs.values())
    if not isinstance(configs, list):
        raise InputError("not an Envoy config_dump: no top-level 'configs' list or map")
    collector = Collector()
    for section in configs:
        if isinstance(section, Mapping):
            read_section(collector, snake_keys(section))
    if not collector.sections:
        raise InputError(_NOT_A_DUMP)
    return collector.build()


def require_routing(config: EnvoyConfig) -> EnvoyConfig:
    if config.has_listeners or config.has_routes or config.has_clusters:
        return config
    raise ConfigDumpWithoutRouting(config.missing_for_checks() or _NOT_A_DUMP, config.sections)
