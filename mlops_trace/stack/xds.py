"""Seldon's Envoy resources as the scheduler programs them (SELDON-FACTS §1.2–1.4), for file-based xDS.

The stack's Envoy reads LDS and CDS from files and RDS (`listener_0`) from a third file; each file is replaced by an
atomic rename, which is what Envoy's filesystem subscription watches for. Shapes follow Seldon's xdscache: listener
`seldon_http`, virtual host `seldon_service`, routes `<R>_http`/`<R>_grpc` that need `seldon-model` to equal R and
`x-seldon-route` to be absent, sticky `<R>_http_experiment` routes, weighted clusters `<model>_<ver>_http|_grpc` that
set `seldon-internal-model` and answer `x-seldon-route: :<model>_<ver>:`, and a Lua filter that names the model from
the REST path when a client sent neither header.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LISTENER = "seldon_http"
ROUTE_CONFIG = "listener_0"
VIRTUAL_HOST = "seldon_service"
LDS_FILE = "lds.json"
CDS_FILE = "cds.json"
RDS_FILE = "rds.json"

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
_CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
_ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

# Envoy's access log for the stack, one JSON object per request: Seldon's fields (code, gRPC status, flags, upstream
# service time, request id, upstream host) plus the routing headers as Envoy saw them after its Lua filter, which
# mlops_trace.parsers.envoy_access reads (unknown keys become headers).
ACCESS_LOG_JSON: dict[str, str] = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS_NUMBER%",
    "response_flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "x_request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "route_name": "%ROUTE_NAME%",
    "seldon-model": "%REQ(SELDON-MODEL)%",
    "x-seldon-route": "%REQ(X-SELDON-ROUTE)%",
    "resp-x-seldon-route": "%RESP(X-SELDON-ROUTE)%",
}

# Only when neither seldon-model nor x-seldon-route is present, and never for gRPC (its clients send metadata).
HEADER_FILTER_LUA = """\
function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get("seldon-model") ~= nil or headers:get("x-seldon-route") ~= nil then
    return
  end
  local content_type = headers:get("content-type") or ""
  if string.find(content_type, "application/grpc", 1, true) ~= nil then
    return
  end
  local path = headers:get(":path") or ""
  local model = string.match(path, "^/v2/models/([^/?]+)")
  if model ~= nil then
    headers:add("seldon-model", model)
    return
  end
  local pipeline = string.match(path, "^/v2/pipelines/([^/?]+)")
  if pipeline ~= nil then
    headers:add("seldon-model", pipeline .. ".pipeline")
  end
end
"""


@dataclass(frozen=True)
class Split:
    """One weighted cluster of a route: the versioned model (`<model>_<ver>`) and its weight."""

    internal: str
    weight: int


@dataclass(frozen=True)
class RouteSpec:
    """Route `name` (a model, `<exp>.experiment` or `<p>.pipeline`) and where its traffic goes."""

    name: str
    splits: tuple[Split, ...]


def _header_exact(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "string_match": {"exact": value}}


def _header_absent(name: str) -> dict[str, Any]:
    return {"name": name, "present_match": False}


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _weighted(split: Split, protocol: str) -> dict[str, Any]:
    return {
        "name": f"{split.internal}_{protocol}",
        "weight": split.weight,
        "request_headers_to_add": [_header("seldon-internal-model", split.internal)],
        "response_headers_to_add": [_header("x-seldon-route", f":{split.internal}:")],
    }


def _timeout(timeout_ms: float) -> str:
    """Seldon's route timeout is 0 (none) since PR #5099 (60 s before); the route-timeout fault sets one."""
    return f"{timeout_ms / 1000.0:.3f}s" if timeout_ms > 0 else "0s"


def _action(splits: Sequence[Split], protocol: str, timeout_ms: float = 0.0) -> dict[str, Any]:
    return {
        "timeout": _timeout(timeout_ms),
        "weighted_clusters": {"clusters": [_weighted(s, protocol) for s in splits]},
        "retry_policy": {
            "retry_on": "5xx,connect-failure",
            "num_retries": 5,
            "retry_back_off": {"base_interval": "0.5s"},
        },
    }


_PREFIX = {"http": "/v2", "grpc": "/inference.GRPCInferenceService"}


def routes_for(spec: RouteSpec, timeout_ms: float = 0.0) -> list[dict[str, Any]]:
    """Envoy routes for one route name: sticky routes first (only when there is more than one cluster), then the
    normal ones that require `x-seldon-route` to be absent."""
    routes: list[dict[str, Any]] = []
    if len(spec.splits) > 1:
        for protocol in ("http", "grpc"):
            for split in spec.splits:
                routes.append(
                    {
                        "name": f"{spec.name}_{protocol}_experiment",
                        "match": {
                            "prefix": _PREFIX[protocol],
                            "headers": [
                                _header_exact("seldon-model", spec.name),
                                {"name": "x-seldon-route", "string_match": {"contains": f":{split.internal}:"}},
                            ],
                        },
                        "route": _action([Split(split.internal, 100)], protocol, timeout_ms),
                    }
                )
    for protocol in ("http", "grpc"):
        routes.append(
            {
                "name": f"{spec.name}_{protocol}",
                "match": {
                    "prefix": _PREFIX[protocol],
                    "headers": [_header_exact("seldon-model", spec.name), _header_absent("x-seldon-route")],
                },
                "route": _action(spec.splits, protocol, timeout_ms),
            }
        )
    return routes


def route_configuration(specs: Sequence[RouteSpec], timeout_ms: float = 0.0) -> dict[str, Any]:
    routes = [route for spec in specs for route in routes_for(spec, timeout_ms)]
    return {
        "@type": _ROUTE_TYPE,
        "name": ROUTE_CONFIG,
        "virtual_hosts": [{"name": VIRTUAL_HOST, "domains": ["*"], "routes": routes}],
    }


def model_clusters(internal: str, agent_http: int, agent_grpc: int) -> list[dict[str, Any]]:
    """The two clusters of a versioned model. Endpoints are the agent's reverse proxy (never MLServer itself)."""
    clusters = []
    for protocol, port in (("http", agent_http), ("grpc", agent_grpc)):
        name = f"{internal}_{protocol}"
        cluster: dict[str, Any] = {
            "@type": _CLUSTER_TYPE,
            "name": name,
            "type": "STRICT_DNS",
            "lb_policy": "LEAST_REQUEST",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                                    "port_value": port}}}}]}
                ],
            },
        }
        if protocol == "grpc":
            cluster["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            }
        clusters.append(cluster)
    return clusters


def seldon_listener(port: int, xds_dir: Path, access_log: Path, delay_ms: float) -> dict[str, Any]:
    """`seldon_http`: HTTP/1.1 and h2c on one port, RDS `listener_0` from a file, Lua, optional fault delay, router.
    Seldon's Envoy does not generate request ids; it passes the ingress' one on."""
    filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": HEADER_FILTER_LUA},
            },
        }
    ]
    if delay_ms > 0:
        filters.append(
            {
                "name": "envoy.filters.http.fault",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                    "delay": {
                        "fixed_delay": f"{delay_ms / 1000.0:.6f}s",
                        "percentage": {"numerator": 100, "denominator": "HUNDRED"},
                    },
                },
            }
        )
    filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    return {
        "@type": _LISTENER_TYPE,
        "name": LISTENER,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": LISTENER,
                            "codec_type": "AUTO",
                            "generate_request_id": False,
                            "preserve_external_request_id": True,
                            "rds": {
                                "route_config_name": ROUTE_CONFIG,
                                "config_source": {
                                    "resource_api_version": "V3",
                                    "path_config_source": {"path": str(xds_dir / RDS_FILE)},
                                },
                            },
                            "access_log": [
                                {
                                    "name": "envoy.access_loggers.file",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3."
                                        "FileAccessLog",
                                        "path": str(access_log),
                                        "log_format": {"json_format": ACCESS_LOG_JSON},
                                    },
                                }
                            ],
                            "http_filters": filters,
                        },
                    }
                ]
            }
        ],
    }


def bootstrap(admin_port: int, xds_dir: Path) -> dict[str, Any]:
    """Seldon's bootstrap, with path-based LDS/CDS in place of ADS from the scheduler (node id as Seldon's)."""
    return {
        "node": {"id": "test-id", "cluster": "test-cluster"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            "lds_config": {"resource_api_version": "V3", "path_config_source": {"path": str(xds_dir / LDS_FILE)}},
            "cds_config": {"resource_api_version": "V3", "path_config_source": {"path": str(xds_dir / CDS_FILE)}},
        },
    }


def write_resources(xds_dir: Path, filename: str, resources: Sequence[Mapping[str, Any]], version: str) -> None:
    """Replace one xDS file by an atomic rename, the change Envoy's filesystem subscription reacts to."""
    target = xds_dir / filename
    tmp = xds_dir / f".{filename}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"version_info": version, "resources": list(resources)}, indent=1), encoding="utf-8")
    os.replace(tmp, target)


def write_empty(xds_dir: Path) -> None:
    """Files with no resources, so Envoy starts with nothing (as before a scheduler has spoken to it)."""
    xds_dir.mkdir(parents=True, exist_ok=True)
    for name in (LDS_FILE, CDS_FILE, RDS_FILE):
        write_resources(xds_dir, name, [], "0")
