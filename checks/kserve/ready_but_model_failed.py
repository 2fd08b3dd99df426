"""MT717 ready-but-model-failed: an InferenceService reported Ready while its model is not served: the model
server logged that the model failed to load and kept running (its readiness probe does not check the model), its
predictor container crash-loops, or KServe's own modelStatus says FailedToLoad."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    condition_evidence,
    condition_state,
    container_status,
    failed_requests_for,
    isvc_of_log,
    kserve_pods,
    request_evidence,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT717",
    slug="ready-but-model-failed",
    title="InferenceService is Ready but its model failed to load",
    severity=Severity.CRITICAL,
    requires=("kube:InferenceService",),
    reads=("kube:Pod", "logs:kserve-container", "requests"),
    playbook="kserve-revision",
    fix="Fix the load error the model server logs, and make readiness mean the model is loaded: probe "
    "/v2/models/<name>/ready (or /v1/models/<name>) instead of the server-wide /v2/health/ready.",
)

KSERVE_CONTAINER = "kserve-container"
# Load failures after which the server keeps running: KServe's model servers up to v0.7 (`fail to load model %s
# from dir %s. exception type %s, exception msg: %s`, kserve/kserve python/xgbserver, lgbserver before commit
# dd4eeb771, kserve#1791) and MLServer, which unloads the model and stays ready (`Couldn't load model '%s'. Model
# will be removed from registry.`, SeldonIO/MLServer 1.7.1 mlserver/registry.py; MLServer#2056).
_LOAD_FAILED = re.compile(
    r"(fail to load model \S+ from dir \S+\. exception.*|couldn't load model '[^']+'\. model will be removed.*)",
    re.IGNORECASE,
)
_LOADED = re.compile(r"loaded model '([^']+)' successfully", re.IGNORECASE)
_MISSING_MODULE = re.compile(r"no module named '", re.IGNORECASE)  # MT110's cause, named there
_NEEDLES = ("fail to load model", "couldn't load model", "successfully", "No module named")


@dataclass
class _Case:
    isvc: KubeObject
    evidence: list[Evidence] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    ready = {(i.namespace, i.name): i for i in snap.objects_of(ISVC) if condition_state(i, "Ready") == "True"}
    for isvc in ready.values():
        _from_status(isvc, cases)
    for pod, name, component in kserve_pods(snap):
        of_pod = ready.get((pod.namespace, name))
        if of_pod is not None and component == "predictor":
            _from_pod(of_pod, pod, cases)
    for log in snap.logs_of(Role.KSERVE_CONTAINER):
        owner = isvc_of_log(snap, log)
        of_log = ready.get((log.namespace, owner[0])) if owner else None
        if of_log is not None:
            _from_log(of_log, log, cases)
    for case in cases.values():
        yield _finding(snap, case)


def _case(cases: dict[tuple[str | None, str], _Case], isvc: KubeObject) -> _Case:
    case = cases.get((isvc.namespace, isvc.name))
    if case is None:
        case = cases[(isvc.namespace, isvc.name)] = _Case(isvc)
        shown = condition_evidence(isvc, "Ready")
        if shown is not None:
            case.evidence.append(shown)
    return case


def _from_status(isvc: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    """KServe's modelStatus (kserve/kserve aaac4e2 pkg/apis/serving/v1beta1/inference_service_status.go:
    `FailedToLoad`, `BlockedByFailedLoad`, lastFailureInfo `ModelLoadFailed`)."""
    status = as_mapping(isvc.status.get("modelStatus"))
    active = str(as_mapping(status.get("states")).get("activeModelState") or "")
    transition = str(status.get("transitionStatus") or "")
    if active != "FailedToLoad" and transition != "BlockedByFailedLoad":
        return
    failure = as_mapping(status.get("lastFailureInfo"))
    text = f"activeModelState {active or '-'}, transitionStatus {transition or '-'}"
    if failure.get("reason") or failure.get("message"):
        text += f", lastFailureInfo {failure.get('reason') or ''}: {failure.get('message') or ''}"
    case = _case(cases, isvc)
    case.evidence.append(Evidence(isvc.field_where(".status.modelStatus"), evidence_line(text)))
    case.reasons.append(f"KServe's modelStatus says {active or transition}")


def _from_pod(isvc: KubeObject, pod: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    found = container_status(pod, KSERVE_CONTAINER)
    if found is None:
        return
    index, status = found
    waiting = as_mapping(as_mapping(status.get("state")).get("waiting"))
    last = as_mapping(as_mapping(status.get("lastState")).get("terminated"))
    crashing = waiting.get("reason") == "CrashLoopBackOff"
    failed_before = bool(last) and str(last.get("exitCode")) not in ("0", "None") and status.get("ready") is not True
    if not (crashing or failed_before):
        return
    text = (f"{KSERVE_CONTAINER} {'waiting CrashLoopBackOff' if crashing else 'not ready'}, restarts "
            f"{status.get('restartCount')}, last exit {last.get('exitCode', '-')} ({last.get('reason') or '-'})")
    case = _case(cases, isvc)
    case.evidence.append(Evidence(pod.field_where(f".status.containerStatuses[{index}]"), evidence_line(text)))
    case.reasons.append(f"its predictor container in pod {pod.name} keeps failing")


def _from_log(isvc: KubeObject, log: LogSource, cases: dict[tuple[str | None, str], _Case]) -> None:
    failed: tuple[int, str] | None = None
    for lineno, line in log.lines_mentioning(_NEEDLES):
        if _MISSING_MODULE.search(line):
            return  # a missing Python module: MT110 names it
        if (found := _LOAD_FAILED.search(line)) is not None:
            failed = (lineno, found.group(1))
        elif (loaded := _LOADED.search(line)) is not None and failed is not None and loaded.group(1) in failed[1]:
            failed = None
    if failed is None:
        return
    case = _case(cases, isvc)
    case.evidence.append(Evidence(log.where(failed[0]), evidence_line(failed[1])))
    case.reasons.append(f"the model server logged `{evidence_line(failed[1], 110)}` and kept running")


def _finding(snap: Snapshot, case: _Case) -> Finding:
    isvc = case.isvc
    requests = failed_requests_for(snap, isvc.namespace, isvc.name)
    message = f"InferenceService {isvc.name} is Ready but its model is not served: " + "; ".join(case.reasons)
    if requests:
        message += f"; {len(requests)} recorded request(s) for it failed"
    return CHECK.finding(
        namespace=isvc.namespace,
        object=f"InferenceService/{isvc.name}",
        message=message + ".",
        evidence=[*case.evidence[:5], *request_evidence(requests)],
    )
