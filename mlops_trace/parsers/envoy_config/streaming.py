"""The streaming read of a large `/config_dump` file: ijson events turned into the same `EnvoyConfig` that
`document.parse_config_dump(json.load(...))` gives, without holding the whole JSON.

Each route, cluster and endpoint entry is turned into its small parsed form as soon as it is read (through the same
`resources` readers and `document.Collector`), so memory follows what the EnvoyConfig keeps, not the size of the
file. Whatever the reader cannot promise to read exactly as `json.load` would (a syntax error, duplicate keys on the
way to the resources, a lone surrogate escape, a section whose `@type` is not its first key, the map form of
`configs`, bare RouteConfiguration entries) raises `NotStreamable`, and `load` reads the file whole instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlops_trace.parsers.envoy_config.document import Collector, read_dynamic_listener, read_section, wrapped
from mlops_trace.parsers.envoy_config.model import EnvoyConfig, Route, RouteConfig, VirtualHost
from mlops_trace.parsers.envoy_config.protojson import SNAKE_CACHE, as_list, as_map, as_text, snake_key
from mlops_trace.parsers.envoy_config.resources import (
    cluster_parts,
    load_assignment_endpoints,
    parse_route,
    parse_route_config,
)

__all__ = ["NotStreamable", "stream_config_dump"]


class NotStreamable(Exception):
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
            raise NotStreamable
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


def stream_config_dump(path: Path) -> EnvoyConfig:
    """The dump at `path` read from ijson events, each route, cluster and endpoint entry parsed as soon as it is read;
    NotStreamable when the result might differ from `json.load`'s (then read it whole)."""
    try:
        import ijson
    except ImportError:
        raise NotStreamable from None
    try:
        with path.open("rb") as raw:
            events = _Events(ijson.basic_parse(_CheckedReader(raw), use_float=True, buf_size=_READ_SIZE))
            collector = _read_document(events)
            events.expect_end()
    except (ijson.JSONError, OSError, UnicodeDecodeError, RecursionError, ValueError) as error:
        raise NotStreamable from error
    if not collector.sections:
        raise NotStreamable
    return collector.build()


class _Events:
    """ijson's basic events with the few reads the streaming reader needs."""

    def __init__(self, events: Iterator[tuple[str, Any]]) -> None:
        self._events = events

    def next(self) -> tuple[str, Any]:
        try:
            return next(self._events)
        except StopIteration:
            raise NotStreamable from None

    def expect_end(self) -> None:
        for _ in self._events:
            raise NotStreamable

    def value(self, start: str, first: Any) -> Any:
        """The JSON value that starts with (start, first), as `snake_keys(json.load(...))` would give it: keys are
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
        cache = SNAKE_CACHE
        for event, item in self._events:
            if event == "map_key":
                key = cache.get(item)
                if key is None:
                    key = snake_key(item)
                if key in parent:
                    raise NotStreamable
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
        raise NotStreamable

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
        raise NotStreamable

    def map_keys(self) -> Iterator[str]:
        """Keys of the map just opened, snake-cased as `snake_keys` does; a repeated key cannot be streamed (json
        keeps the last one)."""
        seen: set[object] = set()
        while True:
            event, key = self.next()
            if event == "end_map":
                return
            snake = snake_key(key)
            if snake in seen:
                raise NotStreamable
            seen.add(snake)
            yield str(snake)

    def array_items(self) -> Iterator[tuple[str, Any]]:
        """(event, first value) of each element of the array just opened."""
        while True:
            event, value = self.next()
            if event == "end_array":
                return
            yield event, value


def _read_document(events: _Events) -> Collector:
    event, _ = events.next()
    if event != "start_map":
        raise NotStreamable
    collector = Collector()
    found = False
    seen: set[str] = set()
    while True:
        event, key = events.next()
        if event == "end_map":
            break
        if key in seen:
            raise NotStreamable
        seen.add(key)
        event, value = events.next()
        if key != "configs":
            events.skip(event)
            continue
        if event != "start_array":
            raise NotStreamable
        found = True
        for event, value in events.array_items():
            if event == "start_map":
                _stream_section(events, collector)
            else:
                events.skip(event)
    if not found:
        raise NotStreamable
    return collector


def _stream_section(events: _Events, collector: Collector) -> None:
    """One element of `configs`: the big sections resource by resource, any other section built whole and read by
    `read_section`; resources are applied in the order `read_section` applies them, whatever the key order."""
    event, key = events.next()
    if event == "end_map":
        read_section(collector, {})
        return
    event, type_url = events.next()
    if key != "@type" or event != "string":
        raise NotStreamable  # Envoy writes `@type` first; anything else is read whole
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
                raise NotStreamable
            event, value = events.next()
            section[name] = events.value(event, value)
        read_section(collector, section)
        return
    found: dict[str, list[Any]] = {}
    for name in events.map_keys():
        if name == "@type":
            raise NotStreamable
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
            document = wrapped(entry, "cluster") if group == "static_clusters" else as_map(entry.get("cluster"))
            yield cluster_parts(document, dynamic, group == "dynamic_warming_clusters")
        elif kind == "EndpointsConfigDump":
            assignment = as_map(entry.get("endpoint_config"))
            yield as_text(assignment.get("cluster_name")), load_assignment_endpoints(assignment)
        else:
            yield entry


def _apply(collector: Collector, kind: str, group: str, entry: Any) -> None:
    if kind == "ListenersConfigDump":
        if group == "static_listeners":
            collector.add_listener(wrapped(entry, "listener"), dynamic=False)
        elif group == "dynamic_listeners":
            read_dynamic_listener(collector, entry)
        else:
            warming = group == "dynamic_warming_listeners"
            collector.add_listener(as_map(entry.get("listener")), dynamic=True, warming=warming)
    elif kind == "ClustersConfigDump":
        collector.keep_cluster(*entry)
    elif kind == "RoutesConfigDump":
        collector.keep_route_config(entry)
    else:
        collector.keep_endpoints(*entry)


def _stream_route_entry(events: _Events, dynamic: bool) -> RouteConfig:
    """A `{version_info, route_config, last_updated}` entry (or the same as a `?resource=` section) whose map is
    open; only dynamic entries keep their version, as `read_section` does."""
    version: Any = None
    name: Any = None
    virtual_hosts: list[VirtualHost] = []
    for key in events.map_keys():
        if key in ("@type", "name", "virtual_hosts"):
            raise NotStreamable  # a bare RouteConfiguration entry (Envoy 1.7): read whole
        event, value = events.next()
        if key == "version_info":
            version = events.value(event, value)
        elif key == "route_config" and event == "start_map":
            name, virtual_hosts = _stream_route_config(events, dynamic)
        elif key == "route_config":
            document = as_map(events.value(event, value))
            config = parse_route_config(document, dynamic, None)
            name, virtual_hosts = document.get("name"), list(config.virtual_hosts)
        else:
            events.skip(event)
    return RouteConfig(
        name=as_text(name) or "",
        virtual_hosts=tuple(virtual_hosts),
        dynamic=dynamic,
        version_info=as_text(version) if dynamic else None,
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
                    virtual_hosts.append(_stream_virtual_host(events, as_text(name) or ""))
                else:
                    events.skip(item_event)
        else:
            events.skip(event)
    final = as_text(name) or ""
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
                routes.append(parse_route(route_config, as_text(name) or "", len(routes), document))
        else:
            events.skip(event)
    host_name = as_text(name) or ""
    if any(route.virtual_host != host_name for route in routes):
        routes = [replace(route, virtual_host=host_name) for route in routes]
    return VirtualHost(
        name=host_name,
        domains=tuple(domain for domain in as_list(domains) if isinstance(domain, str)),
        routes=tuple(routes),
    )
