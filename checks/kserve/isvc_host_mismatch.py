"""MT713 isvc-host-mismatch: prediction requests that reached the Istio gateway with a Host (or a path) no
InferenceService route matches: Envoy's own 404 (no body, `server: istio-envoy`, flag `NR`), the page of another
application behind a catch-all route, or the model server's 404 for a model name the InferenceService does not
serve. Names the Host sent and the hosts the InferenceService answers on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    Answer,
    bare_host,
    describe_request,
    gateway_access,
    is_inference_path,
    isvc_for_request,
    isvc_hosts,
    request_model,
    who_answered,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT713",
    slug="isvc-host-mismatch",
    title="Request Host or path matches no InferenceService route (404 at the gateway)",
    severity=Severity.CRITICAL,
    requires=("requests|logs:istio-ingressgateway",),
    reads=("kube:InferenceService", "kube:VirtualService"),
    playbook="kserve-ingress",
    # KServe creates the InferenceService's VirtualService only once the predictor is Ready (KSERVE-FACTS §2.2): a
    # predictor whose model never downloaded (MT701) or whose revision is not ready (MT716) leaves its own host with
    # no route, so the 404 is their effect.
    explained_by=("MT701", "MT716"),
    fix="Send the InferenceService's host as the Host header (the host of `kubectl get isvc <name> -o "
    "jsonpath='{.status.url}'`) to the gateway's address, and the model name it serves in the path "
    "(/v1/models/<name>:predict or /v2/models/<name>/infer).",
)

# Envoy's no-route answer: 404, empty body, `server: istio-envoy` (istio/istio f3c1195
# pilot/pkg/networking/util/proxy_headers.go), flag `NR` / details `route_not_found` (envoyproxy/envoy
# source/common/stream_info/utility.h, envoy/stream_info/stream_info.h; KSERVE-FACTS §5.7). The model server's 404
# names the model: `Model with name %s does not exist.` (kserve/kserve aaac4e2 python/kserve/kserve/errors.py line 61).
_NOT_FOUND_MODEL = "does not exist"
ISTIO_SERVER = "istio-envoy"
_SAMPLES = 3


@dataclass
class _Case:
    namespace: str | None
    isvc: KubeObject | None
    host: str
    kind: str  # "host" | "path" | "other-app"
    model: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    count: int = 0


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str, str, str], _Case] = {}
    for record in snap.requests:
        _from_request(snap, record, cases)
    for log, line in gateway_access(snap, ("NR", "route_not_found")):
        if line.status != 404 or "NR" not in line.response_flags or not is_inference_path(line.path or ""):
            continue
        named = _isvc_named_in(snap, None, line.path or "")
        _add(cases, named.namespace if named else log.namespace, named, bare_host(line.authority), "host",
             Evidence(log.where(line.lineno), evidence_line(line.raw)))
    for case in cases.values():
        yield _finding(snap, case)


def _isvc_named_in(snap: Snapshot, namespace: str | None, path: str) -> KubeObject | None:
    model = request_model(path)
    named = [isvc for isvc in snap.objects_of(ISVC, namespace) if isvc.name == model]
    return named[0] if len(named) == 1 else None


def _add(cases: dict[tuple[str | None, str, str, str], _Case], namespace: str | None, isvc: KubeObject | None,
         host: str, kind: str, sample: Evidence, model: str | None = None) -> None:
    key = (namespace, isvc.name if isvc else "", host, kind)
    case = cases.setdefault(key, _Case(namespace, isvc, host, kind, model))
    case.count += 1
    if len(case.evidence) < _SAMPLES:
        case.evidence.append(sample)


def _from_request(snap: Snapshot, record: RequestRecord, cases: dict[tuple[str | None, str, str, str], _Case]) -> None:
    if not is_inference_path(record.path):
        return
    answer = who_answered(record)
    sample = Evidence(record.display, describe_request(record))
    host = bare_host(record.authority)
    if answer in (Answer.ENVOY_NO_ROUTE, Answer.OTHER_APP) and record.status is not None and record.status >= 400:
        by_host = isvc_for_request(snap, record)
        isvc = by_host or _isvc_named_in(snap, record.namespace, record.path)
        if isvc is None and record.response_headers.get("server", "").lower() != ISTIO_SERVER:
            return  # neither an InferenceService's request nor Istio's answer (Seldon's Envoy: MT301/MT302)
        kind = "other-app" if answer is Answer.OTHER_APP else "host"
        _add(cases, isvc.namespace if isvc else record.namespace, isvc, host, kind, sample)
        return
    if answer is Answer.MODEL_SERVER and record.status == 404 and _NOT_FOUND_MODEL in record.body.lower():
        isvc = isvc_for_request(snap, record)
        model = request_model(record.path)
        if isvc is None or model is None or model == isvc.name:
            return  # the server lacks the model it should serve: an empty repository (MT702), not a wrong path
        _add(cases, isvc.namespace, isvc, host, "path", sample, model)


def _hosts_text(isvc: KubeObject) -> tuple[str, list[Evidence]]:
    hosts = isvc_hosts(isvc)
    return " or ".join(h for h, _ in hosts), [Evidence(where, f"host {h}") for h, where in hosts[:2]]


def _vs_hosts(snap: Snapshot, isvc: KubeObject) -> list[str]:
    service = snap.get("VirtualService", isvc.namespace, isvc.name)
    return [str(h).lower() for h in as_list(service.spec.get("hosts"))] if service is not None else []


def _finding(snap: Snapshot, case: _Case) -> Finding:
    evidence = list(case.evidence)
    isvc = case.isvc
    name = isvc.name if isvc else None
    sent = f"Host `{case.host}`" if case.host else "no Host header"
    if isvc is not None:
        hosts, shown = _hosts_text(isvc)
        evidence.extend(shown)
    else:
        hosts = ""
    if case.kind == "path":
        message = (f"{case.count} request(s) for InferenceService {name} named model `{case.model}` in the path, "
                   f"but it serves `{name}`: the model server answered 404 `Model with name {case.model} does not "
                   "exist.`")
    elif case.kind == "other-app":
        message = (f"{case.count} request(s) with {sent} were answered by another application behind the gateway "
                   "(a catch-all route), not by KServe: the Host matches no InferenceService VirtualService")
    elif isvc is not None and case.host and case.host in {h for h, _ in isvc_hosts(isvc)} | set(_vs_hosts(snap, isvc)):
        message = (f"{case.count} request(s) with {sent}, InferenceService {name}'s own host, got Envoy's 404 (no "
                   f"route): its VirtualService {name} is missing or not bound to the gateway that received them")
    else:
        message = f"{case.count} request(s) with {sent} got Istio's 404 (no route, empty body): no VirtualService "
        message += "host matches it"
    if hosts and case.kind != "path":
        message += f"; InferenceService {name} answers on {hosts}"
    return CHECK.finding(
        namespace=case.namespace,
        object=f"InferenceService/{name}" if name else "Gateway/istio-ingressgateway",
        message=message + ".",
        evidence=evidence[:7],
    )
