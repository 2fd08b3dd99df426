"""One Envoy resource's JSON read into the data model: a route (its path match, header matchers, clusters, mirrors
and added headers), a RouteConfiguration, the HTTP connection managers and address of a listener, and what is kept
of a cluster (type, endpoints from `load_assignment` or v2 `hosts`).

Documents are snake_cased already (`protojson.snake_keys`, or the streaming reader's keys); both the whole-document
read and the streaming read build their values here, so the two agree by construction.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.parsers.envoy_config.model import (
    ClusterWeight,
    HeaderMatcher,
    HeaderMatchKind,
    Route,
    RouteConfig,
    VirtualHost,
)
from mlops_trace.parsers.envoy_config.protojson import (
    as_integer,
    as_list,
    as_map,
    as_maps,
    as_text,
    as_uint32,
    type_name,
)

__all__ = [
    "ClusterParts",
    "cluster_parts",
    "format_address",
    "http_connection_managers",
    "load_assignment_endpoints",
    "parse_route",
    "parse_route_config",
]


def _parse_header_matcher(matcher: Mapping[str, Any]) -> HeaderMatcher:
    name = as_text(matcher.get("name")) or ""
    invert = matcher.get("invert_match") is True
    missing_as_empty = matcher.get("treat_missing_header_as_empty") is True
    kind = HeaderMatchKind.OTHER
    value: str | None = None
    ignore_case = False
    if "string_match" in matcher:
        string_match = as_map(matcher["string_match"])
        ignore_case = string_match.get("ignore_case") is True
        for key, candidate_kind in (
            ("exact", HeaderMatchKind.EXACT),
            ("prefix", HeaderMatchKind.PREFIX),
            ("suffix", HeaderMatchKind.SUFFIX),
            ("contains", HeaderMatchKind.CONTAINS),
        ):
            if key in string_match:
                kind, value = candidate_kind, as_text(string_match[key])
                break
        else:
            if "safe_regex" in string_match:
                kind, value = HeaderMatchKind.REGEX, as_text(as_map(string_match["safe_regex"]).get("regex"))
    elif "present_match" in matcher:
        kind = HeaderMatchKind.PRESENT if matcher["present_match"] is True else HeaderMatchKind.ABSENT
    elif "safe_regex_match" in matcher:
        kind, value = HeaderMatchKind.REGEX, as_text(as_map(matcher["safe_regex_match"]).get("regex"))
    elif "regex_match" in matcher:  # v2
        kind, value = HeaderMatchKind.REGEX, as_text(matcher["regex_match"])
    elif "range_match" in matcher:
        bounds = as_map(matcher["range_match"])
        kind, value = HeaderMatchKind.OTHER, f"[{bounds.get('start')},{bounds.get('end')})"
    else:
        for key, candidate_kind in (
            ("exact_match", HeaderMatchKind.EXACT),
            ("prefix_match", HeaderMatchKind.PREFIX),
            ("suffix_match", HeaderMatchKind.SUFFIX),
            ("contains_match", HeaderMatchKind.CONTAINS),
        ):
            if key in matcher:
                kind, value = candidate_kind, as_text(matcher[key])
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
    value = as_text(header.get("value"))
    if value is not None:
        return value
    raw_value = as_text(header.get("raw_value"))  # bytes field: base64 in protobuf JSON
    if raw_value is not None:
        try:
            return base64.b64decode(raw_value, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return raw_value
    return ""


def _headers_to_add(options: object) -> dict[str, str]:
    headers: dict[str, str] = {}
    for option in as_maps(options):
        header = as_map(option.get("header"))
        key = as_text(header.get("key"))
        if key:
            headers[key.lower()] = _header_value(header)
    return headers


def parse_route(route_config: str, virtual_host: str, index: int, route: Mapping[str, Any]) -> Route:
    match = as_map(route.get("match"))
    prefix = as_text(match.get("prefix"))
    separated = as_text(match.get("path_separated_prefix"))
    regex = as_text(as_map(match.get("safe_regex")).get("regex")) or as_text(match.get("regex"))
    route_request_headers = _headers_to_add(route.get("request_headers_to_add"))
    route_response_headers = _headers_to_add(route.get("response_headers_to_add"))
    action = as_map(route.get("route"))
    clusters: list[ClusterWeight] = []
    weighted = as_map(action.get("weighted_clusters"))
    if weighted:
        for split in as_maps(weighted.get("clusters")):
            name = as_text(split.get("name"))
            if name is None:
                continue
            clusters.append(
                ClusterWeight(
                    cluster=name,
                    weight=as_uint32(split.get("weight")) or 0,
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
    elif as_text(action.get("cluster")) is not None:
        clusters.append(
            ClusterWeight(
                cluster=str(action["cluster"]),
                weight=1,
                request_headers_to_add=dict(route_request_headers),
                response_headers_to_add=dict(route_response_headers),
            )
        )
    mirror_policies = list(as_maps(action.get("request_mirror_policies")))
    mirror_policies += list(as_maps([action.get("request_mirror_policy")]))  # v2 singular form
    mirrors = tuple(name for name in (as_text(policy.get("cluster")) for policy in mirror_policies) if name)
    case_sensitive = match.get("case_sensitive")
    timeout_text, timeout_ms = _route_timeout(action.get("timeout"))
    return Route(
        route_config=route_config,
        virtual_host=virtual_host,
        index=index,
        name=as_text(route.get("name")) or "",
        prefix=prefix if prefix is not None else separated,
        path=as_text(match.get("path")),
        regex=regex,
        headers=tuple(_parse_header_matcher(matcher) for matcher in as_maps(match.get("headers"))),
        clusters=tuple(clusters),
        mirror_clusters=mirrors,
        direct_response_status=as_integer(as_map(route.get("direct_response")).get("status")),
        prefix_separated=prefix is None and separated is not None,
        case_sensitive=case_sensitive is not False,
        request_headers_to_add=route_request_headers,
        response_headers_to_add=route_response_headers,
        timeout_text=timeout_text,
        timeout_ms=timeout_ms,
    )


# A protobuf JSON Duration: seconds with up to nine fraction digits and an `s` (`"60s"`, `"0.250s"`, `"-1s"`).
_DURATION = re.compile(r"(-?)(\d+)(?:\.(\d{1,9}))?s")
_MAX_DURATION_SECONDS = 315_576_000_000  # google.protobuf.Duration's range


def _route_timeout(value: object) -> tuple[str | None, float | None]:
    """(the `timeout` as dumped, its milliseconds) of a RouteAction; a negative or malformed value is dumped text
    with no milliseconds (Envoy would have refused it)."""
    if value is None:
        return None, None
    if isinstance(value, Mapping):  # a Duration written as its message (`{seconds, nanos}`), as YAML dumps do
        seconds, nanos = as_integer(value.get("seconds", 0)), as_integer(value.get("nanos", 0))
        text = f"{{seconds: {value.get('seconds', 0)}, nanos: {value.get('nanos', 0)}}}"
        if seconds is None or nanos is None or not 0 <= seconds <= _MAX_DURATION_SECONDS or not 0 <= nanos < 10**9:
            return text, None
        return text, seconds * 1000.0 + nanos / 1e6
    dumped = as_text(value)
    if dumped is None:
        return str(value), None
    match = _DURATION.fullmatch(dumped.strip())
    if match is None or match.group(1) or int(match.group(2)) > _MAX_DURATION_SECONDS:
        return dumped, None
    fraction = (match.group(3) or "").ljust(9, "0")
    return dumped, int(match.group(2)) * 1000.0 + int(fraction) / 1e6


def parse_route_config(
    document: Mapping[str, Any], dynamic: bool, version_info: str | None, fallback_name: str = ""
) -> RouteConfig:
    name = as_text(document.get("name")) or fallback_name
    virtual_hosts = []
    for virtual_host in as_maps(document.get("virtual_hosts")):
        host_name = as_text(virtual_host.get("name")) or ""
        routes = tuple(
            parse_route(name, host_name, index, route)
            for index, route in enumerate(as_maps(virtual_host.get("routes")))
        )
        domains = tuple(domain for domain in as_list(virtual_host.get("domains")) if isinstance(domain, str))
        virtual_hosts.append(VirtualHost(name=host_name, domains=domains, routes=routes))
    return RouteConfig(name=name, virtual_hosts=tuple(virtual_hosts), dynamic=dynamic, version_info=version_info)


def format_address(address: Mapping[str, Any]) -> tuple[str | None, int | None]:
    socket = as_map(address.get("socket_address"))
    if socket:
        host = as_text(socket.get("address"))
        port = as_integer(socket.get("port_value"))
        return host, port
    pipe = as_text(as_map(address.get("pipe")).get("path"))
    if pipe is not None:
        return f"unix:{pipe}", None
    internal = as_text(as_map(address.get("envoy_internal_address")).get("server_listener_name"))
    return internal, None


def _endpoint_text(address: Mapping[str, Any]) -> str | None:
    host, port = format_address(address)
    if host is None:
        return None
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host and not host.startswith("unix:") else f"{host}:{port}"


def load_assignment_endpoints(assignment: Mapping[str, Any]) -> list[str]:
    endpoints: list[str] = []
    for locality in as_maps(assignment.get("endpoints")):
        for lb_endpoint in as_maps(locality.get("lb_endpoints")):
            text = _endpoint_text(as_map(as_map(lb_endpoint.get("endpoint")).get("address")))
            if text is not None:
                endpoints.append(text)
    return endpoints


def http_connection_managers(listener: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    chains = list(as_maps(listener.get("filter_chains")))
    chains += list(as_maps([listener.get("default_filter_chain")]))
    for chain in chains:
        for network_filter in as_maps(chain.get("filters")):
            config = as_map(network_filter.get("typed_config")) or as_map(network_filter.get("config"))
            if type_name(config) == "TypedStruct":
                config = as_map(config.get("value"))
            if "rds" in config or "route_config" in config:
                yield config


@dataclass(frozen=True)
class ClusterParts:
    """What the EnvoyConfig keeps of a cluster document; EDS endpoints are added when the config is built."""

    type: str | None
    endpoints: tuple[str, ...]
    dynamic: bool
    warming: bool


def cluster_parts(document: Mapping[str, Any], dynamic: bool, warming: bool) -> tuple[str | None, ClusterParts]:
    endpoints = load_assignment_endpoints(as_map(document.get("load_assignment")))
    endpoints += [text for text in (_endpoint_text(host) for host in as_maps(document.get("hosts"))) if text]
    cluster_type = as_text(document.get("type")) or as_text(as_map(document.get("cluster_type")).get("name"))
    return as_text(document.get("name")), ClusterParts(cluster_type, tuple(endpoints), dynamic, warming)
