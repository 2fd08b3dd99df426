"""Ingress → backend resolution (ExternalName hops included) and ingress-nginx path/rewrite simulation.

Pure helpers over a Snapshot that the network checks share:

- `ingress_backends` lists the Service backends of an Ingress (rules and defaultBackend, v1 and v1beta1 shapes);
- `resolve_backend` follows a backend through its Service and any ExternalName hops the way ingress-nginx and
  cluster DNS do, and says where it stopped (a Service, a missing Service, a missing port, a name outside the cluster);
- `envoy_namespace` tells whether a resolved backend lands on Seldon's Envoy (`seldon-mesh` or an Envoy Service);
- `simulate_path` reproduces what ingress-nginx does to a request path: the `location` it writes (regex when
  `use-regex` or `rewrite-target` is set on any Ingress of the host, anchored with `^`, case-insensitive), and the
  `rewrite` with `$1..$9` captures, so a check can show the path that reaches the backend;
- `controller_pods`/`controller_workloads` find the ingress-nginx controller (the source of proxied traffic), and
  `workload_members`/`pod_endpoints` turn Pods (or workload templates when Pods are missing) into NetworkPolicy
  endpoints, for the network checks that follow traffic from the controller to Envoy and between Seldon pods;
  `invalid_ports` names the container ports of such a pod that no rule can admit traffic to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.analysis.netpol import (
    METADATA_NAME_LABEL,
    Endpoint,
    InvalidPort,
    endpoint_from_pod,
    endpoint_from_template,
    invalid_container_ports,
)
from mlops_trace.analysis.seldon import MESH_SERVICE, envoy_services
from mlops_trace.snapshot.kube import (
    KubeObject,
    as_list,
    as_mapping,
    pod_containers,
    pod_template_labels,
    pod_template_spec,
)
from mlops_trace.snapshot.roles import Role, pod_role, role_from_labels
from mlops_trace.snapshot.snapshot import Existence, Snapshot

ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
REWRITE_TARGET = ANNOTATION_PREFIX + "rewrite-target"
USE_REGEX = ANNOTATION_PREFIX + "use-regex"
BACKEND_PROTOCOL = ANNOTATION_PREFIX + "backend-protocol"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

GRPC_PREFIX = "/inference.GRPCInferenceService/"
GRPC_SAMPLE = "/inference.GRPCInferenceService/ModelInfer"
REST_PREFIX = "/v2/"
SAMPLE_MODEL = "model"
ENVOY_STATS_PORT = 9003

# Ingress classes that are certainly not ingress-nginx (their annotations and path rules differ).
_OTHER_CONTROLLERS = (
    "traefik",
    "haproxy",
    "kong",
    "istio",
    "alb",
    "gce",
    "contour",
    "cilium",
    "ambassador",
    "emissary",
    "skipper",
    "apisix",
    "azure",
    "nginx.org",
)
_MAX_HOPS = 8


class PathType(StrEnum):
    PREFIX = "Prefix"
    EXACT = "Exact"
    IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass(frozen=True)
class PortRef:
    """A Service port as a backend names it: by number or by name (both None: unknown)."""

    number: int | None = None
    name: str | None = None

    @property
    def known(self) -> bool:
        return self.number is not None or self.name is not None

    def __str__(self) -> str:
        if self.number is not None:
            return str(self.number)
        return self.name if self.name is not None else "?"


@dataclass(frozen=True)
class IngressBackend:
    """One Service backend of an Ingress: a rule path, or the defaultBackend (path None)."""

    ingress: KubeObject
    service: str
    port: PortRef
    field: str  # ".spec.rules[0].http.paths[1].backend"
    host: str | None
    path: str | None
    path_type: str
    path_field: str | None  # ".spec.rules[0].http.paths[1].path"

    @property
    def namespace(self) -> str:
        return self.ingress.namespace or "default"

    @property
    def where(self) -> str:
        return self.ingress.field_where(self.field)

    def describe(self) -> str:
        """`host h path /x (Prefix) → svc:80`, or `defaultBackend → svc:80`."""
        target = f"{self.service}:{self.port}"
        if self.path is None:
            return f"defaultBackend → {target}"
        host = f"host {self.host} " if self.host else ""
        return f"{host}path {self.path} ({self.path_type}) → {target}"


class Stop(StrEnum):
    """Where following a backend ended."""

    SERVICE = "service"  # a Service with endpoints of its own (ClusterIP, NodePort, LoadBalancer, headless)
    SERVICE_MISSING = "service-missing"  # not in the snapshot, and Services of that namespace were collected (or
    # the namespace itself does not exist: the Namespace list was collected without it)
    NOT_COLLECTED = "not-collected"  # not in the snapshot, and nothing says it was looked for
    PORT_MISSING = "port-missing"  # the Service has no port matching what is asked of it
    EXTERNAL = "external"  # an ExternalName outside the cluster (or one we cannot place)
    LOOP = "loop"  # ExternalName hops that come back to a Service already visited


@dataclass(frozen=True)
class Hop:
    """One Service on the way from an Ingress backend to the pods."""

    namespace: str
    name: str
    port: PortRef  # what is asked of this Service (the backend port, then the port carried over DNS)
    service: KubeObject | None
    service_port: Mapping[str, Any] | None  # the matching entry of spec.ports

    @property
    def is_external_name(self) -> bool:
        return self.service is not None and service_type(self.service) == "ExternalName"

    def label(self) -> str:
        return f"Service {self.namespace}/{self.name}:{self.port}"


@dataclass(frozen=True)
class Resolution:
    hops: tuple[Hop, ...]
    stop: Stop
    detail: str  # one line: why it stopped there

    @property
    def final(self) -> Hop:
        return self.hops[-1]

    def chain(self) -> str:
        """`Service a/x:80 → ExternalName y.b.svc.cluster.local → Service b/y:80`."""
        parts: list[str] = []
        for hop in self.hops:
            if hop.is_external_name and hop.service is not None:
                parts.append(f"{hop.label()} (ExternalName {external_name(hop.service)})")
            else:
                parts.append(hop.label() + ("" if hop.service is not None else " (not in the bundle)"))
        return " → ".join(parts)


@dataclass(frozen=True)
class ExternalTarget:
    """Where an ExternalName points: an in-cluster Service, or a name outside the cluster."""

    service: str | None
    namespace: str | None
    host: str
    certain: bool  # `svc.ns.svc[.domain]` is certainly in-cluster; `svc.ns` only when ns is a known namespace


# --- Ingress objects -------------------------------------------------------------------------------------------------


def ingresses(snap: Snapshot) -> list[KubeObject]:
    """Ingress objects of the networking.k8s.io (or legacy extensions) API."""
    return [
        ing
        for ing in snap.objects_of("Ingress")
        if not ing.api_version or ing.api_version.startswith(("networking.k8s.io/", "extensions/"))
    ]


def ingress_class(ingress: KubeObject) -> str | None:
    value = ingress.spec.get("ingressClassName") or ingress.annotations.get(CLASS_ANNOTATION)
    return str(value) if value else None


def is_nginx_ingress(snap: Snapshot, ingress: KubeObject) -> bool:
    """Whether ingress-nginx serves this Ingress. Unknown classes count as nginx (the stack this tool targets);
    an IngressClass in the snapshot naming another controller, or a well-known other class name, does not."""
    name = ingress_class(ingress)
    classes = snap.objects_of("IngressClass")
    if name is None:
        defaults = [c for c in classes if c.annotations.get(DEFAULT_CLASS_ANNOTATION, "").lower() == "true"]
        return not defaults or any(_nginx_controller(c) for c in defaults)
    found = snap.get("IngressClass", None, name)
    if found is not None:
        return _nginx_controller(found)
    lowered = name.lower()
    return not any(other in lowered for other in _OTHER_CONTROLLERS)


def _nginx_controller(ingress_class_obj: KubeObject) -> bool:
    return "ingress-nginx" in str(ingress_class_obj.spec.get("controller", ""))


def ingress_backends(ingress: KubeObject) -> list[IngressBackend]:
    """Service backends of the rules' paths, then the defaultBackend (`spec.backend` in extensions/v1beta1)."""
    found: list[IngressBackend] = []
    for r_index, rule_value in enumerate(as_list(ingress.spec.get("rules"))):
        rule = as_mapping(rule_value)
        host = str(rule["host"]) if rule.get("host") else None
        for p_index, path_value in enumerate(as_list(as_mapping(rule.get("http")).get("paths"))):
            item = as_mapping(path_value)
            base = f".spec.rules[{r_index}].http.paths[{p_index}]"
            backend = _service_backend(ingress, as_mapping(item.get("backend")), base + ".backend")
            if backend is None:
                continue
            service, port, field = backend
            found.append(
                IngressBackend(
                    ingress=ingress,
                    service=service,
                    port=port,
                    field=field,
                    host=host,
                    path=str(item.get("path") or "/"),
                    path_type=str(item.get("pathType") or PathType.IMPLEMENTATION_SPECIFIC),
                    path_field=base + ".path",
                )
            )
    for key in ("defaultBackend", "backend"):
        default = _service_backend(ingress, as_mapping(ingress.spec.get(key)), f".spec.{key}")
        if default is not None:
            service, port, field = default
            found.append(IngressBackend(ingress, service, port, field, None, None, "", None))
            break
    return found


def _service_backend(ingress: KubeObject, backend: Mapping[str, Any], field: str) -> tuple[str, PortRef, str] | None:
    service = as_mapping(backend.get("service"))
    if service.get("name"):
        port = as_mapping(service.get("port"))
        return str(service["name"]), _port_ref(port.get("number"), port.get("name")), field + ".service"
    if backend.get("serviceName"):
        raw = backend.get("servicePort")
        return str(backend["serviceName"]), _port_ref(raw, None), field
    return None


def _port_ref(number: Any, name: Any) -> PortRef:
    """The port a backend asks for (`port.number`/`port.name`, or v1beta1's IntOrString `servicePort`); a value that
    is neither a port number nor a name leaves the port unknown."""
    for value in (number, name):
        if isinstance(value, str):
            value = value.strip()
        found = fields.port_number(value)
        if found is not None:
            return PortRef(number=found)
        if isinstance(value, str) and value and fields.integer(value) is None:
            return PortRef(name=value)
    return PortRef()


def nginx_annotation(ingress: KubeObject, name: str) -> str | None:
    """An ingress-nginx annotation (full key) of the Ingress, or None."""
    return ingress.annotations.get(name)


def rewrite_target(ingress: KubeObject) -> str | None:
    value = nginx_annotation(ingress, REWRITE_TARGET)
    return value.strip() if value is not None and value.strip() else None


def uses_regex_annotations(ingress: KubeObject) -> bool:
    """`use-regex: "true"` or a `rewrite-target`: either makes ingress-nginx write regex locations."""
    use_regex = (nginx_annotation(ingress, USE_REGEX) or "").strip().lower() == "true"
    return use_regex or rewrite_target(ingress) is not None


def regex_hosts(snap: Snapshot) -> set[str]:
    """Hosts ("" for rules without host) where ingress-nginx writes regex locations for every path: once one
    Ingress of a host asks for regex, all paths of that host, whatever Ingress defines them, become regex."""
    hosts: set[str] = set()
    for ing in ingresses(snap):
        if not uses_regex_annotations(ing) or not is_nginx_ingress(snap, ing):
            continue
        for rule in as_list(ing.spec.get("rules")):
            hosts.add(str(as_mapping(rule).get("host") or ""))
    return hosts


def is_grpc_backend(ingress: KubeObject) -> bool:
    return (nginx_annotation(ingress, BACKEND_PROTOCOL) or "").strip().upper() in ("GRPC", "GRPCS")


# --- Services and resolution -----------------------------------------------------------------------------------------


def service_type(svc: KubeObject) -> str:
    return str(svc.spec.get("type") or "ClusterIP")


def service_ports(svc: KubeObject) -> list[Mapping[str, Any]]:
    return [as_mapping(p) for p in as_list(svc.spec.get("ports")) if isinstance(p, Mapping)]


def external_name(svc: KubeObject) -> str:
    return str(svc.spec.get("externalName") or "")


def is_headless(svc: KubeObject) -> bool:
    return str(svc.spec.get("clusterIP") or "") == "None"


def parse_external_name(host: str, known_namespaces: Iterable[str]) -> ExternalTarget:
    """Place an ExternalName: `svc.ns.svc[.<cluster domain>]` is an in-cluster Service; `svc.ns` is one when `ns` is
    a namespace we know of (or the Service is `seldon-mesh`); anything else (IP, single label, other domain) is not."""
    name = host.strip().rstrip(".").lower()
    parts = name.split(".")
    if not name or _is_ip(name):
        return ExternalTarget(None, None, host, False)
    if len(parts) >= 3 and parts[2] == "svc":
        return ExternalTarget(parts[0], parts[1], host, True)
    if len(parts) == 2 and (parts[1] in set(known_namespaces) or parts[0] == MESH_SERVICE):
        return ExternalTarget(parts[0], parts[1], host, False)
    return ExternalTarget(None, None, host, False)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def match_backend_port(svc: KubeObject, port: PortRef) -> Mapping[str, Any] | None:
    """The Service port an Ingress backend port selects, as ingress-nginx matches it: the port number, the
    targetPort or the port name equal to the backend's port (as text)."""
    wanted = str(port)
    for item in service_ports(svc):
        if str(item.get("port", "")) == wanted or str(item.get("name", "")) == wanted:
            return item
        if item.get("targetPort") is not None and str(item.get("targetPort")) == wanted:
            return item
    return None


def _match_dns_port(svc: KubeObject, number: int) -> Mapping[str, Any] | None:
    """The port a client reaching the Service by DNS name on `number` hits. A headless Service hands out pod IPs,
    so the pod port (targetPort) counts there too."""
    for item in service_ports(svc):
        if fields.port_number(item.get("port")) == number:
            return item
        if is_headless(svc) and fields.port_number(item.get("targetPort")) == number:
            return item
    return None


def _external_name_port(svc: KubeObject, port: PortRef) -> tuple[Mapping[str, Any] | None, PortRef, str | None]:
    """ingress-nginx's port choice for an ExternalName backend: the Service port named or numbered like the backend
    port gives the targetPort (its port when targetPort is not a number); an unknown number passes through as is;
    an unknown name cannot be resolved. Returns (matched port, port dialled on the external name, problem)."""
    ports = service_ports(svc)
    if port.name is not None:
        for item in ports:
            if str(item.get("name", "")) == port.name:
                target = fields.port_number(item.get("targetPort")) or fields.port_number(item.get("port"))
                return item, PortRef(number=target), None
        declared = ", ".join(str(p.get("name") or p.get("port")) for p in ports) or "none"
        return None, PortRef(), f"port name {port.name!r} is not among its ports ({declared})"
    if port.number is None:
        return None, PortRef(), None
    for item in ports:
        if fields.port_number(item.get("port")) == port.number:
            raw_target = item.get("targetPort")
            if raw_target is None:
                return item, PortRef(number=port.number), None
            target = fields.port_number(raw_target)
            # A named targetPort means nothing on a DNS name; we cannot tell what ingress-nginx dials then.
            return item, PortRef(number=target) if target else PortRef(), None
    return None, PortRef(number=port.number), None


def resolve_backend(snap: Snapshot, namespace: str, service: str, port: PortRef) -> Resolution:
    """Follow an Ingress backend from its Service through ExternalName hops to the Service that has endpoints."""
    hops: list[Hop] = []
    seen: set[tuple[str, str]] = set()
    known = set(snap.namespaces())
    ns, name, asked = namespace, service, port
    first = True
    while True:
        if (ns, name) in seen or len(hops) >= _MAX_HOPS:
            return Resolution(tuple(hops), Stop.LOOP, f"ExternalName hops loop back to Service {ns}/{name}")
        seen.add((ns, name))
        svc = snap.get("Service", ns, name)
        if svc is None:
            hops.append(Hop(ns, name, asked, None, None))
            if snap.namespace_exists(ns) is Existence.ABSENT:
                return Resolution(tuple(hops), Stop.SERVICE_MISSING, f"namespace {ns} does not exist")
            if snap.existence("Service", ns, name) is Existence.ABSENT:
                return Resolution(tuple(hops), Stop.SERVICE_MISSING, f"no Service {name} in namespace {ns}")
            return Resolution(tuple(hops), Stop.NOT_COLLECTED, f"Services of namespace {ns} are not in the bundle")
        if service_type(svc) == "ExternalName":
            if first:
                matched, next_port, problem = _external_name_port(svc, asked)
            else:
                # Past the first hop the name is only a DNS alias: the port travels unchanged.
                matched, next_port, problem = None, asked, None
            hops.append(Hop(ns, name, asked, svc, matched))
            if problem is not None:
                return Resolution(tuple(hops), Stop.PORT_MISSING, f"ExternalName Service {ns}/{name}: {problem}")
            target = parse_external_name(external_name(svc), known)
            if target.service is None or target.namespace is None:
                return Resolution(tuple(hops), Stop.EXTERNAL, f"{external_name(svc)!r} is outside the cluster")
            ns, name, asked, first = target.namespace, target.service, next_port, False
            continue
        if not asked.known:
            hops.append(Hop(ns, name, asked, svc, None))
            return Resolution(tuple(hops), Stop.SERVICE, "")
        if first:
            matched = match_backend_port(svc, asked)
        else:
            matched = _match_dns_port(svc, asked.number) if asked.number is not None else None
        hops.append(Hop(ns, name, asked, svc, matched))
        if matched is None:
            declared = ", ".join(_describe_port(p) for p in service_ports(svc)) or "no ports"
            return Resolution(
                tuple(hops), Stop.PORT_MISSING, f"Service {ns}/{name} has no port {asked} (it has {declared})"
            )
        return Resolution(tuple(hops), Stop.SERVICE, "")


def _describe_port(item: Mapping[str, Any]) -> str:
    name = f"{item.get('name')}=" if item.get("name") else ""
    target = f"→{item.get('targetPort')}" if item.get("targetPort") is not None else ""
    return f"{name}{item.get('port')}{target}"


def envoy_namespace(snap: Snapshot, resolution: Resolution) -> str | None:
    """The namespace whose Seldon Envoy the backend reaches: its last Service is `seldon-mesh` (even when that
    namespace was not collected) or a Service selecting Envoy pods. None when it leads elsewhere or nowhere known."""
    if resolution.stop in (Stop.EXTERNAL, Stop.LOOP):
        return None
    final = resolution.final
    if final.is_external_name:
        return None
    if final.name == MESH_SERVICE:
        return final.namespace
    if final.service is not None and any(s.name == final.name for s in envoy_services(snap, final.namespace)):
        return final.namespace
    return None


def target_port(resolution: Resolution) -> int | str | None:
    """The pod port the last Service forwards to (number or container port name); None when unknown, or when the
    Service holds no valid port there."""
    final = resolution.final
    if final.service_port is not None:
        raw = final.service_port.get("targetPort")
        if raw is None:
            return fields.port_number(final.service_port.get("port"))
        return fields.port(raw.strip() if isinstance(raw, str) else raw)
    return None


def is_envoy_data_port(resolution: Resolution) -> bool:
    """False when the backend lands on Envoy's stats/admin port (9003) rather than its data-plane listener."""
    port = target_port(resolution)
    if isinstance(port, int):
        return port != ENVOY_STATS_PORT
    if isinstance(port, str):
        return not any(word in port.lower() for word in ("stats", "admin"))
    asked = resolution.final.port.number
    return asked != ENVOY_STATS_PORT


@dataclass(frozen=True)
class SeldonBackend:
    """An Ingress backend that leads to Seldon's Envoy in `namespace`."""

    backend: IngressBackend
    resolution: Resolution
    namespace: str


def seldon_backends(snap: Snapshot, *, nginx_only: bool = True) -> list[SeldonBackend]:
    """Every Ingress backend (of ingress-nginx Ingresses, unless told otherwise) that leads to Seldon's Envoy."""
    found: list[SeldonBackend] = []
    for ing in ingresses(snap):
        if nginx_only and not is_nginx_ingress(snap, ing):
            continue
        for backend in ingress_backends(ing):
            resolution = resolve_backend(snap, backend.namespace, backend.service, backend.port)
            namespace = envoy_namespace(snap, resolution)
            if namespace is not None:
                found.append(SeldonBackend(backend, resolution, namespace))
    return found


def ready_endpoints(snap: Snapshot, namespace: str, name: str) -> tuple[bool, list[tuple[str, str]]] | None:
    """Whether the Endpoints/EndpointSlices of a Service in the snapshot list a ready address, with evidence;
    None when neither is in the snapshot."""
    endpoints = snap.get("Endpoints", namespace, name)
    slices = [
        s for s in snap.objects_of("EndpointSlice", namespace) if s.labels.get("kubernetes.io/service-name") == name
    ]
    if endpoints is None and not slices:
        return None
    evidence: list[tuple[str, str]] = []
    ready = False
    if endpoints is not None:
        addresses = not_ready = 0
        for subset in as_list(endpoints.raw.get("subsets")):
            addresses += len(as_list(as_mapping(subset).get("addresses")))
            not_ready += len(as_list(as_mapping(subset).get("notReadyAddresses")))
        ready = ready or addresses > 0
        evidence.append((endpoints.field_where(".subsets"), f"{addresses} ready address(es), {not_ready} not ready"))
    for eps in slices:
        ready_count = total = 0
        for item in as_list(eps.raw.get("endpoints")):
            entry = as_mapping(item)
            total += 1
            condition = as_mapping(entry.get("conditions")).get("ready")
            if condition is not False and as_list(entry.get("addresses")):
                ready_count += 1
        ready = ready or ready_count > 0
        evidence.append((eps.field_where(".endpoints"), f"{ready_count} ready endpoint(s) of {total}"))
    return ready, evidence


# --- ingress controller ----------------------------------------------------------------------------------------------


def _is_controller_labels(name: str, labels: Mapping[str, str]) -> bool:
    if pod_role(name, labels) is not Role.INGRESS:
        return False
    component = labels.get("app.kubernetes.io/component")
    return component in (None, "", "controller")


def controller_pods(snap: Snapshot) -> list[KubeObject]:
    """ingress-nginx controller Pods (admission-webhook jobs and finished pods left out)."""
    return [
        pod
        for pod in snap.objects_of("Pod")
        if _is_controller_labels(pod.name, pod.labels)
        and str(pod.status.get("phase", "Running")) not in ("Succeeded", "Failed")
    ]


def controller_workloads(snap: Snapshot) -> list[KubeObject]:
    """Deployments/DaemonSets/StatefulSets whose pod template is the ingress-nginx controller."""
    found: list[KubeObject] = []
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        for obj in snap.objects_of(kind):
            if _is_controller_labels(obj.name, pod_template_labels(obj)):
                found.append(obj)
    return found


def controller_args(obj: KubeObject) -> list[str]:
    args: list[str] = []
    for container in pod_containers(pod_template_spec(obj)):
        args += [str(a) for a in as_list(container.get("args"))]
    return args


def serves_class(obj: KubeObject, class_name: str | None, controller_value: str | None) -> bool | None:
    """Whether a controller Pod/workload serves an Ingress class, from its `--ingress-class` and
    `--controller-class` flags; None when it says nothing either way."""
    flags: dict[str, str] = {}
    for arg in controller_args(obj):
        key, _, value = arg.partition("=")
        flags[key.lstrip("-")] = value
    said = False
    if "ingress-class" in flags and class_name is not None:
        said = True
        if flags["ingress-class"] != class_name:
            return False
    if "controller-class" in flags and controller_value is not None:
        said = True
        if flags["controller-class"] != controller_value:
            return False
    return True if said else None


def controllers_for(snap: Snapshot, ingress: KubeObject, candidates: list[KubeObject]) -> list[KubeObject]:
    """The controllers (Pods or workloads) that serve this Ingress's class; all of them when none says."""
    class_name = ingress_class(ingress)
    class_obj = snap.get("IngressClass", None, class_name) if class_name else None
    controller_value = str(class_obj.spec.get("controller")) if class_obj is not None else None
    verdicts = [(c, serves_class(c, class_name, controller_value)) for c in candidates]
    chosen = [c for c, verdict in verdicts if verdict is True]
    if chosen:
        return chosen
    return [c for c, verdict in verdicts if verdict is not False] or candidates


def selector_of(svc: KubeObject) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_mapping(svc.spec.get("selector")).items()}


def selects_labels(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service selector (equality only) against pod labels; an empty selector selects nothing."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def controller_services(snap: Snapshot, controllers: Iterable[KubeObject] = ()) -> list[KubeObject]:
    """Services in front of the ingress controller: their selector names ingress-nginx, or selects the labels of a
    controller Pod/template of the same namespace."""
    controller_list = list(controllers)
    found: list[KubeObject] = []
    for svc in snap.objects_of("Service"):
        selector = selector_of(svc)
        if not selector:
            continue
        if role_from_labels(selector) is Role.INGRESS and selector.get("app.kubernetes.io/component") in (
            None,
            "controller",
        ):
            found.append(svc)
            continue
        for ctl in controller_list:
            if ctl.namespace == svc.namespace and selects_labels(selector, pod_template_labels(ctl)):
                found.append(svc)
                break
    return found


# --- pods as NetworkPolicy endpoints ---------------------------------------------------------------------------------

_WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")


@dataclass(frozen=True)
class PodEndpoint:
    """A Pod (or the pod template of a workload when its Pods are not in the snapshot) as a NetworkPolicy endpoint."""

    endpoint: Endpoint
    source: KubeObject  # the Pod, or the workload whose template stood in for its Pods

    @property
    def from_template(self) -> bool:
        return self.source.kind != "Pod"

    @property
    def label(self) -> str:
        return f"{self.source.kind}/{self.source.name} (template)" if self.from_template else self.source.name


def workload_members(
    snap: Snapshot, namespace: str | None, wanted: Callable[[KubeObject, Mapping[str, str]], bool]
) -> list[KubeObject]:
    """Pods of a namespace (all namespaces for None) that `wanted(obj, labels)` picks; when none is in the snapshot,
    the StatefulSets/Deployments/DaemonSets (scaled above 0) whose pod template it picks."""
    pods = [
        pod
        for pod in snap.objects_of("Pod", namespace)
        if wanted(pod, pod.labels) and str(pod.status.get("phase", "Running")) not in ("Succeeded", "Failed")
    ]
    if pods:
        return pods
    found: list[KubeObject] = []
    for kind in _WORKLOAD_KINDS:
        for obj in snap.objects_of(kind, namespace):
            if fields.replicas(obj.spec.get("replicas")) == 0:
                continue
            if wanted(obj, pod_template_labels(obj)):
                found.append(obj)
    return found


def pod_endpoints(snap: Snapshot, objects: Iterable[KubeObject]) -> list[PodEndpoint]:
    """NetworkPolicy endpoints of Pods (labels, IP, named ports) or of workload templates (no IP)."""
    found: list[PodEndpoint] = []
    for obj in objects:
        namespace = obj.namespace or "default"
        ns_labels = snap.namespace_labels(namespace)
        template = {"metadata": obj.metadata, "spec": obj.spec} if obj.kind == "Pod" else obj.spec.get("template")
        try:
            if obj.kind == "Pod":
                endpoint = endpoint_from_pod(obj.raw, ns_labels)
            else:
                endpoint = endpoint_from_template(namespace, as_mapping(template), ns_labels, name=obj.name)
        except ValueError:
            # A hand-written podIP that is not an address: keep the pod, without its IP.
            endpoint = endpoint_from_template(namespace, as_mapping(template), ns_labels, name=obj.name)
        found.append(PodEndpoint(endpoint, obj))
    return found


def namespace_labels_unknown(
    snap: Snapshot, policies: Iterable[KubeObject], direction: str, peer_namespace: str
) -> bool:
    """Whether a verdict may hinge on labels we do not have: some `direction` ("ingress"/"egress") rule of these
    policies selects peers by Namespace labels other than `kubernetes.io/metadata.name`, and the peer's Namespace
    object is not in the snapshot. A blocked verdict is then no proof."""
    if snap.get("Namespace", None, peer_namespace) is not None:
        return False
    peers_key = "from" if direction == "ingress" else "to"
    for policy in policies:
        for rule in as_list(policy.spec.get(direction)):
            for peer in as_list(as_mapping(rule).get(peers_key)):
                selector = as_mapping(peer).get("namespaceSelector")
                if not isinstance(selector, Mapping):
                    continue
                keys = set(as_mapping(selector.get("matchLabels")))
                keys |= {str(as_mapping(e).get("key")) for e in as_list(selector.get("matchExpressions"))}
                if keys - {METADATA_NAME_LABEL}:
                    return True
    return False


def container_port(obj: KubeObject, container: str | None, names: Iterable[str], default: int) -> int:
    """The number of the first named container port among `names` (in `container` only, when given), else
    `default`: Seldon's Helm charts name the ports (`agent`, `xds`, `http`…), and a custom install may renumber them."""
    wanted = list(names)
    for item in pod_containers(pod_template_spec(obj)):
        if container is not None and str(item.get("name")) != container:
            continue
        for name in wanted:
            for port in as_list(item.get("ports")):
                entry = as_mapping(port)
                number = fields.port_number(entry.get("containerPort"))
                if str(entry.get("name", "")) == name and number is not None:
                    return number
    return default


def invalid_ports(obj: KubeObject) -> list[tuple[str, InvalidPort]]:
    """The container ports of a Pod (or of a workload's pod template) Kubernetes would not accept, each with its
    evidence location: NetworkPolicy rules that name such a port admit no traffic to it."""
    prefix = ".spec" if obj.kind == "Pod" else ".spec.template.spec"
    return [(obj.field_where(prefix + bad.path), bad) for bad in invalid_container_ports(pod_template_spec(obj))]


# --- ingress-nginx path handling -------------------------------------------------------------------------------------

_REGEX_META = frozenset(".^$*+?()[]{}|\\")
_OPTIONAL_QUANTIFIERS = ("?", "*", "{0")


def literal_prefix(path: str, regex: bool) -> str:
    """The literal start of a path: all of it without regex, else the text before the first regex metacharacter
    (escaped punctuation counts as literal; a character made optional by `?`, `*` or `{0,` is dropped)."""
    if not regex:
        return path
    out: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == "\\" and index + 1 < len(path) and not path[index + 1].isalnum():
            out.append(path[index + 1])
            index += 2
            continue
        if char in _REGEX_META:
            if out and path.startswith(_OPTIONAL_QUANTIFIERS, index):
                out.pop()
            break
        out.append(char)
        index += 1
    return "".join(out)


def sample_client_path(literal: str, grpc: bool) -> str:
    """A request path a client would send under this prefix: the prefix followed by `v2/models/<m>/infer` (gRPC:
    `/inference.GRPCInferenceService/ModelInfer`), joined on one `/`. Where the prefix already ends in a start of that
    path (`/v2`, `/v2/models/iris`), it continues it instead of repeating it."""
    if grpc:
        canonical = GRPC_SAMPLE
    else:
        named = re.search(r"/v2/models/([^/]+)", literal, re.IGNORECASE)
        canonical = f"/v2/models/{named.group(1) if named else SAMPLE_MODEL}/infer"
    if not literal:
        return canonical
    lowered_prefix, lowered_canonical = literal.lower(), canonical.lower()
    for size in range(min(len(literal), len(canonical)), 0, -1):
        head = lowered_canonical[:size]
        at_boundary = size == len(canonical) or head.endswith("/") or canonical[size] == "/"
        if at_boundary and lowered_prefix.endswith(head):
            return literal + canonical[size:]
    return literal.rstrip("/") + canonical


@dataclass(frozen=True)
class PathSimulation:
    """What ingress-nginx does with one client path under one Ingress path."""

    client_path: str
    location: str  # the nginx location as ingress-nginx writes it
    matched: bool
    rewrite: str | None  # the rewrite-target applied, when one is
    upstream_path: str | None  # the path sent to the backend; None when the location does not match
    error: str | None = None
    groups: tuple[str | None, ...] = ()  # the regex captures $1, $2, … of the client path

    def describe(self) -> str:
        if self.error is not None:
            return f"location {self.location}: {self.error}"
        if not self.matched:
            return f"location {self.location} does not match {self.client_path}"
        how = f"rewrite-target {self.rewrite}" if self.rewrite is not None else "no rewrite"
        return f"location {self.location} ({how}): {self.client_path} → {self.upstream_path}"


def nginx_location(path: str, path_type: str, regex: bool) -> str:
    if regex:
        return f'~* "^{path}"'
    if path_type == PathType.EXACT:
        return f"= {path}"
    return path


def to_python_regex(pcre: str) -> str:
    """PCRE as nginx reads it → Python `re`: named groups `(?<n>…)` become `(?P<n>…)`; the rest is shared syntax."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pcre)


def simulate_path(path: str, path_type: str, client_path: str, *, regex: bool, rewrite: str | None) -> PathSimulation:
    """Run `client_path` through the location ingress-nginx writes for `path`, then through `rewrite-target`.

    With regex the location is `~* "^<path>"` (case-insensitive) and the rewrite is `rewrite "(?i)<path>" <target>`,
    which replaces the whole URI with the target after `$n` substitution. ingress-nginx writes no rewrite when the
    target equals the path. Without regex, Exact compares the whole path and Prefix/ImplementationSpecific the start.
    """
    location = nginx_location(path, path_type, regex)
    if not regex:
        if path_type == PathType.EXACT:
            matched = client_path == path
        elif path_type == PathType.PREFIX:
            stem = path.rstrip("/")
            matched = not stem or client_path == stem or client_path.startswith(stem + "/")
        else:
            matched = client_path.startswith(path)
        return PathSimulation(client_path, location, matched, None, client_path if matched else None)
    try:
        pattern = re.compile("^" + to_python_regex(path), re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as exc:
        # `a{99999999999}` overflows and deep nesting recurses past the limit: both are paths nginx would refuse too.
        return PathSimulation(client_path, location, False, None, None, f"not a regex Python can read ({exc})")
    match = pattern.match(client_path)
    if match is None:
        return PathSimulation(client_path, location, False, None, None)
    groups = match.groups()
    if rewrite is None or rewrite == path:
        return PathSimulation(client_path, location, True, None, client_path, groups=groups)
    upstream = substitute_captures(rewrite, match)
    return PathSimulation(client_path, location, True, rewrite, upstream, groups=groups)


_NGINX_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_QUERY_VARS = frozenset({"args", "is_args", "query_string"})


def substitute_captures(target: str, match: re.Match[str]) -> str:
    """nginx's `$1..$9` (and named captures) in a rewrite replacement; query-string variables drop out (only the
    path matters here); other variables stay as written. An unmatched group is empty, as in nginx."""

    def replace(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if name[0] in "0123456789":  # not isdigit(): `\w` also matches '²', which int() refuses
            # nginx reads one digit after `$`: `$10` is `$1` followed by "0".
            digit, rest = int(name[0]), name[1:]
            group = match.group(digit) if digit <= (match.re.groups or 0) else None
            return (group or "") + rest
        if name in match.re.groupindex:
            return match.group(name) or ""
        if name in _QUERY_VARS:
            return ""
        return found.group(0)

    return _NGINX_VAR.sub(replace, target).split("?", 1)[0]


def reaches_seldon_route(upstream_path: str, grpc: bool) -> bool:
    """Whether Envoy's Seldon routes (prefix `/v2` for REST, `/inference.GRPCInferenceService` for gRPC; case and
    slashes as sent) can match the path."""
    return upstream_path.startswith(GRPC_PREFIX if grpc else REST_PREFIX)
