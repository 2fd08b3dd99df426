"""MT714 raw-deployment-ingress: an InferenceService in Standard (RawDeployment) mode that no ingress controller
serves: its Ingress (or HTTPRoute) was not created, or names an IngressClass that does not exist (KServe sets
IngressReady True either way), so the Ready InferenceService answers only inside the cluster."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    CLUSTER_LOCAL_LABELS,
    CLUSTER_SUFFIX,
    ISVC,
    IngressConfig,
    Mode,
    component_name,
    deployment_mode,
    ingress_config,
)
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Existence, Snapshot

CHECK = make_check(
    id="MT714",
    slug="raw-deployment-ingress",
    title="Standard-mode InferenceService has no working Ingress",
    severity=Severity.CRITICAL,
    requires=("kube:InferenceService",),
    reads=("kube:Ingress", "kube:IngressClass", "kube:ConfigMap", "kube:HTTPRoute", "kube:Namespace"),
    playbook="kserve-ingress",
    fix="Set ingress.ingressClassName in inferenceservice-config to an IngressClass your controller serves (or mark "
    "one default), make sure disableIngressCreation is false, and let the controller recreate the Ingress; or "
    "enable the Gateway API (enableGatewayApi) with an existing kserveIngressGateway.",
)

# KServe's Standard-mode ingress (kserve/kserve aaac4e2 pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/
# kube_ingress_reconciler.go): an Ingress named like the InferenceService with `ingressClassName` from the
# ConfigMap; none when `disableIngressCreation`, the `networking.kserve.io/visibility: cluster-local` label or
# `ingressDomain: svc.cluster.local`; HTTPRoutes instead with `enableGatewayApi` (httproute_reconciler.go). It never
# reads IngressClass objects. The default-class annotation is Kubernetes' `ingressclass.kubernetes.io/is-default-class`.
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def run(snap: Snapshot) -> Iterator[Finding]:
    config = ingress_config(snap)
    for isvc in snap.objects_of(ISVC):
        mode = deployment_mode(snap, isvc)
        if mode is None or mode[0] is not Mode.STANDARD or _no_ingress_wanted(isvc, config):
            continue
        finding = _judge(snap, isvc, mode[1], config)
        if finding is not None:
            yield finding


def _no_ingress_wanted(isvc: KubeObject, config: IngressConfig | None) -> bool:
    if any(isvc.labels.get(label) == "cluster-local" for label in CLUSTER_LOCAL_LABELS):
        return True
    return config is not None and (config.flag("disableIngressCreation") or config.text("ingressDomain") == CLUSTER_SUFFIX)


def _judge(snap: Snapshot, isvc: KubeObject, mode_where: str, config: IngressConfig | None) -> Finding | None:
    namespace = isvc.namespace
    mode_evidence = Evidence(mode_where, "deploymentMode Standard (RawDeployment)")
    if config is not None and config.flag("enableGatewayApi"):
        if snap.existence("HTTPRoute", namespace, isvc.name) is not Existence.ABSENT:
            return None
        return CHECK.finding(
            namespace=namespace,
            object=f"InferenceService/{isvc.name}",
            message=f"InferenceService {isvc.name} runs in Standard mode with the Gateway API enabled, but its "
            f"HTTPRoute {isvc.name} does not exist: nothing outside the cluster reaches it.",
            evidence=[mode_evidence, config.evidence("enableGatewayApi")],
        )
    if snap.existence("Ingress", namespace, isvc.name) is Existence.ABSENT:
        evidence = [mode_evidence]
        if config is not None:
            evidence.append(config.evidence("disableIngressCreation"))
        return CHECK.finding(
            namespace=namespace,
            object=f"InferenceService/{isvc.name}",
            message=f"InferenceService {isvc.name} runs in Standard mode but its Ingress {isvc.name} does not exist "
            f"(Service {component_name(isvc.name, 'predictor')} is reachable only inside the cluster): the controller "
            "did not create it.",
            evidence=evidence,
        )
    ingress = snap.get("Ingress", namespace, isvc.name)
    if ingress is None or not snap.covers("IngressClass", None):
        return None
    return _class_finding(snap, isvc, ingress, mode_evidence, config)


def _class_finding(snap: Snapshot, isvc: KubeObject, ingress: KubeObject, mode_evidence: Evidence,
                   config: IngressConfig | None) -> Finding | None:
    named = str(ingress.spec.get("ingressClassName") or ingress.annotations.get(LEGACY_CLASS_ANNOTATION) or "")
    classes = snap.objects_of("IngressClass")
    if named and any(c.name == named for c in classes):
        return None
    defaults = [c.name for c in classes if c.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if not named and defaults:
        return None
    where = ".spec.ingressClassName" if ingress.spec.get("ingressClassName") else (
        f".metadata.annotations[{LEGACY_CLASS_ANNOTATION}]")
    evidence = [mode_evidence, Evidence(ingress.field_where(where), f"ingressClassName: {named or '(unset)'}")]
    if config is not None:
        evidence.append(config.evidence("ingressClassName"))
    balancer = as_list(as_mapping(as_mapping(ingress.status.get("loadBalancer"))).get("ingress"))
    if not balancer:
        evidence.append(Evidence(ingress.field_where(".status.loadBalancer"), "no address: no controller took it"))
    existing = ", ".join(sorted(c.name for c in classes)) or "none"
    if named:
        why = f"names IngressClass `{named}`, which does not exist (the cluster has {existing})"
    else:
        why = f"names no IngressClass and none is the default (the cluster has {existing})"
    return CHECK.finding(
        namespace=isvc.namespace,
        object=f"InferenceService/{isvc.name}",
        message=f"InferenceService {isvc.name} runs in Standard mode and its Ingress {ingress.name} {why}: no "
        "ingress controller serves it, although KServe reports IngressReady True.",
        evidence=evidence,
    )

