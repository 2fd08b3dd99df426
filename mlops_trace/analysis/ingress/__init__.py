"""Ingress analysis: from an Ingress to the pods behind it, as ingress-nginx sees it. Pure helpers over a Snapshot
that the network and routing checks (and `request`'s path trace) share.

This module only re-exports; `from mlops_trace.analysis.ingress import X` is the public surface. Each concept lives in
its own module:

- `backends`: an Ingress's rules/paths/defaultBackend → backend Service and port (`ingress_backends`, `PortRef`);
- `resolution`: following a backend Service through ExternalName hops to a Service port, and whether its endpoints
  are ready (`resolve_backend`, `Resolution`, `Stop`, `ready_endpoints`, the Service field readers);
- `controllers`: which ingress controller serves an Ingress (class, IngressClass) and its Pods, workloads and
  Services (`is_nginx_ingress`, `controller_pods`, `controllers_for`, `controller_services`);
- `envoy`: the backends that land on Seldon's Envoy, and on which port (`seldon_backends`, `envoy_namespace`);
- `nginx`: how ingress-nginx matches and rewrites a request path (`simulate_path`, `rewrite_target`, `regex_hosts`);
"""

from __future__ import annotations

from mlops_trace.analysis.ingress.backends import IngressBackend, PathType, PortRef, ingress_backends, ingresses
from mlops_trace.analysis.ingress.controllers import (
    CLASS_ANNOTATION,
    DEFAULT_CLASS_ANNOTATION,
    controller_args,
    controller_pods,
    controller_services,
    controller_workloads,
    controllers_for,
    ingress_class,
    is_nginx_ingress,
    nginx_ingress_for_host,
    serves_class,
)
from mlops_trace.analysis.ingress.envoy import (
    ENVOY_STATS_PORT,
    SeldonBackend,
    envoy_namespace,
    is_envoy_data_port,
    seldon_backends,
)
from mlops_trace.analysis.ingress.nginx import (
    ANNOTATION_PREFIX,
    BACKEND_PROTOCOL,
    GRPC_PREFIX,
    GRPC_SAMPLE,
    REST_PREFIX,
    REWRITE_TARGET,
    SAMPLE_MODEL,
    USE_REGEX,
    PathSimulation,
    is_grpc_backend,
    literal_prefix,
    nginx_annotation,
    nginx_location,
    reaches_seldon_route,
    regex_hosts,
    rewrite_target,
    sample_client_path,
    simulate_path,
    substitute_captures,
    to_python_regex,
    uses_regex_annotations,
)
from mlops_trace.analysis.ingress.resolution import (
    ExternalTarget,
    Hop,
    Resolution,
    Stop,
    external_name,
    is_headless,
    match_backend_port,
    parse_external_name,
    ready_endpoints,
    resolve_backend,
    selector_of,
    selects_labels,
    service_ports,
    service_type,
    target_port,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "BACKEND_PROTOCOL",
    "CLASS_ANNOTATION",
    "DEFAULT_CLASS_ANNOTATION",
    "ENVOY_STATS_PORT",
    "GRPC_PREFIX",
    "GRPC_SAMPLE",
    "REST_PREFIX",
    "REWRITE_TARGET",
    "SAMPLE_MODEL",
    "USE_REGEX",
    "ExternalTarget",
    "Hop",
    "IngressBackend",
    "PathSimulation",
    "PathType",
    "PortRef",
    "Resolution",
    "SeldonBackend",
    "Stop",
    "controller_args",
    "controller_pods",
    "controller_services",
    "controller_workloads",
    "controllers_for",
    "envoy_namespace",
    "external_name",
    "ingress_backends",
    "ingress_class",
    "ingresses",
    "is_envoy_data_port",
    "is_grpc_backend",
    "is_headless",
    "is_nginx_ingress",
    "literal_prefix",
    "match_backend_port",
    "nginx_annotation",
    "nginx_ingress_for_host",
    "nginx_location",
    "parse_external_name",
    "reaches_seldon_route",
    "ready_endpoints",
    "regex_hosts",
    "resolve_backend",
    "rewrite_target",
    "sample_client_path",
    "seldon_backends",
    "selector_of",
    "selects_labels",
    "serves_class",
    "service_ports",
    "service_type",
    "simulate_path",
    "substitute_captures",
    "target_port",
    "to_python_regex",
    "uses_regex_annotations",
]
