"""The seven hops of one request, read from a Snapshot (a bundle or a live collection): which LoadBalancer IP,
which Ingress rule (host, path, rewrite), which Service and endpoints, which Envoy route this request's headers
select (`EnvoyConfig.select_route`) and its weighted clusters, which server pod, which model version.

Pure functions over the Snapshot; the response (its `x-seldon-route`) only says which weighted cluster was taken.
Where the snapshot already shows the request cannot pass a hop, that hop carries the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_trace.analysis.ingress.snippet import snippet_request_headers
from mlops_trace.analysis.ingress import (
    IngressBackend,
    PathType,
    Stop,
    controller_pods,
    controller_services,
    controller_workloads,
    envoy_namespace,
    ingress_backends,
    ingresses,
    is_nginx_ingress,
    ready_endpoints,
    regex_hosts,
    resolve_backend,
    rewrite_target,
    service_type,
    simulate_path,
)
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    cluster_model,
    experiment_of_route_value,
    lua_effective_headers,
    route_models,
    select_route,
    split_versioned,
)
from mlops_trace.analysis.seldon import iter_weighted_candidates, server_pods
from mlops_trace.findings import Evidence
from mlops_trace.parsers.envoy_config import EnvoyConfig, Route
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.record import HOP_NAMES


@dataclass(frozen=True)
class PathHop:
    hop: int
    name: str
    component: str
    evidence: tuple[Evidence, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class PathRequest:
    """The request as the path sees it."""

    url_host: str
    url_port: int
    authority: str  # Host header
    path: str  # the client path (with any ingress prefix)
    headers: Mapping[str, str]  # lower-case; what the client sent
    grpc: bool = False


@dataclass(frozen=True)
class RequestPath:
    hops: Mapping[int, PathHop]
    source: str
    namespace: str | None = None  # the Seldon namespace the ingress leads to
    upstream_path: str | None = None  # the path Envoy receives
    ingress_matched: bool | None = None  # None: no Ingress in the snapshot to judge by
    envoy_config: EnvoyConfig | None = None
    envoy_where: str | None = None
    route: Route | None = None
    route_headers: Mapping[str, str] = field(default_factory=dict)  # what Envoy's router sees
    experiment: KubeObject | None = None
    served_cluster: str | None = None


# --- hop 1 -------------------------------------------------------------------------------------------------------


def _lb_addresses(svc: KubeObject) -> list[str]:
    addresses: list[str] = []
    for item in as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress")):
        entry = as_mapping(item)
        value = entry.get("ip") or entry.get("hostname")
        if value:
            addresses.append(str(value))
    return addresses


HOST_ADDRESS_ANNOTATION = "mlops-trace.io/host-address"  # where the reference stack publishes a Service on 127.0.0.1


def _lb_rank(svc: KubeObject, request: PathRequest, fronting: set[tuple[str | None, str]]) -> int:
    """How surely the client's address is this LoadBalancer: 3 published host address, 2 the ingress controller's
    Service with that IP, 1 a Service with that IP and port, 0 that IP only, -1 not it."""
    if svc.annotations.get(HOST_ADDRESS_ANNOTATION) == f"{request.url_host}:{request.url_port}":
        return 3
    if request.url_host not in _lb_addresses(svc):
        return -1
    if (svc.namespace, svc.name) in fronting:
        return 2
    ports = {as_mapping(p).get("port") for p in as_list(svc.spec.get("ports"))}
    return 1 if request.url_port in ports else 0


def _hop1(snap: Snapshot, request: PathRequest) -> PathHop:
    name = HOP_NAMES[1]
    controllers = controller_pods(snap) + controller_workloads(snap)
    fronting = [svc for svc in controller_services(snap, controllers) if service_type(svc) == "LoadBalancer"]
    fronting_keys = {(svc.namespace, svc.name) for svc in fronting}
    balancers = [svc for svc in snap.objects_of("Service") if service_type(svc) == "LoadBalancer"]
    ranked = sorted(((_lb_rank(svc, request, fronting_keys), svc) for svc in balancers), key=lambda item: -item[0])
    if ranked and ranked[0][0] >= 0:
        svc = ranked[0][1]
        ports = [str(as_mapping(p).get("port")) for p in as_list(svc.spec.get("ports"))]
        addresses = "/".join(_lb_addresses(svc)) or "none"
        return PathHop(
            1,
            name,
            f"Service {svc.namespace}/{svc.name} LoadBalancer {addresses} (client dialled "
            f"{request.url_host}:{request.url_port})",
            (
                Evidence(
                    svc.field_where(".status.loadBalancer.ingress"),
                    f"external IP {addresses}, ports {', '.join(ports) or '?'}",
                ),
            ),
        )
    for svc in fronting:
        if not _lb_addresses(svc):
            return PathHop(
                1,
                name,
                f"{request.url_host}:{request.url_port} (Service {svc.namespace}/{svc.name} has no external IP)",
                (Evidence(svc.field_where(".status.loadBalancer"), "no ingress IP assigned"),),
                problem=f"LoadBalancer Service {svc.namespace}/{svc.name} has no external IP",
            )
    listed = ", ".join(f"{svc.namespace}/{svc.name}={'/'.join(_lb_addresses(svc)) or 'pending'}" for svc in fronting)
    what = f"ingress LoadBalancer(s): {listed}" if listed else "no LoadBalancer Service in front of the ingress"
    return PathHop(
        1,
        name,
        f"{request.url_host}:{request.url_port} (not a LoadBalancer IP of the snapshot)",
        (Evidence(f"snapshot {snap.source}", what),),
    )


# --- hop 2 -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RuleMatch:
    backend_index: int
    exact: bool
    length: int
    upstream_path: str
    description: str


def _host_only(authority: str) -> str:
    host = authority.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _host_rank(rule_host: str | None, host: str) -> int:
    """2 exact, 1 wildcard (`*.example.com`, one label), 0 no host on the rule, -1 no match."""
    if rule_host is None:
        return 0
    rule = rule_host.lower()
    if rule == host:
        return 2
    if rule.startswith("*.") and host.endswith(rule[1:]) and "." not in host[: -len(rule) + 1]:
        return 1
    return -1


def _hop2(snap: Snapshot, request: PathRequest) -> tuple[PathHop, str | None, IngressBackend | None]:
    """The Ingress rule ingress-nginx picks; returns (hop, path sent upstream, the rule's backend)."""
    name = HOP_NAMES[2]
    candidates = [ing for ing in ingresses(snap) if is_nginx_ingress(snap, ing)]
    if not candidates:
        return (
            PathHop(
                2,
                name,
                "no ingress-nginx Ingress in the snapshot",
                (Evidence(f"snapshot {snap.source}", "no Ingress objects"),),
            ),
            None,
            None,
        )
    host = _host_only(request.authority)
    regex_for = regex_hosts(snap)
    backends = [backend for ing in candidates for backend in ingress_backends(ing)]
    ranked = [(b, _host_rank(b.host, host)) for b in backends if b.path is not None]
    best_rank = max((rank for _, rank in ranked), default=-1)
    matches: list[tuple[_RuleMatch, IngressBackend]] = []
    for index, (backend, rank) in enumerate(ranked):
        if rank < 0 or rank != best_rank or backend.path is None:
            continue
        regex = (backend.host or "") in regex_for
        simulation = simulate_path(
            backend.path, backend.path_type, request.path, regex=regex, rewrite=rewrite_target(backend.ingress)
        )
        if not simulation.matched or simulation.upstream_path is None:
            continue
        matches.append(
            (
                _RuleMatch(
                    index,
                    backend.path_type == PathType.EXACT,
                    len(backend.path),
                    simulation.upstream_path,
                    simulation.describe(),
                ),
                backend,
            )
        )
    if not matches:
        defaults = [b for b in backends if b.path is None]
        tried = sorted({f"{b.host or '*'}{b.path}" for b, _ in ranked})
        what = f"Host {host!r} and path {request.path} match none of: {', '.join(tried) or 'no rules'}"
        evidence = [Evidence(f"snapshot {snap.source} (Ingress rules)", what)]
        if defaults:
            evidence.append(Evidence(defaults[0].where, f"defaultBackend {defaults[0].describe()}"))
        return (
            PathHop(
                2,
                name,
                f"no Ingress rule for {host}{request.path}",
                tuple(evidence),
                problem="host/path matched no Ingress rule: ingress-nginx answers from its default backend (404)",
            ),
            None,
            None,
        )
    matches.sort(key=lambda item: (not item[0].exact, -item[0].length))
    chosen, backend = matches[0]
    component = f"Ingress {backend.namespace}/{backend.ingress.name} {backend.describe()}"
    where = backend.ingress.field_where(backend.path_field or backend.field)
    return PathHop(2, name, component, (Evidence(where, chosen.description),)), chosen.upstream_path, backend


# --- hop 3 -------------------------------------------------------------------------------------------------------


def _hop3(snap: Snapshot, backend: IngressBackend | None) -> tuple[PathHop, str | None]:
    name = HOP_NAMES[3]
    if backend is None:
        return PathHop(3, name, "unknown (no Ingress rule leads here)"), None
    resolution = resolve_backend(snap, backend.namespace, backend.service, backend.port)
    final = resolution.final
    evidence = [
        Evidence(
            final.service.field_where(".spec.ports") if final.service is not None else f"snapshot {snap.source}",
            resolution.chain(),
        )
    ]
    problem = None
    if resolution.stop is not Stop.SERVICE:
        problem = resolution.detail
    ready = ready_endpoints(snap, final.namespace, final.name)
    endpoints_text = ""
    if ready is not None:
        has_ready, items = ready
        evidence.extend(Evidence(where, what) for where, what in items)
        endpoints_text = "" if has_ready else ", no ready endpoints"
        if not has_ready and problem is None:
            problem = f"Service {final.namespace}/{final.name} has no ready endpoints"
    component = f"Service {final.namespace}/{final.name}:{final.port}{endpoints_text}"
    return PathHop(3, name, component, tuple(evidence), problem), envoy_namespace(snap, resolution)


# --- hops 4 to 7 -------------------------------------------------------------------------------------------------


def _envoy(
    snap: Snapshot, namespace: str | None, override: EnvoyConfig | None, override_where: str | None
) -> tuple[EnvoyConfig | None, str | None, str]:
    sources = snap.envoy_configs(namespace) if namespace is not None else []
    if not sources:
        sources = snap.envoy_configs()
    if override is not None:
        pod = f"Envoy {sources[0].namespace}/{sources[0].pod}" if sources else "Envoy"
        return override, override_where, f"{pod} (live config_dump)"
    if not sources:
        return None, None, "no Envoy config_dump in the snapshot"
    env = sources[0]
    return env.config, env.config_display, f"Envoy {env.namespace}/{env.pod}"


def _weights_text(route: Route) -> str:
    total = sum(weight.weight for weight in route.clusters) or 1
    return ", ".join(f"{w.cluster} {100.0 * w.weight / total:.0f}%" for w in route.clusters)


def _experiment(snap: Snapshot, namespace: str | None, seldon_model: str | None) -> KubeObject | None:
    name = experiment_of_route_value(seldon_model)
    if name is None:
        return None
    if namespace is not None:
        return snap.get("Experiment", namespace, name)
    return next((exp for exp in snap.objects_of("Experiment") if exp.name == name), None)


def _pod_for_endpoint(snap: Snapshot, namespace: str | None, endpoint: str) -> KubeObject | None:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    short = host.split(".", 1)[0]
    pods = server_pods(snap, namespace) or server_pods(snap)
    for pod in pods:
        if pod.name in (host, short) or str(pod.status.get("podIP", "")) == host:
            return pod
    for pod in snap.objects_of("Pod", namespace):
        if pod.name in (host, short) or str(pod.status.get("podIP", "")) == host:
            return pod
    return None


def _only_server_pod(
    snap: Snapshot, namespace: str | None, model_name: str
) -> tuple[KubeObject | None, Evidence | None]:
    """When Envoy's endpoint names no pod of the snapshot (an address outside it), the pod of the Model's Server,
    if the Server has exactly one."""
    model = snap.get("Model", namespace, model_name) if namespace else None
    servers = snap.objects_of("Server", namespace)
    server = str(model.spec.get("server")) if model is not None and model.spec.get("server") else None
    if server is None and len(servers) == 1:
        server = servers[0].name
    if server is None:
        return None, None
    pods = [
        pod
        for pod in server_pods(snap, namespace)
        if pod.labels.get("seldon-server-name") == server or re.fullmatch(rf"{re.escape(server)}-\d+", pod.name)
    ]
    if len(pods) != 1:
        return None, None
    where = model.field_where(".spec.server") if model is not None and model.spec.get("server") else servers[0].ref
    return pods[0], Evidence(
        where, f"Model {model_name} is served by Server {server}, whose only pod is {pods[0].name}"
    )


def _ingress_sent_headers(
    request: PathRequest, backend: IngressBackend | None
) -> tuple[Mapping[str, str], frozenset[str]]:
    """The headers NGINX sends upstream: the client's, with what the matched Ingress's configuration-snippet sets
    (e.g. a default `seldon-model`); and the names the snippet set."""
    if backend is None:
        return request.headers, frozenset()
    set_by_snippet = snippet_request_headers(backend.ingress, request.headers)
    if not set_by_snippet:
        return request.headers, frozenset()
    return {**request.headers, **set_by_snippet}, frozenset(set_by_snippet)


def reconstruct(
    snap: Snapshot,
    request: PathRequest,
    served_route: str | None = None,
    *,
    envoy_override: EnvoyConfig | None = None,
    envoy_override_where: str | None = None,
) -> RequestPath:
    """The seven hops of `request`; `served_route` is the `x-seldon-route` of its answer, when there was one."""
    hops: dict[int, PathHop] = {1: _hop1(snap, request)}
    hop2, upstream_path, backend = _hop2(snap, request)
    hops[2] = hop2
    hop3, namespace = _hop3(snap, backend)
    hops[3] = hop3
    ingress_matched: bool | None = (
        None if upstream_path is None and backend is None and not ingresses(snap) else (upstream_path is not None)
    )
    envoy_path = upstream_path if upstream_path is not None else request.path
    sent_headers, by_ingress = _ingress_sent_headers(request, backend)
    effective = lua_effective_headers(envoy_path, sent_headers, request.grpc)
    config, config_where, envoy_label = _envoy(snap, namespace, envoy_override, envoy_override_where)
    route: Route | None = None
    if config is None:
        hops[4] = PathHop(4, HOP_NAMES[4], envoy_label, (Evidence(f"snapshot {snap.source}", envoy_label),))
    else:
        route = select_route(config, request.authority, envoy_path, effective)
        shown: dict[str, str] | str = {k: v for k, v in effective.items() if k in (SELDON_MODEL, STICKY_HEADER)}
        if by_ingress and shown:
            shown = f"{shown} ({', '.join(sorted(by_ingress))} set by the Ingress's configuration-snippet)"
        where = config_where or envoy_label
        if route is None:
            hops[4] = PathHop(
                4,
                HOP_NAMES[4],
                f"{envoy_label}: no route",
                (Evidence(where, f"no route matches {envoy_path} with {shown or 'no Seldon headers'}"),),
                problem="no Envoy route matches: Envoy answers 404 (NR)",
            )
        else:
            hops[4] = PathHop(
                4,
                HOP_NAMES[4],
                f"{envoy_label} route {route.name or '#' + str(route.index)} ({route.route_config})",
                (Evidence(where, f"route {route.name} matches {envoy_path} with {shown or 'no Seldon headers'}"),),
            )
    experiment = _experiment(snap, namespace, effective.get(SELDON_MODEL))
    served_cluster: str | None = None
    if route is not None and route.clusters:
        weights = _weights_text(route)
        served = route_models(served_route)
        for weight in route.clusters:
            if served and cluster_model(weight.cluster) == served[0]:
                served_cluster = weight.cluster
        if served_cluster is None and len(route.clusters) == 1:
            served_cluster = route.clusters[0].cluster
        evidence = [Evidence(config_where or envoy_label, f"weighted clusters: {weights}")]
        if experiment is not None:
            wanted = ", ".join(f"{n} {w}" for n, w in iter_weighted_candidates(experiment))
            evidence.append(Evidence(experiment.field_where(".spec.candidates"), f"Experiment weights: {wanted}"))
        chosen = f"chose {served_cluster}" if served_cluster else "cluster unknown (no x-seldon-route answer)"
        hops[5] = PathHop(5, HOP_NAMES[5], f"{len(route.clusters)} weighted cluster(s); {chosen}", tuple(evidence))
    else:
        hops[5] = PathHop(5, HOP_NAMES[5], "no weighted clusters (no route)")
    hops[6], hops[7] = _server_hops(snap, namespace, config, config_where, served_cluster, served_route)
    return RequestPath(
        hops=hops,
        source=snap.source,
        namespace=namespace,
        upstream_path=upstream_path,
        ingress_matched=ingress_matched,
        envoy_config=config,
        envoy_where=config_where,
        route=route,
        route_headers=effective,
        experiment=experiment,
        served_cluster=served_cluster,
    )


def _server_hops(
    snap: Snapshot,
    namespace: str | None,
    config: EnvoyConfig | None,
    config_where: str | None,
    served_cluster: str | None,
    served_route: str | None,
) -> tuple[PathHop, PathHop]:
    versioned = cluster_model(served_cluster) if served_cluster else None
    if versioned is None:
        names = route_models(served_route)
        versioned = names[0] if names else None
    hop6 = PathHop(6, HOP_NAMES[6], "unknown (no cluster chosen)")
    if config is not None and served_cluster is not None:
        cluster = config.cluster(served_cluster)
        if cluster is None:
            hop6 = PathHop(
                6,
                HOP_NAMES[6],
                f"cluster {served_cluster} missing",
                (Evidence(config_where or "config_dump", f"no cluster {served_cluster}"),),
                problem=f"Envoy has no cluster {served_cluster} (503 NC)",
            )
        elif not cluster.endpoints:
            hop6 = PathHop(
                6,
                HOP_NAMES[6],
                f"cluster {served_cluster} has no endpoints",
                (Evidence(config_where or "config_dump", f"cluster {served_cluster}: no endpoints"),),
                problem=f"cluster {served_cluster} has no endpoints (503 UH)",
            )
        else:
            endpoint = cluster.endpoints[0]
            pod = _pod_for_endpoint(snap, namespace, endpoint)
            via_server = None
            if pod is None and versioned is not None:
                pod, via_server = _only_server_pod(snap, namespace, split_versioned(versioned)[0])
            evidence = [
                Evidence(config_where or "config_dump", f"cluster {served_cluster} → {', '.join(cluster.endpoints)}")
            ]
            if via_server is not None:
                evidence.append(via_server)
            if pod is not None:
                evidence.append(
                    Evidence(pod.field_where(".status.phase"), f"Pod {pod.name} is {pod.status.get('phase', '?')}")
                )
                component = f"Pod {pod.namespace}/{pod.name} agent {endpoint.rsplit(':', 1)[-1]}"
            else:
                component = f"agent at {endpoint}"
            hop6 = PathHop(6, HOP_NAMES[6], component, tuple(evidence))
    hop7 = PathHop(7, HOP_NAMES[7], f"{versioned} (MLServer)" if versioned else "unknown model version")
    if versioned is not None:
        model_name, version = split_versioned(versioned)
        model = snap.get("Model", namespace, model_name) if namespace else None
        if model is None:
            model = next((m for m in snap.objects_of("Model") if m.name == model_name), None)
        if model is not None:
            server = model.spec.get("server") or "any server"
            ready = model.condition_true("Ready")
            evidence7 = (
                Evidence(
                    model.field_where(".spec"),
                    f"Model {model.name} version {version} on {server}, "
                    f"storageUri {model.spec.get('storageUri', '?')}, Ready={ready}",
                ),
            )
            hop7 = PathHop(
                7, HOP_NAMES[7], f"Model {model.namespace}/{model.name} v{version} → MLServer {versioned}", evidence7
            )
    return hop6, hop7
