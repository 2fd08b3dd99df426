"""`meta.k8s.io/v1 Table` answers: the columns and cells the API server sends when kubectl asks for a table (`get`).

The built-in kinds follow the API server's printers (kubernetes `pkg/printers/internalversion/printers.go`): the
cells are computed the same way (READY from the container statuses, STATUS from phase, reason and waiting or
terminated reasons, RESTARTS summed, AGE as `duration.HumanDuration`), and the `-o wide` columns are sent with
priority 1, as the server always does. The custom resources (Seldon's, KServe's, Knative's, Istio's, the Gateway
API's) carry the printer columns of their CRDs (`printer_columns.py`), evaluated as the CRD table convertor does; any
other kind gets NAME and AGE, like a CRD without printer columns. Kinds are named by their registry key
(`Service.serving.knative.dev` for Knative's Service).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_trace.serve.printer_columns import CRD_PRINTER_COLUMNS, column_cell, json_path_value
from mlops_trace.snapshot.kube import as_mapping

__all__ = ["INCLUDE_OBJECT", "age", "cells_for", "columns_for", "human_duration", "json_path_value", "table"]

_NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although some "
                     "resources may allow a client to request the generation of an appropriate name automatically. "
                     "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
                     "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_AGE_DESCRIPTION = ("CreationTimestamp is a timestamp representing the server time when this object was created. "
                    "It is not guaranteed to be set in happens-before order across separate operations. Clients may "
                    "not set this value. It is represented in RFC3339 form and is in UTC.")

Cell = Any  # a string, an integer or None, as the API server sends it
Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0  # 1: shown only with `-o wide`
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


NAME = Column("Name", format="name", description=_NAME_DESCRIPTION)
AGE = Column("Age", description=_AGE_DESCRIPTION)


# --- time --------------------------------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def human_duration(seconds_total: float) -> str:
    """apimachinery's `duration.HumanDuration`: `45s`, `5m3s`, `3h20m`, `2d4h`, `3y12d`."""
    seconds = int(seconds_total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(value: Any, now: datetime.datetime) -> str:
    """`translateTimestampSince`: `<unknown>` for a missing timestamp, else the human duration since it."""
    when = _parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())


# --- helpers -----------------------------------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` joined by commas, `<none>` when empty."""
    pairs = as_mapping(labels)
    return ",".join(f"{k}={pairs[k]}" for k in sorted(pairs)) or "<none>"


def _format_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: match labels and expressions, `<none>` when there are none."""
    sel = as_mapping(selector)
    parts = [f"{k}={v}" for k, v in sorted(as_mapping(sel.get("matchLabels")).items())]
    for expr in _list(sel.get("matchExpressions")):
        e = as_mapping(expr)
        key, op, values = e.get("key", ""), e.get("operator", ""), ",".join(str(v) for v in _list(e.get("values")))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": f"{key}",
                      "DoesNotExist": f"!{key}"}.get(str(op), f"{key} {op} ({values})"))
    return ",".join(parts) or "<none>"


def _containers_and_images(template_spec: Any) -> tuple[str, str]:
    containers = [as_mapping(c) for c in _list(as_mapping(template_spec).get("containers"))]
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers)


# --- the built-in printers ---------------------------------------------------------------------------------------


def _pod_cells(pod: Obj, now: datetime.datetime) -> list[Cell]:
    """printPod: READY, STATUS, RESTARTS (with the last restart's age), AGE; then IP, NODE, NOMINATED NODE, READINESS
    GATES."""
    spec, status = as_mapping(pod.get("spec")), as_mapping(pod.get("status"))
    meta = as_mapping(pod.get("metadata"))
    init_specs = {str(c.get("name")): c for c in map(as_mapping, _list(spec.get("initContainers")))}
    conditions = [as_mapping(c) for c in _list(status.get("conditions"))]
    total = len(_list(spec.get("containers")))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime.datetime | None = None
    last_sidecar_restart: datetime.datetime | None = None
    reason = str(status.get("reason") or status.get("phase") or "")
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    def sidecar(name: Any) -> bool:
        return as_mapping(init_specs.get(str(name))).get("restartPolicy") == "Always"

    def later(current: datetime.datetime | None, finished: Any) -> datetime.datetime | None:
        when = _parse_time(finished)
        return when if when is not None and (current is None or when > current) else current

    init_statuses = [as_mapping(c) for c in _list(status.get("initContainerStatuses"))]
    total += sum(1 for c in init_statuses if sidecar(c.get("name")))
    initializing = False
    for index, container in enumerate(init_statuses):
        restarts += _int(container.get("restartCount"))
        finished = as_mapping(as_mapping(container.get("lastState")).get("terminated")).get("finishedAt")
        last_restart = later(last_restart, finished)
        if sidecar(container.get("name")):
            sidecar_restarts += _int(container.get("restartCount"))
            last_sidecar_restart = later(last_sidecar_restart, finished)
        state = as_mapping(container.get("state"))
        terminated, waiting = as_mapping(state.get("terminated")), as_mapping(state.get("waiting"))
        if state.get("terminated") is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar(container.get("name")) and container.get("started") is True:
            ready += 1 if container.get("ready") is True else 0
            continue
        if state.get("terminated") is not None:
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif _int(terminated.get("signal")):
                reason = f"Init:Signal:{_int(terminated.get('signal'))}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions)
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed([as_mapping(c) for c in _list(status.get("containerStatuses"))]):
            restarts += _int(container.get("restartCount"))
            last_restart = later(
                last_restart, as_mapping(as_mapping(container.get("lastState")).get("terminated")).get("finishedAt"))
            state = as_mapping(container.get("state"))
            terminated, waiting = as_mapping(state.get("terminated")), as_mapping(state.get("waiting"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif state.get("terminated") is not None and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif state.get("terminated") is not None:
                signal = _int(terminated.get("signal"))
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif container.get("ready") is True and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions) \
                else "NotReady"
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    pod_ips = [as_mapping(ip).get("ip") for ip in _list(status.get("podIPs"))]
    pod_ip = (pod_ips[0] if pod_ips else status.get("podIP")) or "<none>"
    gates = [as_mapping(g).get("conditionType") for g in _list(spec.get("readinessGates"))]
    readiness = "<none>"
    if gates:
        by_type = {c.get("type"): c.get("status") for c in reversed(conditions)}  # the first of a type counts
        readiness = f"{sum(1 for g in gates if by_type.get(g) == 'True')}/{len(gates)}"
    return [f"{ready}/{total}", reason, restarts_text, age(meta.get("creationTimestamp"), now),
            pod_ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", readiness]


def _service_external_ip(spec: Obj, status: Obj) -> str:
    """getServiceExternalIP (wide: the server never truncates the load balancer's addresses)."""
    external = [str(ip) for ip in _list(spec.get("externalIPs"))]
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = [as_mapping(i) for i in _list(as_mapping(status.get("loadBalancer")).get("ingress"))]
        addresses = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
        addresses = [a for a in addresses if a]
        return ",".join(addresses + external) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_cells(svc: Obj, now: datetime.datetime) -> list[Cell]:
    spec, status = as_mapping(svc.get("spec")), as_mapping(svc.get("status"))
    cluster_ips = _list(spec.get("clusterIPs")) or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for port in map(as_mapping, _list(spec.get("ports"))):
        protocol = port.get("protocol") or "TCP"
        node_port = _int(port.get("nodePort"))
        number = _int(port.get("port"))
        ports.append(f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}")
    return [spec.get("type") or "ClusterIP", cluster_ips[0] if cluster_ips else "<none>",
            _service_external_ip(spec, status), ",".join(ports) or "<none>",
            age(as_mapping(svc.get("metadata")).get("creationTimestamp"), now), _format_labels(spec.get("selector"))]


def _workload(obj: Obj) -> tuple[Obj, Obj, str, str]:
    spec = as_mapping(obj.get("spec"))
    containers, images = _containers_and_images(as_mapping(as_mapping(spec.get("template")).get("spec")))
    return spec, as_mapping(obj.get("status")), containers, images


def _deployment_cells(obj: Obj, now: datetime.datetime) -> list[Cell]:
    spec, status, containers, images = _workload(obj)
    return [f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")),
            age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now),
            containers, images, _format_selector(spec.get("selector"))]


def _statefulset_cells(obj: Obj, now: datetime.datetime) -> list[Cell]:
    spec, status, containers, images = _workload(obj)
    return [f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
            age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now), containers, images]


def _replicaset_cells(obj: Obj, now: datetime.datetime) -> list[Cell]:
    spec, status, containers, images = _workload(obj)
    return [_int(spec.get("replicas"), 1), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now),
            containers, images, _format_selector(spec.get("selector"))]


def _daemonset_cells(obj: Obj, now: datetime.datetime) -> list[Cell]:
    spec, status, containers, images = _workload(obj)
    node_selector = as_mapping(as_mapping(as_mapping(spec.get("template")).get("spec")).get("nodeSelector"))
    return [_int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), _format_labels(node_selector),
            age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now),
            containers, images, _format_selector(spec.get("selector"))]


def _namespace_cells(obj: Obj, now: datetime.datetime) -> list[Cell]:
    return [as_mapping(obj.get("status")).get("phase") or "",
            age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now)]


_WIDE = 1
_BUILT_IN: dict[str, tuple[tuple[Column, ...], Callable[[Obj, datetime.datetime], list[Cell]]]] = {
    "Pod": ((Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
             Column("Status", description="The aggregate status of the containers in this pod."),
             Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                            "and when the last container in this pod has restarted."),
             AGE,
             Column("IP", description="IP address allocated to the pod. Routable at least within the cluster. "
                                      "Empty if not yet allocated.", priority=_WIDE),
             Column("Node", description="NodeName is a request to schedule this pod onto a specific node.",
                    priority=_WIDE),
             Column("Nominated Node", description="nominatedNodeName is set only when this pod preempts other pods "
                                                  "on the node.", priority=_WIDE),
             Column("Readiness Gates", description="If specified, all readiness gates will be evaluated for pod "
                                                   "readiness.", priority=_WIDE)),
            _pod_cells),
    "Service": ((Column("Type", description="type determines how the Service is exposed."),
                 Column("Cluster-IP", description="clusterIP is the IP address of the service."),
                 Column("External-IP", description="List of IP addresses for which nodes in the cluster will also "
                                                   "accept traffic for this service."),
                 Column("Port(s)", description="The list of ports that are exposed by this service."),
                 AGE,
                 Column("Selector", description="Route service traffic to pods with label keys and values "
                                                "matching this selector.", priority=_WIDE)),
                _service_cells),
    "Deployment": ((Column("Ready", description="Number of the pod with ready state"),
                    Column("Up-to-date", "integer", "Total number of non-terminated pods targeted by this "
                                                    "deployment that have the desired template spec."),
                    Column("Available", "integer", "Total number of available pods (ready for at least "
                                                   "minReadySeconds) targeted by this deployment."),
                    AGE,
                    Column("Containers", description="Names of each container in the template.", priority=_WIDE),
                    Column("Images", description="Images referenced by each container in the template.",
                           priority=_WIDE),
                    Column("Selector", description="Label selector for pods.", priority=_WIDE)),
                   _deployment_cells),
    "StatefulSet": ((Column("Ready", description="Number of the pod with ready state"),
                     AGE,
                     Column("Containers", description="Names of each container in the template.", priority=_WIDE),
                     Column("Images", description="Images referenced by each container in the template.",
                            priority=_WIDE)),
                    _statefulset_cells),
    "ReplicaSet": ((Column("Desired", "integer", "Replicas is the number of desired replicas."),
                    Column("Current", "integer", "Replicas is the most recently observed number of replicas."),
                    Column("Ready", "integer", "The number of ready replicas for this replica set."),
                    AGE,
                    Column("Containers", description="Names of each container in the template.", priority=_WIDE),
                    Column("Images", description="Images referenced by each container in the template.",
                           priority=_WIDE),
                    Column("Selector", description="Label selector for pods.", priority=_WIDE)),
                   _replicaset_cells),
    "DaemonSet": ((Column("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
                   Column("Current", "integer", "The number of nodes running at least one daemon pod."),
                   Column("Ready", "integer", "The number of nodes that should be running the daemon pod and "
                                              "have one or more of the daemon pod running and ready."),
                   Column("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
                   Column("Available", "integer", "The number of nodes that should be running the daemon pod and "
                                                  "have one or more of the daemon pod running and available."),
                   Column("Node Selector", description="NodeSelector is a selector which must be true for the pod "
                                                       "to fit on a node."),
                   AGE,
                   Column("Containers", description="Names of each container in the template.", priority=_WIDE),
                   Column("Images", description="Images referenced by each container in the template.",
                          priority=_WIDE),
                   Column("Selector", description="Label selector for pods.", priority=_WIDE)),
                  _daemonset_cells),
    "Namespace": ((Column("Status", description="The status of the namespace"), AGE), _namespace_cells),
}


# --- the Seldon CRDs' printer columns ----------------------------------------------------------------------------


# --- the table ---------------------------------------------------------------------------------------------------


def columns_for(kind: str) -> list[Column]:
    if kind in _BUILT_IN:
        return [NAME, *_BUILT_IN[kind][0]]
    if kind in CRD_PRINTER_COLUMNS:
        return [NAME, *(Column(c.name, c.type, c.description, c.priority) for c in CRD_PRINTER_COLUMNS[kind])]
    return [NAME, AGE]


def cells_for(kind: str, obj: Obj, now: datetime.datetime) -> list[Cell]:
    name = as_mapping(obj.get("metadata")).get("name")
    if kind in _BUILT_IN:
        return [name, *_BUILT_IN[kind][1](obj, now)]
    if kind in CRD_PRINTER_COLUMNS:
        return [name, *(column_cell(c, obj, lambda value: age(value, now)) for c in CRD_PRINTER_COLUMNS[kind])]
    return [name, age(as_mapping(obj.get("metadata")).get("creationTimestamp"), now)]


INCLUDE_OBJECT = ("Metadata", "Object", "None")


def table(kind: str, items: Sequence[Obj] | Iterable[Obj], include_object: str = "Metadata",
          now: datetime.datetime | None = None) -> dict[str, Any]:
    """The `meta.k8s.io/v1 Table` of `items`, each row carrying its object as `include_object` asks
    (PartialObjectMetadata by default, the whole object for `Object`, none for `None`)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": cells_for(kind, obj, moment)}
        if include_object == "Object":
            row["object"] = dict(obj)
        elif include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": dict(as_mapping(obj.get("metadata")))}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
            "columnDefinitions": [c.definition() for c in columns_for(kind)], "rows": rows}
