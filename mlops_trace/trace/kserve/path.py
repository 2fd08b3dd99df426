"""The hops of a request to an InferenceService, read from a Snapshot. Knative mode here (the ingress gateway's
Gateway and KServe's VirtualService matched by Host and path, the local gateway and net-istio's VirtualService that
picks the revision, the activator when the revision has no ready pod, the revision pod's queue-proxy, a transformer
and its call to the predictor, the kserve-container, the model); Standard mode in `path_standard`.

Names are the controllers' (KSERVE-FACTS §2): ksvc/Route `<isvc>-<component>`, revisions `<ksvc>-0000N` with pods
labelled `serving.knative.dev/revision`, KServe's VirtualService `<isvc>`, net-istio's `<ksvc>-ingress`, the
gateways `knative-serving/knative-ingress-gateway` and `knative-local-gateway` (or what inferenceservice-config's
`ingress` section names). Pure functions; where the snapshot shows a hop cannot pass, its `problem` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_trace.analysis.kserve import (
    arg_value,
    component_name,
    component_revision,
    condition_evidence,
    container_args,
    container_status,
    ingress_config,
    kserve_pods,
    revision_timeout_words,
    storage_uri,
)
from mlops_trace.findings import Evidence
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.kserve import istio
from mlops_trace.trace.kserve.hops import Hop, number, plan
from mlops_trace.trace.kserve.target import Isvc, component_host
from mlops_trace.trace.path import PathHop

INGRESS_GATEWAY = "knative-serving/knative-ingress-gateway"
LOCAL_GATEWAY = "knative-serving/knative-local-gateway"
LOCAL_GATEWAY_SERVICE = "knative-local-gateway.istio-system.svc.cluster.local"
REVISION_LABEL = "serving.knative.dev/revision"


@dataclass(frozen=True)
class KRequest:
    """The request as the path sees it."""

    url_host: str
    url_port: int
    authority: str
    path: str
    model: str


@dataclass(frozen=True)
class KPath:
    keys: tuple[Hop, ...]
    hops: Mapping[Hop, PathHop]
    source: str | None
    isvc: Isvc
    revisions: Mapping[str, float] = field(default_factory=dict)  # predictor revision → share its route gives it
    revisions_where: str = ""
    activator: bool | None = None  # None: not known

    def number(self, key: Hop) -> int:
        return number(self.keys, key)

    def key(self, hop_number: int) -> Hop:
        return self.keys[hop_number - 1]

    def hop(self, key: Hop) -> PathHop | None:
        return self.hops.get(key)


def unnumbered(key: Hop, component: str, evidence: tuple[Evidence, ...] = (), problem: str | None = None) -> PathHop:
    return PathHop(0, key.value, component, evidence, problem)  # numbered when the path is assembled


def numbered(keys: tuple[Hop, ...], hops: Mapping[Hop, PathHop]) -> dict[Hop, PathHop]:
    return {
        key: PathHop(index, key.value, hops[key].component, hops[key].evidence, hops[key].problem)
        for index, key in enumerate(keys, start=1)
        if key in hops
    }


def unknown_path(isvc: Isvc, why: str) -> KPath:
    """The hops without a snapshot: names only, components unknown."""
    keys = plan(knative=isvc.knative, transformer=isvc.transformer)
    return KPath(keys, numbered(keys, {key: unnumbered(key, f"unknown ({why})") for key in keys}), None, isvc)


# --- the gateways --------------------------------------------------------------------------------------------------


def _config_value(snap: Snapshot, key: str, default: str) -> str:
    config = ingress_config(snap)
    value = config.text(key) if config is not None else ""
    return value or default


def external_ip(snap: Snapshot, request: KRequest) -> PathHop:
    svc, evidence = istio.load_balancer(snap, request.url_host, request.url_port)
    dialled = f"{request.url_host}:{request.url_port}"
    if svc is None:
        return unnumbered(Hop.EXTERNAL_IP, f"{dialled} (not a LoadBalancer address of the snapshot)", (evidence,))
    return unnumbered(
        Hop.EXTERNAL_IP, f"Service {svc.namespace}/{svc.name} LoadBalancer (client dialled {dialled})", (evidence,)
    )


def _gateway_hop(snap: Snapshot, isvc: Isvc, request: KRequest) -> tuple[PathHop, istio.RouteMatch | None]:
    gateway = _config_value(snap, "ingressGateway", INGRESS_GATEWAY)
    gateway_obj = istio.gateway_object(snap, gateway)
    evidence: list[Evidence] = []
    if gateway_obj is not None:
        evidence.append(
            Evidence(
                gateway_obj.field_where(".spec.servers"),
                f"Gateway {gateway} selects {dict(as_mapping(gateway_obj.spec.get('selector')))}",
            )
        )
    match = istio.select(snap, request.authority, request.path, gateway)
    if match is None:
        hosts = istio.hosts_of(snap, isvc.namespace, gateway)
        listed = ", ".join(sorted({host for host, _ in hosts})) or "none"
        evidence.append(
            Evidence(
                hosts[0][1] if hosts else f"snapshot {snap.source}", f"hosts on {gateway} in {isvc.namespace}: {listed}"
            )
        )
        if isvc.obj is not None and isvc.host:
            evidence.append(Evidence(isvc.url_where, f"the InferenceService's host: {isvc.host}"))
        problem = (
            f"no VirtualService route on {gateway} takes Host {request.authority} and path {request.path}: "
            "Istio's Envoy answers 404 with an empty body (NR)"
        )
        if gateway_obj is None and istio.hosts_of(snap, None, gateway) == []:
            problem = f"no Gateway {gateway} and no VirtualService bound to it: nothing routes the request"
        return unnumbered(
            Hop.GATEWAY, f"Gateway {gateway}: no route for Host {request.authority}", tuple(evidence), problem
        ), None
    evidence.append(Evidence(match.where, match.describe()))
    return unnumbered(Hop.GATEWAY, f"Gateway {gateway} · {match.describe()}", tuple(evidence)), match


def _revision_pods(snap: Snapshot, namespace: str | None, revision: str) -> list[KubeObject]:
    return [pod for pod in snap.objects_of("Pod", namespace) if pod.labels.get(REVISION_LABEL) == revision]


def _pod_ready(pod: KubeObject) -> bool:
    return pod.status.get("phase") == "Running" and pod.condition_true("Ready") is not False


def _knative_route(
    snap: Snapshot, isvc: Isvc, component: str, host: str, destination: str | None, key: Hop
) -> tuple[PathHop, dict[str, float], str]:
    """The local gateway and net-istio's VirtualService for `host`: which revisions, with what share."""
    local = _config_value(snap, "localGateway", LOCAL_GATEWAY)
    local_obj = istio.gateway_object(snap, local)
    evidence: list[Evidence] = []
    problem = None
    if local_obj is None and (destination is None or destination.startswith("knative-local-gateway")):
        problem = (
            f"no Gateway {local}: nothing on the gateway pods listens for the local gateway, so the ingress "
            "gateway's connection to it is refused (503 UF/URX)"
        )
        evidence.append(Evidence(f"snapshot {snap.source}", f"Gateway.networking.istio.io {local} not found"))
    match = istio.select(snap, host, "/", local)
    ksvc = component_name(isvc.name, component)
    route = snap.get("Route", isvc.namespace, ksvc)
    if route is not None:
        traffic = ", ".join(
            f"{as_mapping(t).get('revisionName')} {as_mapping(t).get('percent')}%"
            for t in as_list(route.status.get("traffic"))
        )
        evidence.append(Evidence(route.field_where(".status.traffic"), f"Route {ksvc} traffic: {traffic or 'none'}"))
        ready = condition_evidence(route, "Ready")
        if ready is not None and route.condition_true("Ready") is not True:
            evidence.append(ready)
    if match is None:
        if problem is None and local_obj is not None:
            problem = f"no VirtualService on {local} takes Host {host}: the local gateway answers 404 (NR)"
        return unnumbered(key, f"Gateway {local}: no route for Host {host}", tuple(evidence), problem), {}, ""
    shares = {d.host.split(".", 1)[0]: d.weight for d in match.destinations}
    total = sum(shares.values()) or 1.0
    evidence.insert(0, Evidence(match.where, match.describe()))
    return (
        unnumbered(key, f"Gateway {local} · {match.describe()}", tuple(evidence), problem),
        {rev: round(share / total, 6) for rev, share in shares.items()},
        match.where,
    )


def _chosen(shares: Mapping[str, float], served: str | None) -> str | None:
    if served and served in shares:
        return served
    return max(shares, key=lambda rev: shares[rev]) if shares else None


def _activator(snap: Snapshot, isvc: Isvc, revision: str | None) -> tuple[PathHop, bool | None]:
    if revision is None:
        return unnumbered(Hop.ACTIVATOR, "unknown (no revision chosen)"), None
    pods = _revision_pods(snap, isvc.namespace, revision)
    ready = [pod for pod in pods if _pod_ready(pod)]
    endpoints = snap.get("Endpoints", isvc.namespace, revision)
    where = endpoints.field_where(".subsets") if endpoints is not None else f"snapshot {snap.source} (Pods)"
    if ready:
        return unnumbered(
            Hop.ACTIVATOR,
            f"not on the path: revision {revision} has {len(ready)} ready pod(s)",
            (Evidence(where, f"ready pods of {revision}: {', '.join(p.name for p in ready)}"),),
        ), False
    return unnumbered(
        Hop.ACTIVATOR,
        f"on the path: revision {revision} has no ready pod (scaled to zero or starting)",
        (Evidence(where, f"no ready pod of {revision}: the activator holds the request until one is"),),
    ), True


def _pod_hop(snap: Snapshot, isvc: Isvc, revision: str | None, key: Hop, container: str) -> PathHop:
    if revision is None:
        return unnumbered(key, "unknown (no revision chosen)")
    pods = _revision_pods(snap, isvc.namespace, revision)
    if not pods:
        return unnumbered(
            key,
            f"revision {revision}: no pod in the snapshot",
            (Evidence(f"snapshot {snap.source}", f"no Pod labelled {REVISION_LABEL}={revision}"),),
        )
    pod = next((p for p in pods if _pod_ready(p)), pods[0])
    found = container_status(pod, container)
    evidence = [Evidence(pod.field_where(".status.phase"), f"Pod {pod.name} is {pod.status.get('phase', '?')}")]
    problem = None
    if found is not None:
        index, status = found
        state = ", ".join(as_mapping(status.get("state")).keys()) or "?"
        evidence.append(
            Evidence(
                pod.field_where(f".status.containerStatuses[{index}]"),
                f"{container} ready={status.get('ready')} {state}, restarts {status.get('restartCount', 0)}",
            )
        )
        if status.get("ready") is False:
            problem = f"container {container} of {pod.name} is not ready"
    if key is Hop.QUEUE_PROXY:
        words, shown = revision_timeout_words(snap, snap.get("Revision", isvc.namespace, revision))
        evidence.append(shown[0] if shown else Evidence(f"snapshot {snap.source}", words))
    return unnumbered(key, f"Pod {pod.namespace}/{pod.name} {container}", tuple(evidence), problem)


def transformer_hop(snap: Snapshot, isvc: Isvc) -> PathHop:
    """The transformer's container and the `--predictor_host` it calls (KServe sets `<isvc>-predictor.<ns>`)."""
    pods = [
        pod
        for pod, name, component in kserve_pods(snap, isvc.namespace)
        if name == isvc.name and component == "transformer"
    ]
    spec = as_mapping(isvc.obj.spec.get("transformer")) if isvc.obj is not None else {}
    args: list[str] = []
    where = isvc.obj.field_where(".spec.transformer.containers[0].args") if isvc.obj is not None else ""
    for item in as_list(spec.get("containers")):
        args = container_args(as_mapping(item))
        break
    pod = next((p for p in pods if _pod_ready(p)), pods[0] if pods else None)
    if pod is not None:
        for index, item in enumerate(as_list(pod.spec.get("containers"))):
            container = as_mapping(item)
            if container.get("name") in ("kserve-container", "transformer-container"):
                args = container_args(container) or args
                where = pod.field_where(f".spec.containers[{index}].args")
    predictor_host = arg_value(args, "--predictor_host")
    evidence = [Evidence(where or f"snapshot {snap.source}", f"--predictor_host {predictor_host or '(not set)'}")]
    problem = None
    expected = f"{component_name(isvc.name, 'predictor')}.{isvc.namespace}"
    if predictor_host:
        service, _, rest = predictor_host.partition(".")
        namespace = rest.split(".", 1)[0] if rest else isvc.namespace
        if snap.get("Service", namespace, service.split(":", 1)[0]) is None and predictor_host != expected:
            problem = (
                f"the transformer calls --predictor_host {predictor_host}, which names no Service of the "
                f"snapshot (KServe sets {expected}): its calls to the predictor fail and it answers 500"
            )
    component = f"Pod {pod.namespace}/{pod.name}" if pod is not None else "transformer (no pod in the snapshot)"
    return unnumbered(Hop.TRANSFORMER, f"{component} → {predictor_host or '?'}", tuple(evidence), problem)


def model_hop(snap: Snapshot, isvc: Isvc, request: KRequest) -> PathHop:
    if isvc.obj is None:
        return unnumbered(Hop.MODEL, f"model {request.model}")
    obj = isvc.obj
    states = as_mapping(as_mapping(obj.status.get("modelStatus")).get("states"))
    uri = storage_uri(obj)
    evidence = [
        Evidence(
            obj.field_where(".status.modelStatus"),
            f"modelStatus {states.get('activeModelState') or '?'} (target {states.get('targetModelState') or '?'})",
        )
    ]
    if uri is not None:
        evidence.append(Evidence(uri[1], f"storageUri {uri[0]}"))
    served = _served_model_name(snap, isvc) or isvc.name
    problem = None
    if not isvc.transformer and served != request.model:
        problem = f"the model server serves {served}, the path names {request.model}: it answers 404"
    return unnumbered(
        Hop.MODEL, f"model {served} ({states.get('activeModelState') or 'state unknown'})", tuple(evidence), problem
    )


def _served_model_name(snap: Snapshot, isvc: Isvc) -> str | None:
    for pod, name, component in kserve_pods(snap, isvc.namespace):
        if name != isvc.name or component != "predictor":
            continue
        for item in as_list(pod.spec.get("containers")):
            container = as_mapping(item)
            if container.get("name") == "kserve-container":
                value = arg_value(container_args(container), "--model_name")
                if value:
                    return value
    return None


# --- assembling ----------------------------------------------------------------------------------------------------


def reconstruct_knative(
    snap: Snapshot, isvc: Isvc, request: KRequest, served: Mapping[str, str] | None = None
) -> KPath:
    """The hops of a request to `isvc` in Knative mode; `served` maps a component to the revision the logs say
    served it."""
    served = served or {}
    keys = plan(knative=True, transformer=isvc.transformer)
    hops: dict[Hop, PathHop] = {Hop.EXTERNAL_IP: external_ip(snap, request)}
    hops[Hop.GATEWAY], match = _gateway_hop(snap, isvc, request)
    entry = isvc.entry_component
    entry_host = (match.set_host if match is not None else None) or component_host(isvc, entry)
    destination = match.destinations[0].host if match is not None and match.destinations else None
    hops[Hop.KNATIVE_ROUTE], shares, where = _knative_route(
        snap, isvc, entry, entry_host, destination, Hop.KNATIVE_ROUTE
    )
    entry_revision = _chosen(shares, served.get(entry)) or _latest(snap, isvc, entry)
    hops[Hop.ACTIVATOR], on_path = _activator(snap, isvc, entry_revision)
    hops[Hop.QUEUE_PROXY] = _pod_hop(snap, isvc, entry_revision, Hop.QUEUE_PROXY, "queue-proxy")
    predictor_shares, predictor_where = shares, where
    predictor_revision = entry_revision
    if isvc.transformer:
        hops[Hop.TRANSFORMER] = transformer_hop(snap, isvc)
        route_hop, predictor_shares, predictor_where = _knative_route(
            snap, isvc, "predictor", component_host(isvc, "predictor"), None, Hop.PREDICTOR_ROUTE
        )
        hops[Hop.PREDICTOR_ROUTE] = route_hop
        predictor_revision = _chosen(predictor_shares, served.get("predictor")) or _latest(snap, isvc, "predictor")
    hops[Hop.SERVER] = _pod_hop(snap, isvc, predictor_revision, Hop.SERVER, "kserve-container")
    hops[Hop.MODEL] = model_hop(snap, isvc, request)
    return KPath(keys, numbered(keys, hops), snap.source, isvc, predictor_shares, predictor_where, on_path)


def _latest(snap: Snapshot, isvc: Isvc, component: str) -> str | None:
    if isvc.obj is None:
        return None
    revision = component_revision(snap, isvc.obj, component)
    return revision.name if revision is not None else None
