"""MT711 knative-ingress-not-configured: a Knative Route (of a KServe component) stuck on `IngressNotConfigured`:
its revisions may be Ready, but the KIngress never became ready because the Istio gateway's answer to Knative's
readiness probe was not the one it waits for, so the ksvc and the InferenceService stay not Ready."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    KINGRESS,
    KSVC,
    component_name,
    components_of,
    condition_evidence,
    condition_state,
    condition_words,
    gateway_access,
    owner_isvc,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT711",
    slug="knative-ingress-not-configured",
    title="Knative Route stuck on IngressNotConfigured (gateway probe not answered)",
    severity=Severity.CRITICAL,
    requires=("kube:Route|kube:Service.serving.knative.dev|kube:InferenceService",),
    reads=("kube:Ingress.networking.internal.knative.dev", "kube:Revision", "logs:istio-ingressgateway"),
    playbook="kserve-ingress",
    # A Route with no ready revision to send traffic to stays IngressNotConfigured too (Knative programs no ingress for
    # it): a predictor whose model never downloaded (MT701) or whose revision is not ready (MT716) is the cause then.
    explained_by=("MT701", "MT716"),
    fix="Let Knative's probe reach the route on every gateway pod: exempt requests with the K-Network-Probe header "
    "(User-Agent Knative-Ingress-Probe) from any auth filter on the ingress and local gateways, make config-istio "
    "name the gateways that exist, and check net-istio-controller's `Probing of … failed` lines.",
)

# Knative's reason and message (knative/serving 98e5ef9 pkg/apis/serving/v1/route_lifecycle.go:
# `IngressNotConfigured`, `Ingress has not yet been reconciled.`; the ksvc copies it into RoutesReady and Ready,
# KServe into <Component>Ready / <Component>RouteReady). The KIngress's `LoadBalancerReady` is Unknown `Waiting for
# load balancer to be ready` until every gateway pod answered the probe (knative/networking 17b28c6
# pkg/apis/networking/v1alpha1/ingress_lifecycle.go, pkg/status/status.go).
REASON = "IngressNotConfigured"
# The prober's request (knative/networking pkg/http/header/header.go: header `K-Network-Probe: probe`, User-Agent
# `Knative-Ingress-Probe`), as the gateway's access log shows it.
PROBE_AGENT = "Knative-Ingress-Probe"


@dataclass
class _Case:
    namespace: str | None
    route: str
    owner: tuple[str, str] | None
    evidence: list[Evidence] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    for route in snap.objects_of("Route"):
        if route.api_version.startswith("serving.knative.dev/"):
            _note(snap, cases, route, route.name, "IngressReady")
    for ksvc in snap.objects_of(KSVC):
        _note(snap, cases, ksvc, ksvc.name, "RoutesReady")
    for isvc in snap.objects_of(ISVC):
        for component in components_of(isvc):
            title = component.capitalize()
            for type_ in (f"{title}RouteReady", f"{title}Ready"):
                if REASON.lower() in condition_words(isvc, type_).lower():
                    _note(snap, cases, isvc, component_name(isvc.name, component), type_)
                    break
    probes = _probe_answers(snap)
    for case in cases.values():
        yield _finding(snap, case, probes)


def _note(snap: Snapshot, cases: dict[tuple[str | None, str], _Case], obj: KubeObject, route: str, type_: str) -> None:
    if condition_state(obj, type_) in ("True", "") or REASON.lower() not in condition_words(obj, type_).lower():
        return
    key = (obj.namespace, route)
    owner = (obj.name, route[len(obj.name) + 1 :]) if obj.kind == ISVC else owner_isvc(snap, obj)
    case = cases.setdefault(key, _Case(obj.namespace, route, owner))
    shown = condition_evidence(obj, type_)
    if shown is not None and len(case.evidence) < 3:
        case.evidence.append(shown)


def _probe_answers(snap: Snapshot) -> list[tuple[str, str, str, int | None, tuple[str, ...]]]:
    """(where, line, host, status, flags) of the gateway's access lines for Knative's probe that were not 200."""
    found: list[tuple[str, str, str, int | None, tuple[str, ...]]] = []
    for log, record in gateway_access(snap, (PROBE_AGENT,)):
        agent = record.user_agent or record.headers.get("user-agent", "")
        if PROBE_AGENT.lower() not in (agent or record.raw).lower() or record.status == 200:
            continue
        found.append((log.where(record.lineno), evidence_line(record.raw), (record.authority or "").lower(),
                      record.status, record.response_flags))
    return found


def _finding(snap: Snapshot, case: _Case, probes: list[tuple[str, str, str, int | None, tuple[str, ...]]]) -> Finding:
    evidence = list(case.evidence)
    kingress = snap.get(KINGRESS, case.namespace, case.route)
    if kingress is not None:
        for type_ in ("LoadBalancerReady", "NetworkConfigured"):
            shown = condition_evidence(kingress, type_)
            if shown is not None and condition_state(kingress, type_) != "True":
                evidence.append(shown)
    ready_revision = _ready_revision(snap, case)
    mine = [p for p in probes if p[2].startswith(case.route + ".") or not p[2]][:2] or probes[:1]
    evidence.extend(Evidence(where, line) for where, line, _, _, _ in mine)
    subject = (f"InferenceService {case.owner[0]} ({case.owner[1] or 'predictor'})" if case.owner
               else f"Route {case.route}")
    message = f"The Knative Route {case.route} of {subject} is stuck on IngressNotConfigured"
    if ready_revision is not None:
        evidence.append(ready_revision[1])
        message += f" although its revision {ready_revision[0]} is Ready"
    message += ": the KIngress is not ready because the gateway's answer to Knative's probe is not the expected one"
    answers = sorted({(p[3], ",".join(p[4])) for p in mine})
    if answers:
        listed = ", ".join(f"{status}" + (f" {flags}" if flags and flags != "-" else "") for status, flags in answers)
        message += f" (the gateway answered the probe {listed}"
        if any(status in (302, 401, 403) or "UAEX" in flags for status, flags in answers):
            message += ": an auth filter on the gateway answers it instead of the route"
        message += ")"
    return CHECK.finding(
        namespace=case.namespace,
        object=f"InferenceService/{case.owner[0]}" if case.owner else f"Route/{case.route}",
        message=message + ".",
        evidence=evidence[:8],
    )


def _ready_revision(snap: Snapshot, case: _Case) -> tuple[str, Evidence] | None:
    """The newest Ready revision of the route's configuration, when there is one: the traffic target exists."""
    for revision in sorted(snap.objects_of("Revision", case.namespace), key=lambda r: r.name, reverse=True):
        configuration = revision.labels.get("serving.knative.dev/configuration", "")
        if (configuration == case.route or revision.name.startswith(case.route + "-")) and condition_state(
            revision, "Ready"
        ) == "True":
            shown = condition_evidence(revision, "Ready")
            return (revision.name, shown) if shown is not None else None
    return None
