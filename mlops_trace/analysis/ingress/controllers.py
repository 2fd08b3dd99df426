"""Ingress controllers: which controller serves an Ingress, and where that controller runs.

`is_nginx_ingress` reads the Ingress class (field, legacy annotation, default IngressClass) to tell whether
ingress-nginx serves an Ingress; `controller_pods`/`controller_workloads` find the ingress-nginx controller (the
source of proxied traffic), `controllers_for` narrows them to the ones serving one Ingress's class, and
`controller_services` finds the Services in front of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlops_trace.analysis.ingress.backends import ingresses
from mlops_trace.analysis.ingress.resolution import selector_of, selects_labels
from mlops_trace.snapshot.kube import (
    KubeObject,
    as_list,
    as_mapping,
    pod_containers,
    pod_template_labels,
    pod_template_spec,
)
from mlops_trace.snapshot.roles import Role, pod_role, role_from_labels
from mlops_trace.snapshot.snapshot import Snapshot

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

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


# --- the class of an Ingress -----------------------------------------------------------------------------------------


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


# --- the controller's pods, workloads and Services -------------------------------------------------------------------


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


def nginx_ingress_for_host(snap: Snapshot, host: str | None) -> KubeObject | None:
    """The ingress-nginx Ingress whose rules name `host` (a `Host` header, `:port` ignored): the only one, when
    exactly one has a rule for it; None otherwise."""
    if not host:
        return None
    name = host.split(":", 1)[0].lower()
    found = [
        ing
        for ing in ingresses(snap)
        if is_nginx_ingress(snap, ing)
        and any(str(as_mapping(rule).get("host") or "").lower() == name for rule in as_list(ing.spec.get("rules")))
    ]
    return found[0] if len(found) == 1 else None
