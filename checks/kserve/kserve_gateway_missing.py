"""MT712 kserve-gateway-missing: KServe's ingress configuration names an Istio gateway that is not there: the
`ingress` section of inferenceservice-config lacks `ingressGateway` (the controller refuses to reconcile), or its
`localGateway` / `ingressGateway` Gateway, or the `localGatewayService` Service every KServe VirtualService routes
to, does not exist or selects no running gateway pod, so requests end in Envoy's 503 `no healthy upstream`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    CONFIG_NAME,
    ISTIO_GATEWAY,
    ISVC,
    Answer,
    IngressConfig,
    Mode,
    deployment_mode,
    describe_request,
    gateway_access,
    inferenceservice_config,
    ingress_config,
    isvc_for_request,
    who_answered,
)
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Existence, Snapshot

CHECK = make_check(
    id="MT712",
    slug="kserve-gateway-missing",
    title="KServe's Istio gateway or local gateway Service is missing",
    severity=Severity.CRITICAL,
    requires=("kube:ConfigMap|requests|logs:istio-ingressgateway|logs:kserve-controller",),
    reads=("kube:InferenceService", "kube:Gateway.networking.istio.io", "kube:Service", "kube:Pod", "kube:Namespace"),
    playbook="kserve-ingress",
    fix="Install the gateways inferenceservice-config names (Knative's net-istio ships knative-serving/"
    "knative-ingress-gateway and knative-local-gateway, and the istio-system/knative-local-gateway Service over the "
    "ingress gateway pods), or point ingressGateway / localGateway / localGatewayService at the ones you run.",
)

# The controller's errors (kserve/kserve aaac4e2 pkg/apis/serving/v1beta1/configmap.go `invalid ingress config -
# ingressGateway is required`, `… kserveIngressGateway is required`; before #1468 (2021) `Invalid ingress config,
# ingressGateway and ingressService are required.`; wrapped by pkg/controller/v1beta1/inferenceservice/
# controller.go as `fails to create IngressConfig`).
_CONFIG_ERROR = re.compile(r"fails to create ingressconfig[^\"]*|invalid ingress config[^\"]*", re.IGNORECASE)
_CONTROLLER_NEEDLES = ("IngressConfig", "ingress config")
# Envoy's cluster of KServe's VirtualService route: `outbound|80||<localGatewayService>` (istio/istio
# pilot/pkg/model/service.go BuildSubsetKey); a 503 with `UH`/`NC` on it means no endpoint or no cluster.
_EMPTY_UPSTREAM = frozenset({"UH", "NC"})
_REFUSED = frozenset({"UF", "URX"})


def run(snap: Snapshot) -> Iterator[Finding]:
    config = ingress_config(snap)
    controller = _controller_error(snap)
    reported: set[tuple[str | None, str]] = set()
    if config is not None:
        for finding in _config_findings(snap, config, controller):
            reported.add((finding.namespace, finding.object))
            yield finding
    if controller is not None and not any(obj == f"ConfigMap/{CONFIG_NAME}" for _, obj in reported):
        yield _controller_finding(snap, controller)
    for finding in _access_findings(snap, config):
        if (finding.namespace, finding.object) not in reported:  # the objects already said it
            yield finding


# --- the ConfigMap and the controller -----------------------------------------------------------------------------


def _controller_error(snap: Snapshot) -> Evidence | None:
    """The controller's last `fails to create IngressConfig` / `invalid ingress config` line."""
    last: Evidence | None = None
    for log in snap.logs_of(Role.KSERVE_CONTROLLER):
        for lineno, line in log.lines_mentioning(_CONTROLLER_NEEDLES):
            found = _CONFIG_ERROR.search(line)
            if found is not None:
                last = Evidence(log.where(lineno), evidence_line(found.group(0)))
    return last


def _controller_finding(snap: Snapshot, controller: Evidence) -> Finding:
    config = inferenceservice_config(snap)
    return CHECK.finding(
        namespace=config.namespace if config is not None else None,
        object=f"ConfigMap/{CONFIG_NAME}",
        message=f"The KServe controller cannot read the `ingress` section of {CONFIG_NAME} "
        f"(`{evidence_line(controller.what, 140)}`), so it reconciles no InferenceService.",
        evidence=[controller],
    )


def _knative_isvcs(snap: Snapshot) -> list[KubeObject]:
    return [isvc for isvc in snap.objects_of(ISVC) if (deployment_mode(snap, isvc) or (Mode.KNATIVE, ""))[0]
            is Mode.KNATIVE]


def _config_findings(snap: Snapshot, config: IngressConfig, controller: Evidence | None) -> Iterator[Finding]:
    obj = inferenceservice_config(snap)
    config_ns = obj.namespace if obj is not None else None
    if not config.text("ingressGateway"):
        yield CHECK.finding(
            namespace=config_ns,
            object=f"ConfigMap/{CONFIG_NAME}",
            message=f"The `ingress` section of {CONFIG_NAME} has no ingressGateway: the controller refuses it "
            "(`invalid ingress config - ingressGateway is required`) and reconciles no InferenceService.",
            evidence=[config.evidence("ingressGateway"), *([controller] if controller is not None else [])],
        )
        return
    if not _knative_isvcs(snap):
        return  # Standard mode reaches pods through an Ingress or HTTPRoute, not these gateways
    for key in ("localGateway", "ingressGateway"):
        yield from _gateway_finding(snap, config, key)
    yield from _local_service_finding(snap, config)


def _gateway_finding(snap: Snapshot, config: IngressConfig, key: str) -> Iterator[Finding]:
    value = config.text(key)
    namespace, _, name = value.partition("/")
    if not name:
        return
    existence = snap.existence(ISTIO_GATEWAY, namespace, name)
    if existence is not Existence.ABSENT:
        return
    requests = _empty_upstream_requests(snap)
    yield CHECK.finding(
        namespace=namespace,
        object=f"Gateway/{name}",
        message=f"{CONFIG_NAME} names the Istio Gateway {value} as {key}, but it does not exist: KServe's "
        "VirtualServices bind to it, so the gateway pods get no route (or no listener) for the InferenceServices"
        + (f"; {len(requests)} recorded request(s) failed with Envoy's 503" if requests else "") + ".",
        evidence=[config.evidence(key), *requests[:2]],
    )


def _service_of_host(host: str) -> tuple[str, str] | None:
    """(namespace, name) of `<name>.<namespace>.svc[.cluster.local]`."""
    parts = host.strip().lower().split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[1], parts[0]
    return None


def _local_service_finding(snap: Snapshot, config: IngressConfig) -> Iterator[Finding]:
    key = "knativeLocalGatewayService" if config.text("knativeLocalGatewayService") else "localGatewayService"
    host = config.text(key)
    named = _service_of_host(host)
    if named is None:
        return
    namespace, name = named
    requests = _empty_upstream_requests(snap)
    existence = snap.existence("Service", namespace, name)
    if existence is Existence.ABSENT:
        yield CHECK.finding(
            namespace=namespace,
            object=f"Service/{name}",
            message=f"{CONFIG_NAME} sends every InferenceService's traffic to {host} ({key}), but that Service does "
            "not exist: Istio has no endpoint for the route and answers 503 `no healthy upstream`"
            + (f"; {len(requests)} recorded request(s) failed with Envoy's 503" if requests else "") + ".",
            evidence=[config.evidence(key), *requests[:2]],
        )
        return
    service = snap.get("Service", namespace, name)
    if service is None or not snap.covers("Pod", namespace):
        return
    selector = as_mapping(service.spec.get("selector"))
    if not selector or any(_running_match(pod, selector) for pod in snap.objects_of("Pod", namespace)):
        return
    shown = ", ".join(f"{k}={v}" for k, v in selector.items())
    yield CHECK.finding(
        namespace=namespace,
        object=f"Service/{name}",
        message=f"The local gateway Service {namespace}/{name} ({key} of {CONFIG_NAME}) selects no running pod "
        f"({shown}): no gateway pod serves it, so Istio answers 503 `no healthy upstream`"
        + (f"; {len(requests)} recorded request(s) failed with Envoy's 503" if requests else "") + ".",
        evidence=[config.evidence(key), Evidence(service.field_where(".spec.selector"), evidence_line(shown)),
                  *requests[:2]],
    )


def _running_match(pod: KubeObject, selector: Mapping[str, Any]) -> bool:
    try:
        matches = selector_matches({"matchLabels": dict(selector)}, pod.labels)
    except SelectorError:
        return False
    return matches and str(pod.status.get("phase") or "") == "Running"


# --- what the gateway answered ------------------------------------------------------------------------------------


def _empty_upstream_requests(snap: Snapshot) -> list[Evidence]:
    """Recorded requests to an InferenceService that Istio's Envoy answered 503 for want of an upstream (no healthy
    upstream, no cluster) or a connection to it."""
    return [
        Evidence(record.display, describe_request(record))
        for record in snap.requests
        if who_answered(record) in (Answer.ENVOY_NO_UPSTREAM, Answer.ENVOY_CONNECT)
        and isvc_for_request(snap, record) is not None
    ]


def _access_findings(snap: Snapshot, config: IngressConfig | None) -> Iterator[Finding]:
    """Gateway access lines whose KServe route failed on the local gateway Service's cluster: no endpoint (`UH`) or
    no cluster (`NC`), the Service or its pods are missing; connection refused (`UF`, `URX` after retries), the
    pods run but nothing listens on the Service's target port, the local Gateway's (8081) listener. The proof when
    the objects were not collected."""
    host = config.text("knativeLocalGatewayService") or config.text("localGatewayService") if config else ""
    host = host or "knative-local-gateway"
    named = _service_of_host(host)
    found: dict[str, list[Evidence]] = {"empty": [], "refused": []}
    counts = {"empty": 0, "refused": 0}
    for log, record in gateway_access(snap, (*_EMPTY_UPSTREAM, *_REFUSED)):
        flags = set(record.response_flags)
        if host.split(".")[0] not in (record.upstream_cluster or ""):
            continue
        kind = "empty" if flags & _EMPTY_UPSTREAM else "refused" if flags & _REFUSED else ""
        if not kind:
            continue
        counts[kind] += 1
        if len(found[kind]) < 3:
            found[kind].append(Evidence(log.where(record.lineno), evidence_line(record.raw)))
    if not counts["empty"] and not counts["refused"]:
        return
    if counts["empty"]:
        what = (f"{counts['empty']} request(s) through the Istio gateway found no endpoint (or no cluster) for the "
                f"local gateway Service {host}, where KServe's VirtualServices send every InferenceService: it or its "
                "gateway pods are missing.")
    else:
        what = (f"{counts['refused']} request(s) through the Istio gateway were refused by the local gateway Service "
                f"{host}, where KServe's VirtualServices send every InferenceService: its pods run but nothing listens "
                "on its target port (the local Gateway, listening on 8081, is missing or does not select them).")
    requests = _empty_upstream_requests(snap)
    yield CHECK.finding(
        namespace=named[0] if named else None,
        object=f"Service/{named[1]}" if named else f"Service/{host}",
        message=what,
        evidence=[*found["empty"], *found["refused"]][:3] + requests[:2],
    )
