"""The stack's Kubernetes objects, as `kubectl get -o yaml` would print them from a cluster running it.

In-cluster names and ports are Seldon's and ingress-nginx's defaults (scheduler 9004/9005, Envoy 9000, agent
9001/9501, MLServer 9000/9500); pod and Service IPs are cluster-style addresses. Where a process really listens on
127.0.0.1 is recorded in the `mlops-trace.io/host-ports` annotation (container port → host address), and the two
LoadBalancer Services carry 127.0.0.1, the real external entry point. The faults change these objects the way the
failure shows up on a real cluster.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_trace.stack.nginx import EXPERIMENT_PATH, HEADER_SNIPPET, PREFIX_PATH
from mlops_trace.stack.topology import (
    CONTROLLER,
    CONTROLLER_POD,
    DEFAULT_MODEL,
    DNS_NAMESPACE,
    ENVOY_POD,
    EXPERIMENT,
    HOST,
    INGRESS_CONTROLLER,
    INGRESS_NAMESPACE,
    INGRESS_POD,
    MODELS,
    NAMESPACE,
    SCHEDULER,
    SCHEDULER_POD,
    SERVER,
    SERVER_POD,
    SERVER_REPLICAS,
    SYSTEM_NAMESPACE,
    ExtraModel,
    Plan,
    Ports,
    Storage,
)

SELDON_API = "mlops.seldon.io/v1alpha1"
HOST_PORTS_ANNOTATION = "mlops-trace.io/host-ports"
STACK_LABEL = "mlops-trace.io/stack"
SELDON_VERSION = "2.9.1"

POD_IPS = {
    (NAMESPACE, SCHEDULER_POD): "10.42.0.21",
    (NAMESPACE, ENVOY_POD): "10.42.0.22",
    (NAMESPACE, SERVER_POD): "10.42.0.23",
    (SYSTEM_NAMESPACE, CONTROLLER_POD): "10.42.0.11",
    (SYSTEM_NAMESPACE, SCHEDULER_POD): "10.42.0.12",
    (INGRESS_NAMESPACE, INGRESS_POD): "10.42.0.5",
}
SERVICE_IPS = {
    (NAMESPACE, "seldon-mesh"): "10.43.197.167",
    (NAMESPACE, SCHEDULER): "10.43.20.5",
    (SYSTEM_NAMESPACE, SCHEDULER): "10.43.20.6",
    (INGRESS_NAMESPACE, INGRESS_CONTROLLER): "10.43.10.10",
}

SCHEDULER_PORTS = (("xds", 9002), ("scheduler", 9004), ("scheduler-mtls", 9044), ("agent", 9005),
                   ("agent-mtls", 9055), ("dataflow", 9008))


@dataclass(frozen=True)
class KubeInputs:
    plan: Plan
    ports: Ports
    artifacts: Path
    now: str  # RFC 3339, used for creation and transition times
    storage: Path | None = None  # model folders a fault serves (the runtime-deps model's), under the run directory
    # The scheduler's view of each model once the agent reported (state, reason, replicas), which the controller
    # copies into the Model's status; a model without one keeps the status of a model that loaded.
    model_states: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def storage_uri(inputs: KubeInputs, model: ExtraModel) -> str:
    """A fault model's storageUri: a folder where nothing is, the runtime-deps folder, or the baseline's artifacts."""
    if model.storage is Storage.MISSING:
        return f"file://{inputs.artifacts / model.name}"
    if model.storage is Storage.DEPS_RUNTIME:
        return f"file://{(inputs.storage or inputs.artifacts) / model.name}"
    return f"file://{inputs.artifacts / MODELS[0].name}"


def _meta(name: str, namespace: str | None, now: str, labels: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": now, "labels": {STACK_LABEL: "true", **(labels or {})}}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _condition(type_: str, ok: bool, now: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": type_, "status": "True" if ok else "False", "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _ports(items: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in items]


def _env(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _host_ports(mapping: Mapping[int, int]) -> dict[str, str]:
    return {HOST_PORTS_ANNOTATION: json.dumps({str(k): f"127.0.0.1:{v}" for k, v in sorted(mapping.items())})}


def _pod(
    inputs: KubeInputs,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    containers: Sequence[Mapping[str, Any]],
    owner: tuple[str, str],
    host_ports: Mapping[int, int],
    not_ready: Sequence[str] = (),
) -> dict[str, Any]:
    now = inputs.now
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "ready": c["name"] not in not_ready,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for c in containers
    ]
    ready = not not_ready
    meta = _meta(name, namespace, now, labels, _host_ports(host_ports))
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [dict(c) for c in containers], "nodeName": "mlops-trace-stack"},
        "status": {
            "phase": "Running",
            "podIP": POD_IPS[(namespace, name)],
            "podIPs": [{"ip": POD_IPS[(namespace, name)]}],
            "hostIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                _condition("Initialized", True, now),
                _condition("Ready", ready, now, "" if ready else "ContainersNotReady",
                           "" if ready else f"containers with unready status: [{' '.join(not_ready)}]"),
                _condition("ContainersReady", ready, now),
                _condition("PodScheduled", True, now),
            ],
            "containerStatuses": statuses,
        },
    }


def _workload(
    kind: str, name: str, namespace: str, labels: Mapping[str, str], containers: Sequence[Mapping[str, Any]],
    replicas: int, now: str, extra_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
    if kind == "StatefulSet":
        status = {"replicas": replicas, "readyReplicas": replicas, "currentReplicas": replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": _meta(name, namespace, now, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [dict(c) for c in containers]}},
            **(extra_spec or {}),
        },
        "status": status,
    }


def _service(
    name: str, namespace: str, now: str, selector: Mapping[str, str], ports: Sequence[tuple[str, int, int | str]],
    *, type_: str = "ClusterIP", headless: bool = False, host_address: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type_,
        "selector": dict(selector),
        "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, p, t in ports],
    }
    if headless:
        spec["clusterIP"] = "None"
    else:
        spec["clusterIP"] = SERVICE_IPS[(namespace, name)]
        spec["clusterIPs"] = [spec["clusterIP"]]
    status: dict[str, Any] = {"loadBalancer": {}}
    if type_ == "LoadBalancer":
        status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}
    annotations = {"mlops-trace.io/host-address": host_address} if host_address else None
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, now, None, annotations),
            "spec": spec, "status": status}


def _endpoints(name: str, namespace: str, now: str, pods: Sequence[str], ports: Sequence[tuple[str, int]]
               ) -> dict[str, Any]:
    subsets = []
    if pods:
        subsets = [{
            "addresses": [{"ip": POD_IPS[(namespace, p)], "targetRef": {"kind": "Pod", "name": p,
                                                                       "namespace": namespace}} for p in pods],
            "ports": [{"name": n, "port": port, "protocol": "TCP"} for n, port in ports],
        }]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": _meta(name, namespace, now), "subsets": subsets}


# --- components ----------------------------------------------------------------------------------------------------

_SCHEDULER_LABELS = {"app.kubernetes.io/name": SCHEDULER, "app.kubernetes.io/managed-by": "seldon-core"}


def _scheduler(inputs: KubeInputs, namespace: str, running: bool, service: bool, api: int, agent: int
               ) -> list[dict[str, Any]]:
    now = inputs.now
    container = {
        "name": "scheduler",
        "image": f"docker.io/seldonio/seldon-scheduler:{SELDON_VERSION}",
        "args": ["--envoy-port=9002", "--scheduler-port=9004", "--agent-port=9005", "--log-level=info",
                 "--db-path=/mnt/scheduler/db"],
        "ports": _ports(SCHEDULER_PORTS),
    }
    objects = [_workload("StatefulSet", SCHEDULER, namespace, _SCHEDULER_LABELS, [container], 1 if running else 0, now,
                         {"serviceName": SCHEDULER})]
    if running:
        objects.append(_pod(inputs, name=SCHEDULER_POD, namespace=namespace,
                            labels={**_SCHEDULER_LABELS, "statefulset.kubernetes.io/pod-name": SCHEDULER_POD},
                            containers=[container], owner=("StatefulSet", SCHEDULER),
                            host_ports={9002: api, 9004: api, 9005: agent}))
    if service:
        svc_ports = [(n, p, p) for n, p in SCHEDULER_PORTS]
        objects.append(_service(SCHEDULER, namespace, now, _SCHEDULER_LABELS, svc_ports,
                                host_address=f"127.0.0.1:{api}" if running else None))
        objects.append(_endpoints(SCHEDULER, namespace, now, [SCHEDULER_POD] if running else [], SCHEDULER_PORTS))
    return objects


def _envoy(inputs: KubeInputs) -> list[dict[str, Any]]:
    now, ports = inputs.now, inputs.ports
    labels = {"app.kubernetes.io/name": "seldon-envoy", "app.kubernetes.io/managed-by": "seldon-core"}
    container = {
        "name": "envoy",
        "image": f"docker.io/seldonio/seldon-envoy:{SELDON_VERSION}",
        "ports": _ports([("http", 9000), ("envoy-stats", 9003), ("admin", 9901)]),
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 9003}},
    }
    return [
        _workload("Deployment", "seldon-envoy", NAMESPACE, labels, [container], 1, now),
        _pod(inputs, name=ENVOY_POD, namespace=NAMESPACE, labels=labels, containers=[container],
             owner=("ReplicaSet", ENVOY_POD.rsplit("-", 1)[0]),
             host_ports={9000: ports.envoy_http, 9901: ports.envoy_admin}),
        _service("seldon-mesh", NAMESPACE, now, labels, [("http", 80, "http"), ("stats", 9003, "envoy-stats")],
                 type_="LoadBalancer", host_address=f"127.0.0.1:{ports.envoy_http}"),
        _endpoints("seldon-mesh", NAMESPACE, now, [ENVOY_POD], [("http", 9000), ("stats", 9003)]),
    ]


def _server(inputs: KubeInputs, agent_ready: bool) -> list[dict[str, Any]]:
    now, ports, plan = inputs.now, inputs.ports, inputs.plan
    labels = {"app.kubernetes.io/name": "seldon-server", "seldon-server-name": SERVER,
              "app.kubernetes.io/managed-by": "seldon-core"}
    agent = {
        "name": "agent",
        "image": f"docker.io/seldonio/seldon-agent:{SELDON_VERSION}",
        "ports": _ports([("grpc", 9501), ("http", 9001), ("metrics", 9006), ("readiness", 9008)]),
        "env": _env({
            "SELDON_SERVER_CAPABILITIES": "mlserver,alibi-detect,lightgbm,mlflow,python,sklearn,spark-mlib,xgboost",
            "SELDON_SCHEDULER_HOST": plan.agent_scheduler_host,
            "SELDON_SCHEDULER_PORT": "9005",
            "SELDON_SCHEDULER_TLS_PORT": "9055",
            "SELDON_SERVER_HTTP_PORT": "9000",
            "SELDON_SERVER_GRPC_PORT": "9500",
            "SELDON_REVERSE_PROXY_HTTP_PORT": "9001",
            "SELDON_REVERSE_PROXY_GRPC_PORT": "9501",
            "SELDON_METRICS_PORT": "9006",
            "SELDON_READINESS_PORT": "9008",
            "SELDON_ENVOY_HOST": "seldon-mesh",
            "SELDON_ENVOY_PORT": "80",
            "SELDON_SERVER_TYPE": "mlserver",
            "POD_NAME": SERVER_POD,
            "POD_NAMESPACE": NAMESPACE,
        }),
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 9008}},
    }
    mlserver_env = {
        "MLSERVER_HTTP_PORT": "9000",
        "MLSERVER_GRPC_PORT": "9500",
        "MLSERVER_METRICS_PORT": "8082",
        "MLSERVER_MODELS_DIR": "/mnt/agent/models",
        "MLSERVER_LOAD_MODELS_AT_STARTUP": "false",
        "MLSERVER_PARALLEL_WORKERS": str(plan.parallel_workers),
    }
    if plan.grpc_max_message is not None:
        mlserver_env["MLSERVER_GRPC_MAX_MESSAGE_LENGTH"] = str(plan.grpc_max_message)
    mlserver = {
        "name": "mlserver",
        "image": "docker.io/seldonio/mlserver:1.7.1",
        "ports": _ports([("http", 9000), ("grpc", 9500), ("metrics", 8082)]),
        "env": _env(mlserver_env),
    }
    # Seldon's ServerConfig `mlserver` (operator/config/serverconfigs/mlserver.yaml): rclone's rc API for the agent.
    rclone = {
        "name": "rclone",
        "image": f"docker.io/seldonio/seldon-rclone:{SELDON_VERSION}",
        "command": ["rclone"],
        "args": ["rcd", "--rc-no-auth", "--config=/rclone/rclone.conf", "--rc-addr=0.0.0.0:5572",
                 "--max-buffer-memory=$(MAX_BUFFER_MEMORY)"],
        "env": _env({"MAX_BUFFER_MEMORY": "64M"}),
        "ports": _ports([("rclone", 5572)]),
        "readinessProbe": {"tcpSocket": {"port": 5572}},
    }
    host = {9001: ports.agent_http, 9501: ports.agent_grpc, 9000: ports.mlserver_http, 9500: ports.mlserver_grpc,
            8082: ports.mlserver_metrics, 5572: ports.rclone}
    pod_labels = {**labels, "statefulset.kubernetes.io/pod-name": SERVER_POD}
    return [
        _workload("StatefulSet", SERVER, NAMESPACE, labels, [agent, mlserver, rclone], SERVER_REPLICAS, now,
                  {"serviceName": SERVER}),
        _pod(inputs, name=SERVER_POD, namespace=NAMESPACE, labels=pod_labels, containers=[agent, mlserver, rclone],
             owner=("StatefulSet", SERVER), host_ports=host, not_ready=() if agent_ready else ("agent",)),
        _service(SERVER_POD, NAMESPACE, now, {"statefulset.kubernetes.io/pod-name": SERVER_POD},
                 [("http", 9000, 9000), ("grpc", 9500, 9500), ("agent", 9005, 9005)], headless=True),
        _endpoints(SERVER_POD, NAMESPACE, now, [SERVER_POD], [("http", 9000), ("grpc", 9500), ("agent", 9005)]),
    ]


def _controller(inputs: KubeInputs) -> list[dict[str, Any]]:
    labels = {"control-plane": "seldon-controller-manager", "app.kubernetes.io/name": CONTROLLER}
    container = {
        "name": "manager",
        "image": f"docker.io/seldonio/seldonv2-controller:{SELDON_VERSION}",
        "command": ["/manager"],
        "args": ["--health-probe-bind-address=:8081", "--metrics-bind-address=127.0.0.1:8080", "--leader-elect",
                 "--clusterwide=true", "--log-level=info"],
        "env": _env({"CLUSTERWIDE": "true", "WATCH_NAMESPACES": "", "POD_NAMESPACE": SYSTEM_NAMESPACE}),
    }
    return [
        _workload("Deployment", CONTROLLER, SYSTEM_NAMESPACE, labels, [container], 1, inputs.now),
        _pod(inputs, name=CONTROLLER_POD, namespace=SYSTEM_NAMESPACE, labels=labels, containers=[container],
             owner=("ReplicaSet", CONTROLLER_POD.rsplit("-", 1)[0]), host_ports={}),
    ]


def _ingress_controller(inputs: KubeInputs) -> list[dict[str, Any]]:
    now, ports = inputs.now, inputs.ports
    labels = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx",
              "app.kubernetes.io/component": "controller"}
    container = {
        "name": "controller",
        "image": "registry.k8s.io/ingress-nginx/controller:v1.12.1",
        "args": ["/nginx-ingress-controller", "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
                 "--election-id=ingress-nginx-leader", "--controller-class=k8s.io/ingress-nginx",
                 "--ingress-class=nginx", "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller"],
        "ports": _ports([("http", 80), ("https", 443)]),
    }
    return [
        _workload("Deployment", INGRESS_CONTROLLER, INGRESS_NAMESPACE, labels, [container], 1, now),
        _pod(inputs, name=INGRESS_POD, namespace=INGRESS_NAMESPACE, labels=labels, containers=[container],
             owner=("ReplicaSet", INGRESS_POD.rsplit("-", 1)[0]), host_ports={80: ports.ingress_http}),
        _service(INGRESS_CONTROLLER, INGRESS_NAMESPACE, now, labels, [("http", 80, "http"), ("https", 443, "https")],
                 type_="LoadBalancer", host_address=f"127.0.0.1:{ports.ingress_http}"),
        _endpoints(INGRESS_CONTROLLER, INGRESS_NAMESPACE, now, [INGRESS_POD], [("http", 80), ("https", 443)]),
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": _meta("nginx", None, now),
         "spec": {"controller": "k8s.io/ingress-nginx"}},
    ]


def _ingress(name: str, path: str, now: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(name, NAMESPACE, now, None, annotations),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": HOST, "http": {"paths": [{
                "path": path, "pathType": "Prefix",
                "backend": {"service": {"name": "seldon-mesh", "port": {"number": 80}}},
            }]}}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
    }


def _ingresses(inputs: KubeInputs) -> list[dict[str, Any]]:
    plan, now = inputs.plan, inputs.now
    objects = [_ingress("ml-api", PREFIX_PATH if plan.ingress_prefix else "/v2/", now)]
    if not plan.ingress_prefix and plan.header_derivation:
        objects.append(_ingress("ml-api-experiment", EXPERIMENT_PATH, now,
                                {"nginx.ingress.kubernetes.io/configuration-snippet": HEADER_SNIPPET}))
    objects.append(_ingress("ml-api-grpc", "/inference.GRPCInferenceService", now,
                            {"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"}))
    return objects


def _namespace_selector(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _netpol(name: str, now: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name, NAMESPACE, now),
            "spec": dict(spec)}


def network_policies(plan_netpol_intra: bool, now: str) -> list[dict[str, Any]]:
    dns = _netpol("allow-dns-egress", now, {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"podSelector": {}}]},
            {"to": [_namespace_selector(SYSTEM_NAMESPACE)]},
            {"to": [_namespace_selector(DNS_NAMESPACE)],
             "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        ],
    })
    if plan_netpol_intra:
        return [
            _netpol("allow-ingress-nginx-only", now, {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [_namespace_selector(INGRESS_NAMESPACE)]}],
            }),
            dns,
        ]
    return [
        _netpol("allow-same-namespace", now, {
            "podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}],
        }),
        _netpol("allow-ingress-nginx-to-envoy", now, {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_namespace_selector(INGRESS_NAMESPACE)],
                         "ports": [{"port": 9000, "protocol": "TCP"}]}],
        }),
        _netpol("allow-seldon-system", now, {
            "podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [_namespace_selector(SYSTEM_NAMESPACE)]}],
        }),
        dns,
    ]


def _seldon(inputs: KubeInputs) -> list[dict[str, Any]]:
    plan, now = inputs.plan, inputs.now
    objects: list[dict[str, Any]] = []
    overrides = [{"name": SCHEDULER, "replicas": 0}] if not plan.local_scheduler else []
    runtime_conditions = [
        _condition(t, True, now) for t in ("SchedulerReady", "EnvoyReady", "ModelGatewayReady",
                                           "PipelineGatewayReady", "DataflowEngineReady", "HodometerReady", "Ready")
    ]
    objects.append({
        "apiVersion": SELDON_API, "kind": "SeldonRuntime", "metadata": _meta("seldon", NAMESPACE, now),
        "spec": {"seldonConfig": "default", "overrides": overrides, "disableAutoUpdate": False},
        "status": {"conditions": runtime_conditions},
    })
    if plan.central_scheduler:
        objects.append({
            "apiVersion": SELDON_API, "kind": "SeldonRuntime", "metadata": _meta("seldon", SYSTEM_NAMESPACE, now),
            "spec": {"seldonConfig": "default", "overrides": [
                {"name": name, "disable": True} for name in ("seldon-envoy", "seldon-modelgateway",
                                                            "seldon-pipelinegateway", "seldon-dataflow-engine")]},
            "status": {"conditions": [_condition("SchedulerReady", True, now), _condition("Ready", True, now)]},
        })
    models = [_model(inputs, m.name, f"file://{inputs.artifacts / m.name}", 1) for m in MODELS]
    models += [_model(inputs, m.name, storage_uri(inputs, m), m.replicas, extra=True) for m in plan.extra_models]
    loaded = sum(1 for m in models if m["status"].get("availableReplicas"))
    objects.append({
        "apiVersion": SELDON_API, "kind": "Server", "metadata": _meta(SERVER, NAMESPACE, now),
        "spec": {"serverConfig": "mlserver", "replicas": SERVER_REPLICAS},
        "status": {"conditions": [_condition("StatefulSetReady", True, now), _condition("Ready", True, now)],
                   "loadedModels": loaded, "replicas": SERVER_REPLICAS, "selector": f"seldon-server-name={SERVER}"},
    })
    objects += models
    objects.append({
        "apiVersion": SELDON_API, "kind": "Experiment", "metadata": {**_meta(EXPERIMENT, NAMESPACE, now),
                                                                    "generation": 1},
        "spec": {"default": DEFAULT_MODEL, "candidates": [{"name": m.name, "weight": m.weight} for m in MODELS]},
        "status": {"conditions": [
            _condition("CandidatesReady", True, now, message="Candidates ready"),
            _condition("ExperimentReady", True, now, message="experiment active"),
            _condition("Ready", True, now),
        ]},
    })
    return objects


def _model(inputs: KubeInputs, name: str, uri: str, replicas: int, *, extra: bool = False) -> dict[str, Any]:
    """A Model and the status the controller writes from the scheduler's state (operator/scheduler/model.go
    `setModelStatus`: ModelReady's reason is the state, its message the state's reason; Ready follows it)."""
    now = inputs.now
    state = inputs.model_states.get(name)
    if state is None:
        state = {"state": "ModelProgressing" if extra else "ModelAvailable", "reason": "",
                 "availableReplicas": 0 if extra else replicas, "replicas": replicas}
    ready = state["state"] == "ModelAvailable"
    reason, message = str(state["state"]), str(state.get("reason") or "")
    return {
        "apiVersion": SELDON_API, "kind": "Model",
        # A Model scaled past its Server has been edited once (replicas 1 → 2): generation 2.
        "metadata": {**_meta(name, NAMESPACE, now), "generation": 2 if replicas > SERVER_REPLICAS else 1},
        "spec": {"storageUri": uri, "requirements": ["sklearn"], "server": SERVER, "replicas": replicas},
        "status": {"conditions": [_condition("ModelReady", ready, now, reason, message),
                                  _condition("Ready", ready, now, reason, message)],
                   "availableReplicas": int(state.get("availableReplicas") or 0),
                   "replicas": int(state.get("replicas") or replicas), "selector": f"server={SERVER}"},
    }


def _namespaces(now: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": _meta(name, None, now, {"kubernetes.io/metadata.name": name}),
         "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        for name in (NAMESPACE, SYSTEM_NAMESPACE, INGRESS_NAMESPACE, DNS_NAMESPACE, "metallb-system")
    ]


def _endpoint_slice(endpoints: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The EndpointSlice the endpointslice controller derives from an Endpoints object."""
    meta = endpoints["metadata"]
    subsets = endpoints.get("subsets") or []
    addresses = [a for subset in subsets for a in subset.get("addresses") or []]
    ports = subsets[0]["ports"] if subsets else []
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta(f"{meta['name']}-stack", meta["namespace"], now, {
            "kubernetes.io/service-name": meta["name"],
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}),
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a["ip"]], "conditions": {"ready": True, "serving": True, "terminating": False},
                       "targetRef": a["targetRef"]} for a in addresses],
        "ports": [dict(p) for p in ports],
    }


def _metallb(now: str) -> list[dict[str, Any]]:
    """The address pool the LoadBalancer IPs come from: the loopback address the stack really listens on."""
    return [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": _meta("stack-pool", "metallb-system", now),
         "spec": {"addresses": ["127.0.0.1/32"], "autoAssign": True, "avoidBuggyIPs": False}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
         "metadata": _meta("stack-pool-l2", "metallb-system", now), "spec": {"ipAddressPools": ["stack-pool"]}},
    ]


def _finish(groups: dict[str, list[dict[str, Any]]], now: str) -> dict[str, list[dict[str, Any]]]:
    """Add what the API server and controllers add: EndpointSlices, uids and resource versions."""
    for docs in groups.values():
        docs += [_endpoint_slice(d, now) for d in list(docs) if d["kind"] == "Endpoints"]
    version = 1000
    for docs in groups.values():
        for doc in docs:
            meta = doc["metadata"]
            key = f"{doc['kind']}/{meta.get('namespace', '')}/{meta['name']}"
            meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-trace-stack/{key}"))
            version += 1
            meta["resourceVersion"] = str(version)
    return groups


def build_objects(inputs: KubeInputs, *, agent_subscribes: bool) -> dict[str, list[dict[str, Any]]]:
    """Objects grouped by the file of the bundle's `kube/` they go to."""
    plan, ports = inputs.plan, inputs.ports
    control = _scheduler(inputs, NAMESPACE, plan.local_scheduler, plan.local_scheduler_service, ports.scheduler_api,
                         ports.scheduler_agent)
    if plan.central_scheduler:
        control += _scheduler(inputs, SYSTEM_NAMESPACE, True, True, ports.central_scheduler_api,
                              ports.central_scheduler_agent)
    control += _controller(inputs)
    return _finish({
        "namespaces.yaml": _namespaces(inputs.now),
        "control-plane.yaml": control,
        "data-plane.yaml": _envoy(inputs) + _server(inputs, agent_subscribes),
        "ingress.yaml": _ingress_controller(inputs) + _ingresses(inputs),
        "network-policies.yaml": network_policies(plan.netpol_intra, inputs.now),
        "seldon.yaml": _seldon(inputs),
        "metallb.yaml": _metallb(inputs.now),
    }, inputs.now)
