"""MT701 storage-initializer-failed: a KServe pod whose `storage-initializer` init container could not download the
model (it exited non-zero or loops in Init:CrashLoopBackOff), so the predictor never starts; names the error its log
gives and, for an s3:// URI, whether the S3 endpoint and credentials reached the init container's env."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    container_spec,
    container_status,
    env_names,
    failed_requests_for,
    isvc_of_log,
    isvc_of_pod,
    request_evidence,
    storage_uri,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs.kserve import StorageEventKind, storage_event
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT701",
    slug="storage-initializer-failed",
    title="KServe's storage-initializer cannot download the model",
    severity=Severity.CRITICAL,
    requires=("kube:Pod|logs:storage-initializer",),
    reads=("kube:InferenceService", "requests"),
    playbook="kserve-storage",
    fix="Give the storage-initializer what its storageUri needs: for s3:// a Secret with the S3 keys and the "
    "serving.kserve.io/s3-endpoint annotation attached to the predictor's serviceAccountName (or an IRSA role), for "
    "other schemes their credentials; fix a misspelt or empty path. Then delete the failed pod.",
)

INIT_CONTAINER = "storage-initializer"
# The entrypoint's failure lines since v0.17 (kserve/kserve aaac4e2 python/storage-initializer/scripts/
# initializer-entrypoint: `Storage initialization failed: %s`, `Unexpected error during storage initialization: %s`),
# the per-protocol line before them (python/storage/kserve_storage/storage_errors.py `%s error for %s: %s`) and the
# copy's success (`Successfully copied %s to %s`), as `parsers.logs.kserve.storage_event` reads them; up to v0.16 the
# last line of a raw traceback: `IndexError: string index out of range` (kserve#213, #849: no S3 endpoint),
# `minio.error.InvalidEndpointError: … Hostname cannot be empty` (kserve#999), `NoCredentialsError: Unable to locate
# credentials`, `RuntimeError: Failed to fetch model. No model found in %s.`
_FAILURE_KINDS = frozenset({StorageEventKind.FAILED, StorageEventKind.NO_MODEL})
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception)(?::\s.*)?)$")
_NEEDLES = ("initialization", " error for ", "No model found", "Error", "Exception", "Successfully copied")
_ENDPOINT_ENV = ("S3_ENDPOINT", "AWS_ENDPOINT_URL")
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_ENDPOINT_WORDS = re.compile(r"endpoint|hostname|string index out of range|could not connect", re.IGNORECASE)
_CREDENTIAL_WORDS = re.compile(r"credential|auth|access ?denied|invalidaccesskeyid|signature", re.IGNORECASE)
_EVIDENCE_LIMIT = 9


@dataclass
class _Case:
    namespace: str | None
    isvc: str | None
    pod: str
    evidence: list[Evidence] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # the error texts, log and status
    pod_object: KubeObject | None = None


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    for pod in snap.objects_of("Pod"):
        _from_pod(pod, cases)
    for log in snap.logs_of(Role.STORAGE_INITIALIZER):
        _from_log(snap, log, cases)
    seen: set[tuple[str | None, str]] = set()
    for case in cases.values():
        if not case.said:
            continue
        key = (case.namespace, case.isvc or f"Pod/{case.pod}")
        if key in seen:  # one finding per InferenceService, however many of its pods failed
            continue
        seen.add(key)
        yield _finding(snap, case)


def _case(cases: dict[tuple[str | None, str], _Case], namespace: str | None, pod: str,
          owner: tuple[str, str] | None) -> _Case:
    return cases.setdefault((namespace, pod), _Case(namespace, owner[0] if owner else None, pod))


def _from_pod(pod: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    found = container_status(pod, INIT_CONTAINER, init=True)
    if found is None:
        return
    index, status = found
    failed = _failed_state(status)
    if failed is None:
        return
    case = _case(cases, pod.namespace, pod.name, isvc_of_pod(pod.name, pod.labels))
    case.pod_object = pod
    case.evidence.append(Evidence(pod.field_where(f".status.initContainerStatuses[{index}]"), failed))
    message = _terminated_message(status)
    if message:
        case.said.append(message)
    else:
        case.said.append(failed)
    for position, cond in enumerate(pod.conditions()):
        if cond.get("type") == "Initialized" and str(cond.get("status")) == "False" and cond.get("message"):
            case.evidence.append(Evidence(pod.field_where(f".status.conditions[{position}]"),
                                          evidence_line(f"Initialized=False: {cond.get('message')}")))


def _failed_state(status: Mapping[str, Any]) -> str | None:
    """The init container's failure in words, or None while it runs, waits to start, or succeeded."""
    state = as_mapping(status.get("state"))
    last = as_mapping(as_mapping(status.get("lastState")).get("terminated"))
    restarts = status.get("restartCount")
    terminated = as_mapping(state.get("terminated"))
    if terminated and str(terminated.get("exitCode")) not in ("0", "None"):
        return evidence_line(f"{INIT_CONTAINER} terminated {terminated.get('reason') or ''} exit code "
                             f"{terminated.get('exitCode')}, restarts {restarts}")
    waiting = as_mapping(state.get("waiting"))
    if waiting.get("reason") == "CrashLoopBackOff" or (last and str(last.get("exitCode")) not in ("0", "None")):
        if not last or str(last.get("exitCode")) in ("0", "None"):
            return evidence_line(f"{INIT_CONTAINER} waiting CrashLoopBackOff, restarts {restarts}")
        now = f"waiting {waiting.get('reason')}" if waiting else "running again"
        return evidence_line(f"{INIT_CONTAINER} {now}, last run exit code {last.get('exitCode')} "
                             f"({last.get('reason') or 'Error'}), restarts {restarts}")
    return None


def _terminated_message(status: Mapping[str, Any]) -> str:
    for key in ("state", "lastState"):
        message = as_mapping(as_mapping(status.get(key)).get("terminated")).get("message")
        if isinstance(message, str) and message.strip():
            return message.strip()
    return ""


def _from_log(snap: Snapshot, log: LogSource, cases: dict[tuple[str | None, str], _Case]) -> None:
    """The current run's last failure, unless it then copied the model; else the previous run's, when the current
    run has not finished either (it is downloading again)."""
    failure, succeeded = _last_failure(log)
    if succeeded:
        return
    if failure is None and log.previous_run is not None:
        failure, _ = _last_failure(log.previous_run)
    if failure is None:
        return
    case = _case(cases, log.namespace, log.pod, isvc_of_log(snap, log))
    case.evidence.insert(0, Evidence(failure[0], failure[1]))
    case.said.insert(0, failure[1])


def _last_failure(log: LogSource) -> tuple[tuple[str, str] | None, bool]:
    """(where, text) of the run's last failure (the entrypoint's verdict, else an error line, else a traceback's
    exception), and whether the copy succeeded after it."""
    verdict: tuple[str, str] | None = None
    error: tuple[str, str] | None = None
    succeeded = False
    for lineno, line in log.lines_mentioning(_NEEDLES):
        event = storage_event(lineno, line)
        if event is not None and event.kind is StorageEventKind.COPIED:
            succeeded, verdict, error = True, None, None
        elif event is not None and event.kind in _FAILURE_KINDS:
            verdict, succeeded = (log.where(lineno), evidence_line(event.message)), False
        elif event is not None and event.kind is StorageEventKind.ERROR:
            error, succeeded = (log.where(lineno), evidence_line(event.message)), False
        elif (raised := _EXCEPTION.match(line)) is not None:
            error, succeeded = (log.where(lineno), evidence_line(raised.group(1))), False
    return verdict or error, succeeded


def _finding(snap: Snapshot, case: _Case) -> Finding:
    isvc = snap.get(ISVC, case.namespace, case.isvc) if case.isvc else None
    evidence = list(case.evidence)
    uri = storage_uri(isvc) if isvc is not None else None
    if uri is not None:
        evidence.append(Evidence(uri[1], f"storageUri: {uri[0]}"))
    said = " ".join(case.said)
    hint = _s3_hint(case.pod_object, uri[0] if uri else "", said, evidence)
    cause = case.said[0]
    where = f"InferenceService {case.isvc}" if case.isvc else f"pod {case.pod}"
    message = f"The storage-initializer of {where} cannot download the model (`{evidence_line(cause, 160)}`)"
    if hint:
        message += f"; {hint}"
    message += ", so the predictor container never starts and the InferenceService is not Ready"
    requests = failed_requests_for(snap, case.namespace, case.isvc) if case.isvc else []
    if requests:
        message += f"; {len(requests)} recorded request(s) for it failed"
    evidence.extend(request_evidence(requests))
    return CHECK.finding(
        namespace=case.namespace,
        object=f"InferenceService/{case.isvc}" if case.isvc else f"Pod/{case.pod}",
        message=message + ".",
        evidence=evidence[:_EVIDENCE_LIMIT],
    )


def _s3_hint(pod: KubeObject | None, uri: str, said: str, evidence: list[Evidence]) -> str:
    """For an s3:// URI: the env KServe injects from the ServiceAccount's S3 Secret (`S3_ENDPOINT`/`AWS_ENDPOINT_URL`
    from its `serving.kserve.io/s3-endpoint` annotation, the keys from the Secret: kserve/kserve aaac4e2
    pkg/credentials/s3/s3_secret.go), when the init container lacks it and the error points there."""
    if pod is None or not (uri.lower().startswith("s3://") or " error for s3://" in said.lower()):
        return ""
    spec = container_spec(pod, INIT_CONTAINER, init=True)
    if spec is None:
        return ""
    index, container = spec
    names = env_names(container)
    missing: list[str] = []
    if not names & set(_ENDPOINT_ENV) and _ENDPOINT_WORDS.search(said):
        missing.append("an S3 endpoint (S3_ENDPOINT / AWS_ENDPOINT_URL)")
    if not names & set(_CREDENTIAL_ENV) and _CREDENTIAL_WORDS.search(said):
        missing.append("S3 credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    if not missing:
        return ""
    evidence.append(Evidence(pod.field_where(f".spec.initContainers[{index}].env"),
                             evidence_line(f"env: [{', '.join(sorted(names)) or 'none'}]")))
    why = "no S3 Secret is attached to the predictor's serviceAccountName"
    if not names & set(_ENDPOINT_ENV) and _ENDPOINT_WORDS.search(said):
        why += ", or its Secret lacks the serving.kserve.io/s3-endpoint annotation"
    return f"its env has no {' and no '.join(missing)}: {why}"
