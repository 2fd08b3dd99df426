"""Envoy as Istio's `istio-ingressgateway` pod, with the listeners, routes and clusters istiod would push for the
stack's Gateways and VirtualServices (KSERVE-FACTS §6), written as a static bootstrap.

- `0.0.0.0_8080` / route config `http.8080`: Gateway `knative-serving/knative-ingress-gateway` (Service port 80 → 8080).
  Virtual hosts `<host>:80` with `domains: [<host>]` and `ignore_port_in_host_matching`: the InferenceService's
  VirtualService host (KServe's route: `:authority` regex, Host rewritten to the top component's internal host, to the
  cluster of `knative-local-gateway`, Istio's mesh-default retries) and the external hosts of Knative's `-ingress`
  VirtualServices (authority prefix, to the revision clusters with the Route's weights, `Knative-Serving-*` headers).
- `0.0.0.0_8081` / `http.8081`: Gateway `knative-serving/knative-local-gateway` on the same pods (no port
  translation), with the internal hosts. It is also the stack's mesh: the transformer reaches `<isvc>-predictor.<ns>`
  through it (HTTP_PROXY), as its sidecar would through the ExternalName Service to the local gateway.
- gRPC: KServe's route has no path or protocol match, so a V2 gRPC call (h2c) takes it like REST, to the local gateway
  (its cluster keeps the client's protocol); each `-ingress` route leaves gRPC calls to a twin after it (`content-type:
  application/grpc…`) to the revision's `http2` port 81 (`outbound|81||<revision fqdn>`, HTTP/2 upstream), which
  here is the kserve-container's gRPC port (the queue-proxy stand-in speaks no h2c).
- clusters `outbound|80||<fqdn>` (istio model/service.go BuildSubsetKey); the HCM's `server_name: istio-envoy`; the
  access log is Istio's default TEXT format (istio pilot/pkg/model/telemetry_logging.go, ≥1.24 `UPSTREAM_CLUSTER_RAW`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_trace.stack.kserve.kube_pods import GATEWAY_IP
from mlops_trace.stack.kserve.topology import (
    GATEWAY_POD,
    ISTIO_NAMESPACE,
    ISVC,
    ISVC_INTERNAL_HOST,
    LOCAL_GATEWAY_SERVICE,
    NAMESPACE,
    PREDICTOR,
    TRANSFORMER,
    KPlan,
    KPorts,
    authority_regex,
    cluster_name,
    revision,
    revision_host,
)

ISTIO_ACCESS_LOG = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
INGRESS_GATEWAY_PORT = 80  # the Gateway server port the vhost names carry (even inside http.8080)
LOCAL_GATEWAY_PORT = 8081
REVISION_H2C_PORT = 81  # a revision's public Service: 80 `http` → 8012, 81 `http2` → 8013 (KSERVE-FACTS §2.1)
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _mesh_retries() -> dict[str, Any]:
    """Istio's default retry policy for a VirtualService route that sets none (KServe's)."""
    return {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                  "typed_config": {"@type": _PREVIOUS_HOSTS}}],
        "host_selection_retry_max_attempts": "5",
        "retriable_status_codes": [503],
    }


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _istio_meta(vs_namespace: str, vs_name: str) -> dict[str, Any]:
    return {"filter_metadata": {"istio": {
        "config": f"/apis/networking.istio.io/v1/namespaces/{vs_namespace}/virtual-service/{vs_name}"}}}


def _kserve_route(host: str, top_component: str) -> dict[str, Any]:
    """KServe's predict route of VirtualService `<isvc>` (no uri match) as Istio renders it."""
    return {
        "match": {"prefix": "/", "headers": [{"name": ":authority",
                                              "string_match": {"safe_regex": {"regex": authority_regex(host)}}}]},
        "route": {"cluster": cluster_name(LOCAL_GATEWAY_SERVICE), "timeout": "0s", "retry_policy": _mesh_retries(),
                  "host_rewrite_literal": f"{top_component}.{NAMESPACE}.svc.cluster.local", "max_grpc_timeout": "0s"},
        "request_headers_to_add": [_header("KServe-Isvc-Name", ISVC), _header("KServe-Isvc-Namespace", NAMESPACE)],
        "metadata": _istio_meta(NAMESPACE, ISVC),
        "decorator": {"operation": f"{LOCAL_GATEWAY_SERVICE}:80/*"},
    }


def _knative_route(host: str, traffic: dict[str, int], vs_name: str, *, grpc: bool = False) -> dict[str, Any]:
    """A route of net-istio's `<ksvc>-ingress` VirtualService: authority prefix, weighted revisions. `grpc`: the
    route for gRPC calls (`content-type: application/grpc…`), to the revisions' `http2` port 81, as net-istio routes
    a revision whose container port is `h2c`."""
    port = REVISION_H2C_PORT if grpc else 80
    kept = [(rev, weight) for rev, weight in traffic.items() if weight > 0]
    route: dict[str, Any] = {"timeout": "0s", "max_grpc_timeout": "0s"}
    headers = [_header("Knative-Serving-Namespace", NAMESPACE)]
    if len(kept) == 1:
        route["cluster"] = cluster_name(revision_host(kept[0][0]), port)
        headers.append(_header("Knative-Serving-Revision", kept[0][0]))
        operation = f"{revision_host(kept[0][0])}:{port}/*"
    else:
        route["weighted_clusters"] = {"clusters": [
            {"name": cluster_name(revision_host(rev), port), "weight": weight,
             "request_headers_to_add": [_header("Knative-Serving-Revision", rev)]} for rev, weight in kept]}
        operation = f"{vs_name}:{port}/*"
    match: list[dict[str, Any]] = [{"name": ":authority", "string_match": {"prefix": host}}]
    # The REST route comes first and leaves gRPC calls to its twin (a VirtualService's `withoutHeaders`); a call
    # without content-type (GET /v2/health/ready) is no gRPC call.
    grpc_match = {"name": "content-type", "string_match": {"prefix": "application/grpc"}}
    match.append(grpc_match if grpc else {**grpc_match, "invert_match": True, "treat_missing_header_as_empty": True})
    return {
        "match": {"prefix": "/", "headers": match},
        "route": route, "request_headers_to_add": headers,
        "metadata": _istio_meta(NAMESPACE, vs_name), "decorator": {"operation": operation},
    }


def _knative_routes(host: str, traffic: dict[str, int], vs_name: str) -> list[dict[str, Any]]:
    return [_knative_route(host, traffic, vs_name), _knative_route(host, traffic, vs_name, grpc=True)]


def _vhost(host: str, port: int, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": f"{host}:{port}", "domains": [host], "routes": routes, "include_request_attempt_count": True}


def _internal_hosts(component: str) -> list[str]:
    return [f"{component}.{NAMESPACE}", f"{component}.{NAMESPACE}.svc", f"{component}.{NAMESPACE}.svc.cluster.local"]


def route_configs(plan: KPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`http.8080`, `http.8081`): what istiod pushes to the gateway pods for the stack's objects."""
    external: list[dict[str, Any]] = []
    internal: list[dict[str, Any]] = []
    transformer_traffic = {revision(TRANSFORMER, 1): 100}
    components = [(TRANSFORMER, transformer_traffic)]
    if plan.predictor_runs:
        components.append((PREDICTOR, plan.route_traffic))
        # KServe writes its VirtualService only once PredictorReady (and TransformerReady) hold.
        external.append(_vhost(plan.vs_host, 80, [_kserve_route(plan.vs_host, TRANSFORMER)]))
        internal.append(_vhost(ISVC_INTERNAL_HOST, LOCAL_GATEWAY_PORT, [_kserve_route(ISVC_INTERNAL_HOST, TRANSFORMER)]))
    for component, traffic in components:
        vs_name = f"{component}-ingress"
        host = f"{component}.{NAMESPACE}.example.com"
        external.append(_vhost(host, 80, _knative_routes(host, traffic, vs_name)))
        for name in _internal_hosts(component):
            internal.append(_vhost(name, LOCAL_GATEWAY_PORT, _knative_routes(name, traffic, vs_name)))
    return _route_config("http.8080", external, 80), _route_config("http.8081", internal, LOCAL_GATEWAY_PORT)


def _route_config(name: str, vhosts: list[dict[str, Any]], port: int) -> dict[str, Any]:
    if not vhosts:  # istiod: "... with no vhosts; Setting up a default 404 vhost"
        vhosts = [{"name": f"blackhole:{port}", "domains": ["*"], "routes": []}]
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False, "ignore_port_in_host_matching": True}


def _listener(name: str, port: int, route_config: dict[str, Any], access_log: Path) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": _HCM, "stat_prefix": f"outbound_{name}", "server_name": "istio-envoy",
            "use_remote_address": True, "normalize_path": True, "merge_slashes": False,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED", "route_config": route_config,
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
            "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
                "@type": _FILE_LOG, "path": str(access_log),
                "log_format": {"text_format_source": {"inline_string": ISTIO_ACCESS_LOG}}}}],
        }}]}],
    }


def _cluster(name: str, port: int, protocol: str | None = None) -> dict[str, Any]:
    """A STATIC cluster on 127.0.0.1:`port`; `protocol` "http2" speaks HTTP/2 upstream, "downstream" the client's."""
    cluster: dict[str, Any] = {
        "name": name, "type": "STATIC", "connect_timeout": "10s", "lb_policy": "LEAST_REQUEST",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }
    if protocol == "http2":
        options: dict[str, Any] = {"explicit_http_config": {"http2_protocol_options": {}}}
    elif protocol == "downstream":
        options = {"use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}
    else:
        return cluster
    cluster["typed_extension_protocol_options"] = {_HTTP_OPTIONS: {"@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                                                                   **options}}
    return cluster


def bootstrap(plan: KPlan, ports: KPorts, access_log: Path) -> dict[str, Any]:
    external, internal = route_configs(plan)
    listeners = [_listener("0.0.0.0_8080", ports.gateway_http, external, access_log)]
    if plan.local_gateway:
        listeners.append(_listener("0.0.0.0_8081", ports.local_gateway, internal, access_log))
    # The knative-local-gateway Service keeps its endpoints (the gateway pods' 8081) whether or not a Gateway opens
    # that port: without the Gateway, connections to it are refused.
    # The local gateway's Service port is named `http2`; Istio would speak HTTP/2 to it for every request. Here the
    # client's protocol is kept, so REST passes stay HTTP/1.1 and gRPC calls go on as HTTP/2.
    transformer = revision(TRANSFORMER, 1)
    clusters = [_cluster(cluster_name(LOCAL_GATEWAY_SERVICE), ports.local_gateway, "downstream"),
                _cluster(cluster_name(revision_host(transformer)), ports.transformer_queue)]
    # Port 81 (`http2`) of a revision leads to queue-proxy's h2c port 8013 in Knative; the queue-proxy stand-in
    # speaks HTTP/1.1 only, so the stack's gRPC endpoint is the kserve-container's gRPC port itself.
    clusters.append(_cluster(cluster_name(revision_host(transformer), REVISION_H2C_PORT), ports.transformer_grpc,
                             "http2"))
    queues = {revision(PREDICTOR, 1): ports.predictor_queue, revision(PREDICTOR, 2): ports.canary_queue}
    grpcs = {revision(PREDICTOR, 1): ports.predictor_grpc, revision(PREDICTOR, 2): ports.canary_grpc}
    for rev in plan.predictor_revisions:
        clusters.append(_cluster(cluster_name(revision_host(rev)), queues[rev]))
        clusters.append(_cluster(cluster_name(revision_host(rev), REVISION_H2C_PORT), grpcs[rev], "http2"))
    return {
        "node": {"id": f"router~{GATEWAY_IP}~{GATEWAY_POD}.{ISTIO_NAMESPACE}~{ISTIO_NAMESPACE}.svc.cluster.local",
                 "cluster": f"istio-ingressgateway.{ISTIO_NAMESPACE}"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports.gateway_admin}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }
