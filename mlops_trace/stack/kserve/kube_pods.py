"""The KServe stack's core objects: Namespaces, the revision pods and Deployments (with the storage initializer's
real outcome), the gateway pod whose `istio-proxy` is the stack's Envoy, and the Services Knative, KServe and Istio
create (KSERVE-FACTS §2.1, §3.4)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops_trace.stack.kserve.state import InitResult
from mlops_trace.stack.kserve.topology import (
    GATEWAY_POD,
    ISTIO_NAMESPACE,
    ISVC,
    KNATIVE_NAMESPACE,
    KSERVE_NAMESPACE,
    LOCAL_GATEWAY_SERVICE,
    NAMESPACE,
    PREDICTOR,
    TRANSFORMER,
    KPlan,
    KPorts,
    pod_name,
    revision,
)

HOST_PORTS_ANNOTATION = "mlops-trace.io/host-ports"
HOST_ADDRESS_ANNOTATION = "mlops-trace.io/host-address"
QUEUE_IMAGE = "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.19.0"
INIT_IMAGE = "kserve/storage-initializer:v0.21.0"
SKLEARN_IMAGE = "kserve/sklearnserver:v0.21.0"
TRANSFORMER_IMAGE = "registry.example.com/iris-transformer:1.0"
PROXY_IMAGE = "docker.io/istio/proxyv2:1.27.1"
GATEWAY_IP = "10.244.0.9"


def _meta(name: str, namespace: str | None, now: str, labels: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": now}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _host_ports(ports: Mapping[int, int]) -> dict[str, str]:
    return {HOST_PORTS_ANNOTATION: json.dumps({str(k): f"127.0.0.1:{v}" for k, v in sorted(ports.items()) if v})}


def pod_ip(rev: str) -> str:
    return f"10.244.0.{20 + sum(map(ord, rev)) % 200}"


def namespaces(now: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, None, now),
             "status": {"phase": "Active"}} for ns in (NAMESPACE, KSERVE_NAMESPACE, KNATIVE_NAMESPACE, ISTIO_NAMESPACE)]


def _running(name: str, image: str, now: str) -> dict[str, Any]:
    return {"name": name, "image": image, "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": now}}}


def _queue_env(component: str, rev: str, timeout: int) -> list[dict[str, Any]]:
    """The queue-proxy container's environment (knative/serving pkg/reconciler/revision/resources/queue.go)."""
    values = {"SERVING_NAMESPACE": NAMESPACE, "SERVING_SERVICE": component, "SERVING_CONFIGURATION": component,
              "SERVING_REVISION": rev, "QUEUE_SERVING_PORT": "8012", "QUEUE_SERVING_TLS_PORT": "8112",
              "CONTAINER_CONCURRENCY": "0", "REVISION_TIMEOUT_SECONDS": str(timeout),
              "REVISION_RESPONSE_START_TIMEOUT_SECONDS": str(timeout), "REVISION_IDLE_TIMEOUT_SECONDS": "0"}
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
    env += [{"name": "SERVING_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "SERVING_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SERVING_ENABLE_REQUEST_LOG", "value": "true"}, {"name": "USER_PORT", "value": "8080"},
            {"name": "SYSTEM_NAMESPACE", "value": KNATIVE_NAMESPACE}]
    return env


def _revision_pod(component: str, rev: str, now: str, init: InitResult | None, host_ports: Mapping[int, int],
                  container_args: list[str], storage_uri: str, timeout: int) -> dict[str, Any]:
    labels = {"serving.kserve.io/inferenceservice": ISVC, "component": component.rsplit("-", 1)[-1],
              "app": rev, "serving.knative.dev/service": component, "serving.knative.dev/configuration": component,
              "serving.knative.dev/revision": rev, "serving.knative.dev/configurationGeneration": rev[-1]}
    image = SKLEARN_IMAGE if component == PREDICTOR else TRANSFORMER_IMAGE
    containers: list[dict[str, Any]] = [
        {"name": "kserve-container", "image": image, "args": container_args,
         "ports": [{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}]},
        {"name": "queue-proxy", "image": QUEUE_IMAGE, "env": _queue_env(component, rev, timeout),
         "ports": [{"name": "http-queueadm", "containerPort": 8022}, {"name": "http-autometric", "containerPort": 9090},
                   {"name": "http-usermetric", "containerPort": 9091}, {"name": "queue-port", "containerPort": 8012},
                   {"name": "https-port", "containerPort": 8112}]},
    ]
    spec: dict[str, Any] = {"containers": containers, "nodeName": "mlops-trace-stack"}
    failed = init is not None and init.exit_code != 0
    status: dict[str, Any] = {"podIP": pod_ip(rev), "podIPs": [{"ip": pod_ip(rev)}], "hostIP": "127.0.0.1",
                              "startTime": now}
    if init is not None:
        spec["initContainers"] = [{"name": "storage-initializer", "image": INIT_IMAGE,
                                   "args": [storage_uri, "/mnt/models"],
                                   "terminationMessagePolicy": "FallbackToLogsOnError"}]
        terminated = {"exitCode": init.exit_code, "reason": "Error" if failed else "Completed",
                      "startedAt": init.started_at, "finishedAt": init.finished_at}
        if failed:
            terminated["message"] = init.message
            init_status = {"name": "storage-initializer", "image": INIT_IMAGE, "ready": False, "restartCount": 0,
                           "started": False, "state": {"terminated": terminated}}
        else:
            init_status = {"name": "storage-initializer", "image": INIT_IMAGE, "ready": True, "restartCount": 0,
                           "started": False, "state": {"terminated": terminated}}
        status["initContainerStatuses"] = [init_status]
    if failed:
        status["phase"] = "Pending"
        status["conditions"] = [
            {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
             "message": "containers with incomplete status: [storage-initializer]", "lastTransitionTime": now},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [kserve-container queue-proxy]", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]
        status["containerStatuses"] = [
            {"name": c["name"], "image": c["image"], "ready": False, "started": False, "restartCount": 0,
             "state": {"waiting": {"reason": "PodInitializing"}}} for c in containers]
    else:
        status["phase"] = "Running"
        status["conditions"] = [{"type": t, "status": "True", "lastTransitionTime": now}
                                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        status["containerStatuses"] = [_running(str(c["name"]), str(c["image"]), now) for c in containers]
    meta = _meta(pod_name(rev), NAMESPACE, now, labels, _host_ports(host_ports))
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                "name": pod_name(rev).rsplit("-", 1)[0]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _deployment(component: str, rev: str, now: str, ready: bool) -> dict[str, Any]:
    labels = {"serving.kserve.io/inferenceservice": ISVC, "component": component.rsplit("-", 1)[-1],
              "serving.knative.dev/revision": rev}
    replicas = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1} if ready else {
        "replicas": 1, "unavailableReplicas": 1}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(f"{rev}-deployment", NAMESPACE, now, labels),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"serving.knative.dev/revision": rev}}},
            "status": {**replicas, "conditions": [
                {"type": "Available", "status": "True" if ready else "False",
                 "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable"}]}}


def _service(name: str, namespace: str, now: str, spec: dict[str, Any], status: dict[str, Any] | None = None,
             annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, now, None, annotations),
            "spec": spec, "status": status or {"loadBalancer": {}}}


def _ip(name: str) -> str:
    return f"10.96.{sum(map(ord, name)) % 250}.{len(name) * 7 % 250}"


def workloads(plan: KPlan, ports: KPorts, now: str, inits: tuple[InitResult, ...], storage_uri: str
              ) -> list[dict[str, Any]]:
    """Revision pods and Deployments, the gateway pod and Deployment. kserve's model server listens for gRPC on
    its default `--grpc_port` 8081 in a pod, so the args need not name it."""
    out: list[dict[str, Any]] = []
    inits_by_rev = {i.revision: i for i in inits}
    server_ports = {revision(PREDICTOR, 1): (ports.predictor_http, ports.predictor_grpc, ports.predictor_queue),
                    revision(PREDICTOR, 2): (ports.canary_http, ports.canary_grpc, ports.canary_queue)}
    predictor_revs = plan.predictor_revisions or (revision(PREDICTOR, 1),)
    for rev in predictor_revs:
        init = inits_by_rev.get(rev)
        http_port, grpc_port, queue_port = server_ports[rev] if plan.predictor_runs else (0, 0, 0)
        out.append(_revision_pod(PREDICTOR, rev, now, init, {8080: http_port, 8081: grpc_port, 8012: queue_port},
                                 ["--model_name=sklearn-iris", "--model_dir=/mnt/models", "--http_port=8080"],
                                 storage_uri, plan.predictor_timeout))
        out.append(_deployment(PREDICTOR, rev, now, plan.predictor_runs))
    rev = revision(TRANSFORMER, 1)
    out.append(_revision_pod(TRANSFORMER, rev, now, None,
                             {8080: ports.transformer_http, 8081: ports.transformer_grpc,
                              8012: ports.transformer_queue},
                             ["--model_name", ISVC, "--predictor_host", plan.predictor_host, "--http_port", "8080"],
                             storage_uri, 300))
    out.append(_deployment(TRANSFORMER, rev, now, True))
    gw_labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    gw_ports = {8080: ports.gateway_http, 8081: ports.local_gateway, 15000: ports.gateway_admin}
    gw_meta = _meta(GATEWAY_POD, ISTIO_NAMESPACE, now, gw_labels, _host_ports(gw_ports))
    gw_meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                   "name": GATEWAY_POD.rsplit("-", 1)[0]}]
    out.append({"apiVersion": "v1", "kind": "Pod", "metadata": gw_meta,
                "spec": {"containers": [{"name": "istio-proxy", "image": PROXY_IMAGE,
                                         "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                                         "ports": [{"containerPort": 8080}, {"containerPort": 8443},
                                                   {"containerPort": 15021}, {"containerPort": 15090}]}],
                         "nodeName": "mlops-trace-stack"},
                "status": {"phase": "Running", "podIP": GATEWAY_IP, "podIPs": [{"ip": GATEWAY_IP}],
                           "hostIP": "127.0.0.1", "startTime": now,
                           "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                                          for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                           "containerStatuses": [_running("istio-proxy", PROXY_IMAGE, now)]}})
    out.append({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": _meta("istio-ingressgateway", ISTIO_NAMESPACE, now, gw_labels),
                "spec": {"replicas": 1, "selector": {"matchLabels": {"istio": "ingressgateway"}}},
                "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
    return out


def services(plan: KPlan, ports: KPorts, now: str) -> list[dict[str, Any]]:
    """The gateways' Services, KServe's and Knative's ExternalName placeholders, and the revision Services."""
    gw_selector = {"istio": "ingressgateway"}
    out = [
        _service("istio-ingressgateway", ISTIO_NAMESPACE, now, {
            "type": "LoadBalancer", "clusterIP": _ip("istio-ingressgateway"), "selector": gw_selector,
            "ports": [{"name": "status-port", "port": 15021, "targetPort": 15021},
                      {"name": "http2", "port": 80, "targetPort": 8080},
                      {"name": "https", "port": 443, "targetPort": 8443}]},
            {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
            {HOST_ADDRESS_ANNOTATION: f"127.0.0.1:{ports.gateway_http}"}),
        _service("knative-local-gateway", ISTIO_NAMESPACE, now, {
            "type": "ClusterIP", "clusterIP": _ip("knative-local-gateway"), "selector": gw_selector,
            "ports": [{"name": "http2", "port": 80, "targetPort": 8081}]},
            None, {HOST_ADDRESS_ANNOTATION: f"127.0.0.1:{ports.local_gateway}"}),
    ]
    out[1]["metadata"]["labels"] = {"experimental.istio.io/disable-gateway-port-translation": "true"}
    if plan.predictor_runs:
        out.append(_service(ISVC, NAMESPACE, now, {"type": "ExternalName", "externalName": LOCAL_GATEWAY_SERVICE,
                                                   "sessionAffinity": "None"}))
    components = [(TRANSFORMER, (revision(TRANSFORMER, 1),)), (PREDICTOR, plan.predictor_revisions)]
    for component, revs in components:
        if not revs:
            continue
        out.append(_service(component, NAMESPACE, now, {"type": "ExternalName", "externalName": LOCAL_GATEWAY_SERVICE,
                                                        "ports": [{"name": "http2", "port": 80, "targetPort": 80}]}))
        for rev in revs:
            selector = {"serving.knative.dev/revision": rev}
            out.append(_service(rev, NAMESPACE, now, {
                "type": "ClusterIP", "clusterIP": _ip(rev),
                "ports": [{"name": "http", "port": 80, "targetPort": 8012},
                          {"name": "http2", "port": 81, "targetPort": 8013}]}))
            out.append(_service(f"{rev}-private", NAMESPACE, now, {
                "type": "ClusterIP", "clusterIP": _ip(f"{rev}-private"), "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": 8012},
                          {"name": "http-autometric", "port": 9090, "targetPort": 9090},
                          {"name": "http-usermetric", "port": 9091, "targetPort": 9091}]}))
    return out
