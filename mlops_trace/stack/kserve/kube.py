"""The KServe stack's Kubernetes objects, as `kubectl get -o yaml` would print them from a cluster running it
(shapes and names: KSERVE-FACTS §1–§3, kind keys: mlops_trace/kinds.py), and the bundle directory they are served from.

Knative mode (the shipped inferenceservice-config's `Serverless`): an InferenceService `sklearn-iris` with a
transformer and an sklearn predictor, the ksvc/Configuration/Revision/Route KServe's controller and Knative make for
each component, KServe's VirtualService `sklearn-iris` and net-istio's `<ksvc>-ingress`/`-mesh` ones, the two Knative
Gateways, the revision pods (init container `storage-initializer`, containers `kserve-container` and `queue-proxy`;
no Istio sidecar: the namespace is not labelled for injection) and the `istio-ingressgateway` pod whose `istio-proxy`
is the stack's Envoy. Where a process really listens is in the `mlops-trace.io/host-ports` annotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from mlops_trace.stack.kserve.kube_pods import SKLEARN_IMAGE, TRANSFORMER_IMAGE, namespaces, services, workloads
from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.state import InitResult
from mlops_trace.stack.kserve.topology import (
    CANARY_PERCENT,
    DOMAIN,
    INGRESS_GATEWAY_SERVICE,
    ISTIO_NAMESPACE,
    ISVC,
    ISVC_HOST,
    ISVC_INTERNAL_HOST,
    KNATIVE_NAMESPACE,
    KSERVE_NAMESPACE,
    LOCAL_GATEWAY_SERVICE,
    MODEL,
    NAMESPACE,
    PREDICTOR,
    TRANSFORMER,
    KFault,
    KPlan,
    KPorts,
    authority_regex,
    pod_name,
    revision,
)

KSERVE_API = "serving.kserve.io/v1beta1"
KNATIVE_API = "serving.knative.dev/v1"
ISTIO_API = "networking.istio.io/v1beta1"
KSERVE_VERSION = "v0.21.0"


@dataclass(frozen=True)
class KubeInputs:
    plan: KPlan
    ports: KPorts
    now: str
    storage_uri: str
    inits: tuple[InitResult, ...]


def _meta(name: str, namespace: str | None, now: str, labels: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None, generation: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": now}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if generation is not None:
        meta["generation"] = generation
    return meta


def _cond(kind: str, status: bool | None, now: str, reason: str = "", message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "status": {True: "True", False: "False", None: "Unknown"}[status],
                           "lastTransitionTime": now}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def _init(inputs: KubeInputs, rev: str) -> InitResult | None:
    return next((i for i in inputs.inits if i.revision == rev), None)


# --- ConfigMaps -------------------------------------------------------------------------------------------------


def _configmaps(now: str) -> list[dict[str, Any]]:
    ingress = {
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "localGateway": "knative-serving/knative-local-gateway",
        "localGatewayService": LOCAL_GATEWAY_SERVICE, "knativeLocalGatewayService": "",
        "ingressDomain": DOMAIN, "ingressClassName": "istio",
        "domainTemplate": "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}", "urlScheme": "http",
        "disableIstioVirtualHost": False, "enableGatewayApi": False,
        "kserveIngressGateway": "kserve/kserve-ingress-gateway", "disableIngressCreation": False,
    }
    storage = {"image": "kserve/storage-initializer:latest", "memoryRequest": "100Mi", "memoryLimit": "1Gi",
               "cpuRequest": "100m", "cpuLimit": "1", "caBundleConfigMapName": "",
               "caBundleVolumeMountPath": "/etc/ssl/custom-certs", "enableModelcar": False}

    def cm(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, now), "data": dict(data)}

    return [
        cm("inferenceservice-config", KSERVE_NAMESPACE, {
            "ingress": json.dumps(ingress, indent=1), "deploy": json.dumps({"defaultDeploymentMode": "Serverless"}),
            "storageInitializer": json.dumps(storage, indent=1),
            "credentials": json.dumps({"storageSpecSecretName": "storage-config"})}),
        cm("config-domain", KNATIVE_NAMESPACE, {DOMAIN: ""}),
        cm("config-network", KNATIVE_NAMESPACE, {
            "domain-template": "{{.Name}}.{{.Namespace}}.{{.Domain}}", "tag-template": "{{.Tag}}-{{.Name}}",
            "ingress-class": "istio.ingress.networking.knative.dev", "default-external-scheme": "http"}),
        cm("config-istio", KNATIVE_NAMESPACE, {
            "gateway.knative-serving.knative-ingress-gateway": f"istio-ingressgateway.{ISTIO_NAMESPACE}.svc.cluster.local",
            "local-gateway.knative-serving.knative-local-gateway": LOCAL_GATEWAY_SERVICE}),
        cm("config-defaults", KNATIVE_NAMESPACE, {
            "revision-timeout-seconds": "300", "max-revision-timeout-seconds": "600",
            "revision-response-start-timeout-seconds": "300", "revision-idle-timeout-seconds": "0",
            "container-concurrency": "0"}),
        cm("config-autoscaler", KNATIVE_NAMESPACE, {
            "enable-scale-to-zero": "true", "scale-to-zero-grace-period": "30s", "target-burst-capacity": "211",
            "container-concurrency-target-default": "100", "stable-window": "60s", "initial-scale": "1",
            "allow-zero-initial-scale": "false", "min-scale": "0"}),
        cm("config-observability", KNATIVE_NAMESPACE, {"logging.enable-request-log": "true"}),
    ]


# --- KServe ---------------------------------------------------------------------------------------------------


def _component_status(inputs: KubeInputs, component: str) -> dict[str, Any]:
    plan = inputs.plan
    if component == PREDICTOR:
        if not plan.predictor_runs:
            return {"latestCreatedRevision": revision(PREDICTOR, 1)}
        revs = plan.predictor_revisions
        traffic = [{"revisionName": rev, "percent": pct, "latestRevision": rev == revs[-1]}
                   for rev, pct in plan.route_traffic.items()]
        status: dict[str, Any] = {"latestCreatedRevision": revs[-1], "latestReadyRevision": revs[-1],
                                  "latestRolledoutRevision": revs[0], "traffic": traffic}
        if plan.canary:
            status["previousRolledoutRevision"] = revs[0]
    else:
        rev = revision(TRANSFORMER, 1)
        status = {"latestCreatedRevision": rev, "latestReadyRevision": rev, "latestRolledoutRevision": rev,
                  "traffic": [{"revisionName": rev, "percent": 100, "latestRevision": True}]}
    status["url"] = f"http://{component}.{NAMESPACE}.{DOMAIN}"
    status["address"] = {"url": f"http://{component}.{NAMESPACE}.svc.cluster.local"}
    return status


def _isvc(inputs: KubeInputs) -> dict[str, Any]:
    plan, now = inputs.plan, inputs.now
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v1",
                                           "runtime": "kserve-sklearnserver", "storageUri": inputs.storage_uri}}
    if plan.has(KFault.REVISION_TIMEOUT):
        predictor["timeout"] = plan.predictor_timeout
    if plan.canary:
        predictor["canaryTrafficPercent"] = CANARY_PERCENT
    transformer = {"containers": [{"name": "kserve-container", "image": TRANSFORMER_IMAGE,
                                   "args": ["--model_name", MODEL, "--predictor_host", plan.predictor_host]}]}
    ready = plan.predictor_runs
    waiting = f'Configuration "{PREDICTOR}" is waiting for a Revision to become ready.'
    conditions = [
        _cond("IngressReady", ready, now, "" if ready else "PredictorIngressNotCreated",
              "" if ready else "Predictor ingress not created"),
        _cond("LatestDeploymentReady", True if ready else None, now),
        _cond("PredictorConfigurationReady", True if ready else None, now),
        _cond("PredictorReady", True if ready else None, now, "" if ready else "RevisionMissing",
              "" if ready else waiting),
        _cond("PredictorRouteReady", True if ready else None, now, "" if ready else "RevisionMissing",
              "" if ready else waiting),
        _cond("Ready", ready, now, "" if ready else "PredictorIngressNotCreated",
              "" if ready else "Predictor ingress not created"),
        _cond("RoutesReady", True if ready else None, now),
        _cond("TransformerConfigurationReady", True, now),
        _cond("TransformerReady", True, now),
        _cond("TransformerRouteReady", True, now),
    ]
    init = _init(inputs, revision(PREDICTOR, 1))
    if ready:
        model_status: dict[str, Any] = {
            "copies": {"failedCopies": 0, "totalCopies": len(plan.predictor_revisions)},
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}, "transitionStatus": "UpToDate"}
    else:
        model_status = {
            "copies": {"failedCopies": 1, "totalCopies": 1},
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "transitionStatus": "BlockedByFailedLoad",
            "lastFailureInfo": {"reason": "ModelLoadFailed", "message": init.message if init else "",
                                "exitCode": init.exit_code if init else 1, "location": pod_name(revision(PREDICTOR, 1)),
                                "time": init.finished_at if init else now}}
    status: dict[str, Any] = {
        "observedGeneration": 2 if plan.canary else 1,
        "components": {"predictor": _component_status(inputs, PREDICTOR),
                       "transformer": _component_status(inputs, TRANSFORMER)},
        "conditions": conditions, "deploymentMode": "Knative", "modelStatus": model_status,
        "servingRuntimeName": "kserve-sklearnserver",
    }
    if ready:
        status["url"] = f"http://{ISVC_HOST}"
        status["address"] = {"url": f"http://{ISVC_INTERNAL_HOST}"}
    return {"apiVersion": KSERVE_API, "kind": "InferenceService",
            "metadata": _meta(ISVC, NAMESPACE, now, annotations={"serving.kserve.io/deploymentMode": "Serverless"},
                              generation=2 if plan.canary else 1),
            "spec": {"predictor": predictor, "transformer": transformer}, "status": status}


# --- Knative --------------------------------------------------------------------------------------------------


def _labels(component: str, rev: str | None = None) -> dict[str, str]:
    labels = {"serving.kserve.io/inferenceservice": ISVC, "component": component.rsplit("-", 1)[-1],
              "app": rev or component}
    labels["serving.knative.dev/service"] = component
    labels["serving.knative.dev/configuration"] = component
    if rev:
        labels["serving.knative.dev/revision"] = rev
    return labels


def _template(inputs: KubeInputs, component: str) -> dict[str, Any]:
    plan = inputs.plan
    timeout = plan.predictor_timeout if component == PREDICTOR else 300
    if component == PREDICTOR:
        container = {"name": "kserve-container", "image": SKLEARN_IMAGE,
                     "args": ["--model_name=sklearn-iris", "--model_dir=/mnt/models", "--http_port=8080"]}
    else:
        container = {"name": "kserve-container", "image": TRANSFORMER_IMAGE,
                     "args": ["--model_name", MODEL, "--predictor_host", plan.predictor_host, "--http_port", "8080"]}
    annotations = {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev", "autoscaling.knative.dev/min-scale": "1"}
    if component == PREDICTOR:
        annotations["serving.kserve.io/storage-initializer-sourceuri"] = inputs.storage_uri
    return {"metadata": {"labels": _labels(component), "annotations": annotations},
            "spec": {"containerConcurrency": 0, "timeoutSeconds": timeout, "responseStartTimeoutSeconds": timeout,
                     "containers": [container]}}


def _revisions(component: str, plan: KPlan) -> tuple[str, ...]:
    if component == TRANSFORMER:
        return (revision(TRANSFORMER, 1),)
    return plan.predictor_revisions or (revision(PREDICTOR, 1),)


def _knative(inputs: KubeInputs, component: str) -> list[dict[str, Any]]:
    plan, now = inputs.plan, inputs.now
    revs = _revisions(component, plan)
    ok = component == TRANSFORMER or plan.predictor_runs
    generation = len(revs)
    if component == PREDICTOR and plan.canary:
        asked = [{"latestRevision": True, "percent": CANARY_PERCENT},
                 {"revisionName": revs[0], "percent": 100 - CANARY_PERCENT, "tag": "prev"}]
        observed = [{"revisionName": rev, "percent": pct, "latestRevision": False}
                    for rev, pct in plan.route_traffic.items()]
    else:
        asked = [{"latestRevision": True, "percent": 100}]
        observed = [{"revisionName": revs[-1], "percent": 100, "latestRevision": True}] if ok else []
    waiting = f'Configuration "{component}" is waiting for a Revision to become ready.'
    ready_conds = ([_cond(t, True, now) for t in ("ConfigurationsReady", "Ready", "RoutesReady")] if ok else [
        _cond("ConfigurationsReady", None, now), _cond("Ready", None, now, "RevisionMissing", waiting),
        _cond("RoutesReady", None, now, "RevisionMissing", waiting)])
    url = f"http://{component}.{NAMESPACE}.{DOMAIN}"
    address = {"url": f"http://{component}.{NAMESPACE}.svc.cluster.local"}
    revision_status = {"latestCreatedRevisionName": revs[-1]}
    if ok:
        revision_status["latestReadyRevisionName"] = revs[-1]
    ksvc = {"apiVersion": KNATIVE_API, "kind": "Service",
            "metadata": _meta(component, NAMESPACE, now, _labels(component), generation=generation),
            "spec": {"template": _template(inputs, component), "traffic": asked},
            "status": {"observedGeneration": generation, "conditions": ready_conds, **revision_status,
                       **({"url": url, "address": address, "traffic": observed} if ok else {})}}
    config = {"apiVersion": KNATIVE_API, "kind": "Configuration",
              "metadata": _meta(component, NAMESPACE, now, _labels(component), generation=generation),
              "spec": {"template": _template(inputs, component)},
              "status": {"observedGeneration": generation, **revision_status,
                         "conditions": [_cond("Ready", True if ok else None, now)]}}
    # canary-stale: the Route's spec has the canary split, its status (what the ingress programs) does not.
    route_generation = generation
    route_observed = generation - 1 if (component == PREDICTOR and plan.canary) else generation
    route_spec = [{"revisionName": revs[-1], "percent": CANARY_PERCENT, "tag": "latest"},
                  {"revisionName": revs[0], "percent": 100 - CANARY_PERCENT, "tag": "prev"}] \
        if component == PREDICTOR and plan.canary else [{"revisionName": revs[-1], "percent": 100}]
    route_conds = [_cond("AllTrafficAssigned", True, now), _cond("CertificateProvisioned", True, now),
                   _cond("IngressReady", True, now), _cond("Ready", True, now)] if ok else [
        _cond("AllTrafficAssigned", None, now, "RevisionMissing", waiting),
        _cond("IngressReady", None, now, "IngressNotConfigured", "Ingress has not yet been reconciled."),
        _cond("Ready", None, now, "RevisionMissing", waiting)]
    route = {"apiVersion": KNATIVE_API, "kind": "Route",
             "metadata": _meta(component, NAMESPACE, now, _labels(component), generation=route_generation),
             "spec": {"traffic": route_spec},
             "status": {"observedGeneration": route_observed, "conditions": route_conds,
                        **({"url": url, "address": address, "traffic": observed} if ok else {})}}
    out = [ksvc, config, route]
    if ok:
        out.append(_kingress(component, now))
    for rev in revs:
        rev_ok = ok
        conds = [_cond(t, True, now) for t in ("Active", "ContainerHealthy", "Ready", "ResourcesAvailable")] \
            if rev_ok else [_cond("Active", None, now, "Deploying"), _cond("ContainerHealthy", None, now),
                            _cond("Ready", None, now, "Deploying"), _cond("ResourcesAvailable", None, now, "Deploying")]
        out.append({"apiVersion": KNATIVE_API, "kind": "Revision",
                    "metadata": _meta(rev, NAMESPACE, now, _labels(component, rev), generation=1),
                    "spec": _template(inputs, component)["spec"],
                    "status": {"observedGeneration": 1, "conditions": conds,
                               "actualReplicas": 1 if rev_ok else 0, "desiredReplicas": 1}})
    return out


def _kingress(component: str, now: str) -> dict[str, Any]:
    """The Route's KIngress (net-istio's input; its `-ingress`/`-mesh` VirtualServices are made from it)."""
    internal = [f"{component}.{NAMESPACE}", f"{component}.{NAMESPACE}.svc", f"{component}.{NAMESPACE}.svc.cluster.local"]
    rules = [{"hosts": hosts, "visibility": visibility, "http": {"paths": [{"splits": [{
        "serviceName": component, "serviceNamespace": NAMESPACE, "servicePort": 80, "percent": 100}]}]}}
        for hosts, visibility in ((internal, "ClusterLocal"), ([f"{component}.{NAMESPACE}.{DOMAIN}"], "ExternalIP"))]
    return {"apiVersion": "networking.internal.knative.dev/v1alpha1", "kind": "Ingress",
            "metadata": _meta(component, NAMESPACE, now, {"serving.knative.dev/route": component,
                                                          "serving.knative.dev/routeNamespace": NAMESPACE},
                              {"networking.knative.dev/ingress.class": "istio.ingress.networking.knative.dev"}, 1),
            "spec": {"httpOption": "Enabled", "rules": rules},
            "status": {"observedGeneration": 1,
                       "conditions": [_cond(t, True, now) for t in ("LoadBalancerReady", "NetworkConfigured", "Ready")],
                       "publicLoadBalancer": {"ingress": [{"domainInternal": INGRESS_GATEWAY_SERVICE}]},
                       "privateLoadBalancer": {"ingress": [{"domainInternal": LOCAL_GATEWAY_SERVICE}]}}}


# --- Istio ----------------------------------------------------------------------------------------------------


def _gateways(plan: KPlan, now: str) -> list[dict[str, Any]]:
    def gateway(name: str, port: int, protocol: str) -> dict[str, Any]:
        return {"apiVersion": ISTIO_API, "kind": "Gateway", "metadata": _meta(name, KNATIVE_NAMESPACE, now),
                "spec": {"selector": {"istio": "ingressgateway"},
                         "servers": [{"hosts": ["*"], "port": {"name": protocol.lower(), "number": port,
                                                              "protocol": protocol}}]}}

    out = [gateway("knative-ingress-gateway", 80, "HTTP")]
    if plan.local_gateway:
        out.append(gateway("knative-local-gateway", 8081, "HTTP"))
    return out


def _virtual_services(inputs: KubeInputs) -> list[dict[str, Any]]:
    plan, now = inputs.plan, inputs.now
    out: list[dict[str, Any]] = []
    if plan.predictor_runs:
        host = plan.vs_host
        out.append({"apiVersion": ISTIO_API, "kind": "VirtualService",
                    "metadata": _meta(ISVC, NAMESPACE, now, {"serving.kserve.io/inferenceservice": ISVC}),
                    "spec": {"hosts": [ISVC_INTERNAL_HOST, host],
                             "gateways": ["knative-serving/knative-local-gateway", "mesh",
                                          "knative-serving/knative-ingress-gateway"],
                             "http": [{"match": [
                                 {"authority": {"regex": authority_regex(ISVC_INTERNAL_HOST)},
                                  "gateways": ["knative-serving/knative-local-gateway", "mesh"]},
                                 {"authority": {"regex": authority_regex(host)},
                                  "gateways": ["knative-serving/knative-ingress-gateway"]}],
                                 "route": [{"destination": {"host": LOCAL_GATEWAY_SERVICE, "port": {"number": 80}},
                                            "weight": 100,
                                            "headers": {"request": {"set": {
                                                "Host": f"{TRANSFORMER}.{NAMESPACE}.svc.cluster.local",
                                                "KServe-Isvc-Name": ISVC, "KServe-Isvc-Namespace": NAMESPACE}}}}]}]}})
    components = [(TRANSFORMER, {revision(TRANSFORMER, 1): 100})]
    if plan.predictor_runs:
        components.append((PREDICTOR, plan.route_traffic))
    for component, traffic in components:
        destinations = [{"destination": {"host": f"{rev}.{NAMESPACE}.svc.cluster.local", "port": {"number": 80}},
                         "weight": pct, "headers": {"request": {"set": {"Knative-Serving-Namespace": NAMESPACE,
                                                                        "Knative-Serving-Revision": rev}}}}
                        for rev, pct in traffic.items()]
        internal = [f"{component}.{NAMESPACE}", f"{component}.{NAMESPACE}.svc",
                    f"{component}.{NAMESPACE}.svc.cluster.local"]
        external = f"{component}.{NAMESPACE}.{DOMAIN}"
        labels = {"networking.internal.knative.dev/ingress": component, "serving.knative.dev/route": component,
                  "serving.knative.dev/routeNamespace": NAMESPACE}
        out.append({"apiVersion": ISTIO_API, "kind": "VirtualService",
                    "metadata": _meta(f"{component}-ingress", NAMESPACE, now, labels),
                    "spec": {"hosts": [*internal, external],
                             "gateways": ["knative-serving/knative-ingress-gateway",
                                          "knative-serving/knative-local-gateway"],
                             "http": [{"match": [{"authority": {"prefix": h}, "gateways": [g]} for h, g in
                                                 [(external, "knative-serving/knative-ingress-gateway")]
                                                 + [(h, "knative-serving/knative-local-gateway") for h in internal]],
                                       "retries": {}, "route": destinations}]}})
        out.append({"apiVersion": ISTIO_API, "kind": "VirtualService",
                    "metadata": _meta(f"{component}-mesh", NAMESPACE, now, labels),
                    "spec": {"hosts": internal, "gateways": ["mesh"],
                             "http": [{"match": [{"authority": {"prefix": h}, "gateways": ["mesh"]}
                                                 for h in internal], "retries": {}, "route": destinations}]}})
    return out


# --- the bundle -----------------------------------------------------------------------------------------------


def build_objects(inputs: KubeInputs) -> dict[str, list[dict[str, Any]]]:
    """Every object, by the bundle file it goes to (file names name no kind: each object's kind key comes from its
    `kind` and `apiVersion` when the bundle is read)."""
    plan, now = inputs.plan, inputs.now
    knative = _knative(inputs, TRANSFORMER) + _knative(inputs, PREDICTOR)
    return {
        "namespaces.yaml": namespaces(now),
        "kserve-config.yaml": _configmaps(now),
        "kserve-isvc.yaml": [_isvc(inputs)],
        "kserve-knative.yaml": knative,
        "kserve-istio.yaml": _gateways(plan, now) + _virtual_services(inputs),
        "kserve-workloads.yaml": workloads(plan, inputs.ports, now, inputs.inits, inputs.storage_uri),
        "kserve-network.yaml": services(plan, inputs.ports, now),
    }


def write_bundle(paths: KServePaths, objects: dict[str, list[dict[str, Any]]], faults: Sequence[str]) -> None:
    for filename, docs in objects.items():
        (paths.bundle / "kube" / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    kinds = sorted({str(doc["kind"]) for docs in objects.values() for doc in docs})
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    meta = {"source": "mlops-trace stack --profile kserve", "collected_at": now, "context": "mlops-trace-kserve-stack",
            "namespaces": "all", "kinds": kinds, "faults": list(faults)}
    (paths.bundle / "bundle.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
