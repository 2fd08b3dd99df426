"""A namespace's Envoy `config_dump.json` shaped like Seldon's xDS output: a `seldon_http` listener on RDS
`listener_0`, one virtual host `seldon_service`, `<model>_http|_grpc` routes matching `seldon-model` exactly with
`x-seldon-route` absent, sticky `_experiment` routes, weighted clusters `<model>_1_http|_grpc` with one endpoint per
server replica, and the EDS section Envoy adds. Written section by section (~100 MB for the big namespace)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.generate.layout import START, Namespace, envoy_dir, envoy_pod, kube_time, pod_network


def _header_add(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _route_action(clusters: list[tuple[str, int, str]]) -> dict[str, Any]:
    return {
        "weighted_clusters": {
            "clusters": [
                {
                    "name": cluster,
                    "weight": weight,
                    "request_headers_to_add": [_header_add("seldon-internal-model", internal)],
                    "response_headers_to_add": [_header_add("x-seldon-route", f":{internal}:")],
                }
                for cluster, weight, internal in clusters
            ]
        },
        "timeout": "0s",
        "retry_policy": {
            "retry_on": "5xx,connect-failure",
            "num_retries": 5,
            "retry_back_off": {"base_interval": "0.500s"},
        },
    }


def _routes_for(name: str, value: str, clusters: list[tuple[str, int, str]]) -> Iterator[dict[str, Any]]:
    for protocol, prefix in (("http", "/v2"), ("grpc", "/inference.GRPCInferenceService")):
        picked = [(f"{internal}_{protocol}", weight, internal) for _, weight, internal in clusters]
        yield {
            "match": {
                "prefix": prefix,
                "headers": [
                    {"name": "seldon-model", "string_match": {"exact": value}},
                    {"name": "x-seldon-route", "present_match": False},
                ],
            },
            "route": _route_action(picked),
            "name": f"{name}_{protocol}",
        }


def _sticky_routes(name: str, value: str, internal: str) -> Iterator[dict[str, Any]]:
    for protocol, prefix in (("http", "/v2"), ("grpc", "/inference.GRPCInferenceService")):
        yield {
            "match": {
                "prefix": prefix,
                "headers": [
                    {"name": "seldon-model", "string_match": {"exact": value}},
                    {"name": "x-seldon-route", "string_match": {"contains": f":{internal}:"}},
                ],
            },
            "route": _route_action([(f"{internal}_{protocol}", 100, internal)]),
            "name": f"{name}_{protocol}_experiment",
        }


def _lb_endpoints(space: Namespace, port: int) -> list[dict[str, Any]]:
    network = pod_network(space.name)
    return [
        {
            "endpoint": {
                "address": {"socket_address": {"address": f"{network}.{10 + r}", "port_value": port}},
                "health_check_config": {},
                "hostname": f"mlserver-{r}.mlserver.{space.name}.svc.cluster.local",
            },
            "health_status": "HEALTHY",
            "metadata": {"filter_metadata": {"seldon": {"replica": f"mlserver:{r}"}}},
            "load_balancing_weight": 1,
        }
        for r in range(space.replicas)
    ]


def _cluster(space: Namespace, name: str, port: int, grpc: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "5s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {
            "thresholds": [
                {"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000, "max_retries": 10}
            ]
        },
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": _lb_endpoints(space, port)}]},
        "common_lb_config": {"healthy_panic_threshold": {"value": 50}},
    }
    if grpc:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def write_envoy(root: Path, space: Namespace) -> None:
    """A config_dump written section by section, each resource as Envoy prints it (one-space indent)."""
    directory = envoy_dir(root, space.name)
    directory.mkdir(parents=True, exist_ok=True)
    version = f"seldon-scheduler-0.{space.name}-{len(space.models)}"
    stamp = kube_time(START + timedelta(minutes=10))
    listener = {
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": "seldon_http",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9000}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                            "HttpConnectionManager",
                            "stat_prefix": "seldon_http",
                            "rds": {
                                "config_source": {"ads": {}, "resource_api_version": "V3"},
                                "route_config_name": "listener_0",
                            },
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.router",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                    },
                                }
                            ],
                        },
                    }
                ]
            }
        ],
    }
    served = [m for m in space.models if m not in space.unschedulable and m not in space.unrouted]
    with (directory / "config_dump.json").open("w", encoding="utf-8") as handle:
        handle.write('{\n "configs": [\n')
        bootstrap = {
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "bootstrap": {
                "node": {"id": f"{envoy_pod(space.name)}", "cluster": "seldon-envoy"},
                "static_resources": {
                    "clusters": [
                        {
                            "name": "xds_cluster",
                            "type": "STRICT_DNS",
                            "connect_timeout": "1s",
                            "load_assignment": {
                                "cluster_name": "xds_cluster",
                                "endpoints": [
                                    {
                                        "lb_endpoints": [
                                            {
                                                "endpoint": {
                                                    "address": {
                                                        "socket_address": {
                                                            "address": "seldon-scheduler",
                                                            "port_value": 9002,
                                                        }
                                                    }
                                                }
                                            }
                                        ]
                                    }
                                ],
                            },
                        }
                    ]
                },
                "admin": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 9901}}},
            },
            "last_updated": stamp,
        }
        handle.write(_indent(bootstrap, 2) + ",\n")
        handle.write(
            '  {\n   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",\n'
            f'   "version_info": "{version}",\n   "dynamic_active_clusters": [\n'
        )
        first = True
        for model in served:
            for protocol, port, grpc in (("http", 9000, False), ("grpc", 9500, True)):
                entry = {
                    "version_info": version,
                    "cluster": _cluster(space, f"{model}_1_{protocol}", port, grpc),
                    "last_updated": stamp,
                }
                handle.write(("" if first else ",\n") + _indent(entry, 4))
                first = False
        handle.write("\n   ]\n  },\n")
        handle.write(
            _indent(
                {
                    "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                    "version_info": version,
                    "dynamic_listeners": [
                        {
                            "name": "seldon_http",
                            "active_state": {"version_info": version, "listener": listener, "last_updated": stamp},
                        }
                    ],
                },
                2,
            )
            + ",\n"
        )
        handle.write(
            '  {\n   "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",\n'
            '   "dynamic_route_configs": [\n    {\n'
            f'     "version_info": "{version}",\n     "route_config": {{\n'
            '      "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",\n'
            '      "name": "listener_0",\n      "virtual_hosts": [\n       {\n'
            '        "name": "seldon_service",\n        "domains": [\n         "*"\n        ],\n'
            '        "routes": [\n'
        )
        first = True
        for route in _all_routes(space, served):
            handle.write(("" if first else ",\n") + _indent(route, 9))
            first = False
        handle.write(
            f'\n        ]\n       }}\n      ]\n     }},\n     "last_updated": "{stamp}"\n    }}\n   ]\n  }},\n'
        )
        handle.write(
            '  {\n   "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",\n'
            '   "dynamic_endpoint_configs": [\n'
        )
        first = True
        for model in served:
            for protocol, port in (("http", 9000), ("grpc", 9500)):
                entry = {
                    "version_info": version,
                    "endpoint_config": {
                        "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                        "cluster_name": f"{model}_1_{protocol}",
                        "endpoints": [{"locality": {}, "lb_endpoints": _lb_endpoints(space, port)}],
                        "policy": {"overprovisioning_factor": 140},
                    },
                    "last_updated": stamp,
                }
                handle.write(("" if first else ",\n") + _indent(entry, 4))
                first = False
        handle.write("\n   ]\n  }\n ]\n}\n")


def _all_routes(space: Namespace, served: list[str]) -> Iterator[dict[str, Any]]:
    in_experiment = {m for _, a, b in space.experiments for m in (a, b)}
    for name, baseline, candidate in space.experiments:
        clusters = [(baseline, 70, f"{baseline}_1"), (candidate, 30, f"{candidate}_1")]
        yield from _routes_for(f"{name}.experiment", f"{name}.experiment", clusters)
        for model in (baseline, candidate):
            yield from _sticky_routes(f"{name}.experiment_{model}", f"{name}.experiment", f"{model}_1")
    # A model that is an experiment's default gets the experiment's split on its own route too (Seldon's behaviour).
    defaults = {
        baseline: [(baseline, 70, f"{baseline}_1"), (candidate, 30, f"{candidate}_1")]
        for _, baseline, candidate in space.experiments
    }
    for model in served:
        yield from _routes_for(model, model, defaults.get(model, [(model, 100, f"{model}_1")]))
        if model in in_experiment:
            yield from _sticky_routes(model, model, f"{model}_1")


def _indent(value: Any, depth: int) -> str:
    """`value` as Envoy prints it (one space per level), starting at `depth` spaces."""
    text = json.dumps(value, indent=1)
    pad = " " * depth
    return "\n".join(pad + line for line in text.split("\n"))
