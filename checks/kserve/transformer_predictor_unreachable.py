"""MT715 transformer-predictor-unreachable: a KServe transformer that cannot reach its predictor: its
`--predictor_host` names a host that is not the predictor's in-cluster Service (an external domain, another name),
or its log and its answers show the call failing (`httpx.ConnectError`, `Name or service not known`). A predictor
that answered with an error status (`HTTPStatusError`, e.g. the queue-proxy's 504 behind a short revision timeout) was
reached: that is the predictor's own failure (MT308 for a timeout), not this one. The transformer stays Ready, so only
requests show it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    arg_value,
    container_args,
    container_spec,
    describe_request,
    isvc_for_request,
    isvc_of_log,
    isvc_of_pod,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Existence, LogSource, Snapshot

CHECK = make_check(
    id="MT715",
    slug="transformer-predictor-unreachable",
    title="KServe transformer cannot reach its predictor",
    severity=Severity.CRITICAL,
    requires=("kube:InferenceService|logs:transformer|requests",),
    reads=("kube:Pod", "kube:Service", "kube:Namespace"),
    playbook="kserve-transformer",
    # A predictor that never started (its model never downloaded, MT701, or its revision is not ready, MT716) is one
    # the transformer cannot reach: those findings are the cause.
    explained_by=("MT701", "MT716"),
    fix="Leave --predictor_host to KServe (it sets `<isvc>-predictor.<namespace>`), or set it to the predictor's "
    "in-cluster Service host; never the external example.com host, which the cluster's DNS does not resolve.",
)

# The transformer's failed call to the predictor (kserve/kserve aaac4e2 python/kserve/kserve/model.py, its httpx
# client; the 500 body `{"error":"<Exception class> : <text>"}` from errors.py generic_exception_handler): httpx's
# `ConnectError: All connection attempts failed` (refused), glibc's `[Errno -2] Name or service not known` and
# `[Errno -3] Temporary failure in name resolution` (no DNS name, kserve#2273 `socket.gaierror`). Not
# `HTTPStatusError … for url '<url>'`: then the predictor answered, with an error of its own.
_CALL_FAILED = re.compile(
    r"(connecterror\b.*|name or service not known.*|temporary failure in name resolution.*|socket\.gaierror.*"
    r"|all connection attempts failed.*|connecttimeout\b.*)",
    re.IGNORECASE,
)
_NEEDLES = ("ConnectError", "name or service not known", "name resolution", "gaierror", "connection attempts",
            "ConnectTimeout", '" 200')
_OK_ACCESS = re.compile(r'"(?:POST|GET) /v[12]/models/\S+ HTTP/[\d.]+" 200\b')
_PREDICTOR_ARG = "--predictor_host"
_CONTAINERS = ("kserve-container", "transformer-container")


@dataclass
class _Case:
    namespace: str | None
    isvc: str
    evidence: list[Evidence] = field(default_factory=list)
    host_problem: str = ""
    log_error: str = ""
    failed_requests: int = 0


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    for pod in snap.objects_of("Pod"):
        owner = isvc_of_pod(pod.name, pod.labels)
        if owner is not None and owner[1] == "transformer":
            _from_args(snap, pod, owner[0], cases)
    for log in snap.logs_of(Role.TRANSFORMER):
        owner = isvc_of_log(snap, log)
        if owner is not None:
            _from_log(log, owner[0], cases)
    for record in snap.requests:
        isvc = isvc_for_request(snap, record)
        if isvc is None or "transformer" not in isvc.spec or record.status != 500:
            continue
        if _CALL_FAILED.search(record.body) is None:
            continue
        case = cases.setdefault((isvc.namespace, isvc.name), _Case(isvc.namespace, isvc.name))
        case.failed_requests += 1
        if case.failed_requests <= 2:
            case.evidence.append(Evidence(record.display, describe_request(record)))
    for case in cases.values():
        if case.host_problem or case.log_error or case.failed_requests:
            yield _finding(case)


def _case(cases: dict[tuple[str | None, str], _Case], namespace: str | None, isvc: str) -> _Case:
    return cases.setdefault((namespace, isvc), _Case(namespace, isvc))


def _from_args(snap: Snapshot, pod: KubeObject, isvc: str, cases: dict[tuple[str | None, str], _Case]) -> None:
    for name in _CONTAINERS:
        found = container_spec(pod, name)
        if found is None:
            continue
        index, container = found
        host = arg_value(container_args(container), _PREDICTOR_ARG)
        if host is None:
            return
        problem = _host_problem(snap, pod.namespace, isvc, host)
        if problem:
            case = _case(cases, pod.namespace, isvc)
            if not case.host_problem:
                case.host_problem = problem
                case.evidence.insert(0, Evidence(pod.field_where(f".spec.containers[{index}].args"),
                                                 evidence_line(f"{_PREDICTOR_ARG} {host}")))
        return


def _host_problem(snap: Snapshot, namespace: str | None, isvc: str, value: str) -> str:
    """Why `--predictor_host` does not name the predictor's in-cluster Service, or `` when it does (or may)."""
    host = value.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    labels = host.split(".")
    expected = f"{isvc}-predictor.{namespace}"
    in_cluster = len(labels) <= 2 or labels[2] == "svc"
    if not in_cluster:
        return (f"--predictor_host is {host}, a name outside the cluster's Service domain (the predictor's "
                f"in-cluster host is {expected}): the cluster's DNS does not resolve it")
    service_ns = labels[1] if len(labels) >= 2 else namespace
    if snap.existence("Service", service_ns, labels[0]) is Existence.ABSENT:
        return f"--predictor_host names Service {service_ns}/{labels[0]}, which does not exist (expected {expected})"
    return ""


def _from_log(log: LogSource, isvc: str, cases: dict[tuple[str | None, str], _Case]) -> None:
    last_error: tuple[int, str] | None = None
    errors = 0
    for lineno, line in log.lines_mentioning(_NEEDLES):
        if _OK_ACCESS.search(line):
            last_error = None  # it reached the predictor since
            continue
        found = _CALL_FAILED.search(line)
        if found is not None:
            errors += 1
            last_error = (lineno, found.group(1))
    if last_error is None:
        return
    case = _case(cases, log.namespace, isvc)
    case.log_error = last_error[1]
    case.evidence.append(Evidence(log.where(last_error[0]), evidence_line(last_error[1])))


def _finding(case: _Case) -> Finding:
    parts: list[str] = []
    if case.host_problem:
        parts.append(case.host_problem)
    if case.log_error:
        parts.append(f"its log shows the call failing (`{evidence_line(case.log_error, 120)}`)")
    if case.failed_requests:
        parts.append(f"{case.failed_requests} recorded request(s) got its 500")
    return CHECK.finding(
        namespace=case.namespace,
        object=f"InferenceService/{case.isvc}",
        message=f"The transformer of InferenceService {case.isvc} cannot reach its predictor: " + "; ".join(parts)
        + ". The transformer itself stays Ready.",
        evidence=case.evidence[:6],
    )

