"""The hops of a request to an InferenceService in Standard mode (formerly RawDeployment): the LoadBalancer, the
Ingress `<isvc>` (host rules to `<isvc>-predictor` or `<isvc>-transformer`, port 80) or, with `enableGatewayApi`, the
HTTPRoute `<isvc>` (hostnames, backendRefs), the component's Service and its endpoints, a transformer, the predictor
pod, the model (KSERVE-FACTS §2.4). Pure functions over the Snapshot.
"""

from __future__ import annotations

from mlops_trace.analysis.ingress import ready_endpoints
from mlops_trace.analysis.kserve import bare_host, component_name, container_status, kserve_pods
from mlops_trace.findings import Evidence
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.kserve.hops import Hop, plan
from mlops_trace.trace.kserve.path import KPath, KRequest, external_ip, model_hop, numbered, transformer_hop, unnumbered
from mlops_trace.trace.kserve.target import Isvc
from mlops_trace.trace.path import PathHop


def _host_matches(rule: str, host: str) -> bool:
    rule = rule.lower()
    return rule == host or (rule.startswith("*.") and host.endswith(rule[1:]) and "." not in host[: -len(rule) + 1])


def _ingress_backend(snap: Snapshot, namespace: str | None, host: str) -> tuple[KubeObject, int, str] | None:
    """(Ingress, rule index, backend Service) of the Ingress rule for `host` with a `/` path."""
    for ing in snap.objects_of("Ingress", namespace):
        for index, item in enumerate(as_list(ing.spec.get("rules"))):
            rule = as_mapping(item)
            if rule.get("host") and not _host_matches(str(rule.get("host")), host):
                continue
            for path in as_list(as_mapping(rule.get("http")).get("paths")):
                service = as_mapping(as_mapping(as_mapping(path).get("backend")).get("service")).get("name")
                if service:
                    return ing, index, str(service)
    return None


def _httproute_backend(snap: Snapshot, namespace: str | None, host: str) -> tuple[KubeObject, str] | None:
    for route in snap.objects_of("HTTPRoute", namespace):
        names = [str(h) for h in as_list(route.spec.get("hostnames"))]
        if names and not any(_host_matches(name, host) for name in names):
            continue
        for rule in as_list(route.spec.get("rules")):
            for ref in as_list(as_mapping(rule).get("backendRefs")):
                name = as_mapping(ref).get("name")
                if name:
                    return route, str(name)
    return None


def _ingress_hop(snap: Snapshot, request: KRequest, namespace: str | None) -> tuple[PathHop, str | None]:
    host = bare_host(request.authority)
    found = _ingress_backend(snap, namespace, host)
    if found is not None:
        ing, index, service = found
        klass = ing.spec.get("ingressClassName") or "the cluster's default class"
        evidence = [Evidence(ing.field_where(f".spec.rules[{index}]"), f"host {host} → Service {service}")]
        problem = None
        if not as_list(as_mapping(ing.status.get("loadBalancer")).get("ingress")):
            evidence.append(Evidence(ing.field_where(".status.loadBalancer"), "no address: no controller took it"))
            problem = (
                f"Ingress {ing.namespace}/{ing.name} (class {klass}) has no address: no ingress controller "
                "serves it, and the gateway you reach answers its own 404"
            )
        return unnumbered(
            Hop.INGRESS, f"Ingress {ing.namespace}/{ing.name} (class {klass}) → {service}", tuple(evidence), problem
        ), service
    route = _httproute_backend(snap, namespace, host)
    if route is not None:
        obj, service = route
        parents = ", ".join(str(as_mapping(p).get("name")) for p in as_list(obj.spec.get("parentRefs")))
        return unnumbered(
            Hop.INGRESS,
            f"HTTPRoute {obj.namespace}/{obj.name} (parents {parents or '?'}) → {service}",
            (Evidence(obj.field_where(".spec.rules"), f"hostname {host} → Service {service}"),),
        ), service
    return unnumbered(
        Hop.INGRESS,
        f"no Ingress or HTTPRoute for Host {host}",
        (Evidence(f"snapshot {snap.source}", f"no Ingress rule or HTTPRoute hostname takes {host}"),),
        f"no Ingress rule or HTTPRoute takes Host {host}: the ingress answers its own 404",
    ), None


def _service_hop(snap: Snapshot, namespace: str | None, service: str | None) -> PathHop:
    if service is None or namespace is None:
        return unnumbered(Hop.SERVICE, "unknown (no route leads here)")
    svc = snap.get("Service", namespace, service)
    if svc is None:
        return unnumbered(
            Hop.SERVICE,
            f"Service {namespace}/{service} missing",
            (Evidence(f"snapshot {snap.source}", f"no Service {namespace}/{service}"),),
            f"the route's backend Service {namespace}/{service} does not exist (503)",
        )
    ready = ready_endpoints(snap, namespace, service)
    evidence = [
        Evidence(
            svc.field_where(".spec.ports"),
            f"ports {[as_mapping(p).get('port') for p in as_list(svc.spec.get('ports'))]}",
        )
    ]
    problem = None
    if ready is not None:
        has_ready, items = ready
        evidence.extend(Evidence(where, what) for where, what in items)
        if not has_ready:
            problem = f"Service {namespace}/{service} has no ready endpoints (503)"
    return unnumbered(Hop.SERVICE, f"Service {namespace}/{service}", tuple(evidence), problem)


def _pod_hop(snap: Snapshot, namespace: str | None, isvc_name: str) -> PathHop:
    pods = [
        pod for pod, name, component in kserve_pods(snap, namespace) if name == isvc_name and component == "predictor"
    ]
    if not pods:
        return unnumbered(Hop.POD, f"{component_name(isvc_name, 'predictor')}: no pod in the snapshot")
    pod = next((p for p in pods if p.status.get("phase") == "Running"), pods[0])
    evidence = [Evidence(pod.field_where(".status.phase"), f"Pod {pod.name} is {pod.status.get('phase', '?')}")]
    found = container_status(pod, "kserve-container")
    problem = None
    if found is not None:
        index, status = found
        evidence.append(
            Evidence(
                pod.field_where(f".status.containerStatuses[{index}]"),
                f"kserve-container ready={status.get('ready')}, restarts {status.get('restartCount', 0)}",
            )
        )
        if status.get("ready") is False:
            problem = f"kserve-container of {pod.name} is not ready"
    return unnumbered(Hop.POD, f"Pod {pod.namespace}/{pod.name} kserve-container", tuple(evidence), problem)


def reconstruct_standard(snap: Snapshot, isvc: Isvc, request: KRequest) -> KPath:
    keys = plan(knative=False, transformer=isvc.transformer)
    hops = {Hop.EXTERNAL_IP: external_ip(snap, request)}
    hops[Hop.INGRESS], service = _ingress_hop(snap, request, isvc.namespace)
    hops[Hop.SERVICE] = _service_hop(snap, isvc.namespace, service)
    if isvc.transformer:
        hops[Hop.TRANSFORMER] = transformer_hop(snap, isvc)
        service_hop = _service_hop(snap, isvc.namespace, component_name(isvc.name, "predictor"))
        hops[Hop.PREDICTOR_ROUTE] = unnumbered(
            Hop.PREDICTOR_ROUTE, service_hop.component, service_hop.evidence, service_hop.problem
        )
    hops[Hop.POD] = _pod_hop(snap, isvc.namespace, isvc.name)
    hops[Hop.MODEL] = model_hop(snap, isvc, request)
    return KPath(keys, numbered(keys, hops), snap.source, isvc)
