"""MT105 agent-not-subscribed: a server pod's agent never subscribed to its scheduler, or lost the subscription and
keeps failing to get it back, so the scheduler cannot place models on that server."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.seldon import SCHEDULER_AGENT_PORT
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import LogRecord, iter_records
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT105",
    slug="agent-not-subscribed",
    title="Server agent is not subscribed to a scheduler",
    severity=Severity.CRITICAL,
    requires=("logs:agent",),
    reads=(
        "kube:Deployment",
        "kube:Experiment",
        "kube:Model",
        "kube:Pipeline",
        "kube:Pod",
        "kube:SeldonRuntime",
        "kube:Server",
        "kube:StatefulSet",
        "logs:mlserver",
    ),
    playbook="scheduler-connectivity",
    fix="Make the address in the agent's SELDON_SCHEDULER_HOST:SELDON_SCHEDULER_PORT (default seldon-scheduler:9005) "
    "reach a running scheduler: local scheduler, ExternalName alias, and NetworkPolicies that admit the agent.",
    explained_by=("MT101", "MT103", "MT201", "MT203"),
)

EVIDENCE_LINES = 4
_MESSAGE_LIMIT = 200

_SUBSCRIBED = "subscribed to scheduler"
# Lines an agent only writes while its scheduler stream works (operations arrive on it, results go back on it).
_WORK = re.compile(
    r"\b(?:un)?load model \S+:\d+|\breceived operation|\bcalling (?:un)?load model|sent agent model event to scheduler",
    re.IGNORECASE,
)
# The second pair are the ≤v2.8 spellings (pkg/agent/client.go).
_FAILURES = (
    "scheduler not ready",
    "failed to connect to the scheduler",
    "scheduler subscription ended",
    "failed to create connection to scheduler",
    "subscribe ended",
    "failed to start client",
    # The stream itself broke (scheduler/pkg/agent/client.go ≤v2.8, agent_svc_manager.go v2.9+), gRPC status in
    # `error`. The agent logs `Subscribed to scheduler` as soon as the request is sent, before the scheduler (or a
    # proxy in front of it) has answered, so a refused stream shows as `Subscribed` then `event recv failed`.
    "event recv failed",
)
# gRPC statuses that no resubscription changes: a later `Subscribed to scheduler` does not mend them, only model
# work arriving on the stream does. PermissionDenied (`RBAC: access denied`) is a mesh authorization policy,
# Unauthenticated mTLS, Unimplemented/InvalidArgument something other than a matching scheduler on the port.
_NON_TRANSIENT = frozenset({"PermissionDenied", "Unauthenticated", "Unimplemented", "InvalidArgument"})
_GRPC_CODE = re.compile(r"\bcode = ([A-Za-z]+)")
_SELDON_WORDS = ("scheduler", "agentservicemanager", "load model", "seldon")
_SERVER_CONTAINERS = frozenset({"mlserver", "triton", "rclone"})
_DIALS = re.compile(r"connecting \(non-blocking\) to scheduler at (\S+)", re.IGNORECASE)


@dataclass
class _Scan:
    lines: int = 0
    last_subscribed: int = 0
    last_work: int = 0
    first_work: str = ""
    dial: tuple[int, str] | None = None
    failures: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (lineno, text, gRPC code)
    seldon_words: bool = False


def run(snap: Snapshot) -> Iterator[Finding]:
    seldon_namespaces = set(snap.seldon_namespaces())
    for log in snap.logs_of(Role.AGENT):
        scan = _scan(log)
        if scan.lines == 0:
            continue  # an empty file proves nothing either way
        if not (scan.seldon_words or log.namespace in seldon_namespaces or _server_pod(snap, log)):
            continue  # a container called `agent` that is not Seldon's (a monitoring agent, say)
        finding = _judge(snap, log, scan)
        if finding is not None:
            yield finding


def _scan(log: LogSource) -> _Scan:
    scan = _Scan()
    for record in iter_records(log.lines()):
        text = _text(record)
        if not text.strip():
            continue
        scan.lines += 1
        lowered = text.lower()
        scan.seldon_words = scan.seldon_words or any(word in record.raw.lower() for word in _SELDON_WORDS)
        if _SUBSCRIBED in lowered:
            scan.last_subscribed = record.lineno
        elif _WORK.search(text):
            scan.last_work = record.lineno
            scan.first_work = scan.first_work or _short(text)
        elif any(needle in lowered for needle in _FAILURES):
            scan.failures.append((record.lineno, _describe(record)))
            code = _GRPC_CODE.search(record.fields.get("error") or record.fields.get("err") or record.raw)
            if code is not None and code.group(1) in _NON_TRANSIENT:
                scan.refused.append((record.lineno, _describe(record), code.group(1)))
        dial = _DIALS.search(text)
        if dial is not None:
            scan.dial = (record.lineno, dial.group(1))
    return scan


def _judge(snap: Snapshot, log: LogSource, scan: _Scan) -> Finding | None:
    target, target_evidence = _dial_target(snap, log, scan)
    evidence: list[Evidence] = []
    refused = [r for r in scan.refused if r[0] > scan.last_work]
    if refused:
        return _refused(log, scan, refused, target, target_evidence)
    if scan.last_subscribed == 0 and scan.last_work == 0:
        ready = _agent_ready(snap, log)
        if ready is not None and ready[0] and not scan.failures:
            return None  # Kubernetes says the agent is Ready, which it only is after subscribing: a cut log
        message = (
            f"The agent of {log.pod} never logged `Subscribed to scheduler` and shows no model work"
            f"{' (dials ' + target + ')' if target else ''}: the scheduler does not know this server replica, "
            "so no model can be placed on it."
        )
        if ready is not None:
            evidence.append(ready[1])
    else:
        anchor = scan.last_subscribed or scan.last_work
        after = [f for f in scan.failures if f[0] > anchor]
        if not after:
            return None
        what = "subscription" if scan.last_subscribed else "last model work"
        message = (
            f"The agent of {log.pod} lost its scheduler after its {what} at line {anchor} and logged "
            f"{len(after)} connection failure(s) since, without subscribing again"
            f"{' (dials ' + target + ')' if target else ''}: its models get no updates and new ones cannot land here."
        )
        evidence.append(Evidence(log.where(anchor), "last subscription" if scan.last_subscribed else scan.first_work))
        scan.failures = after
    evidence += [Evidence(log.where(lineno), text) for lineno, text in scan.failures[:EVIDENCE_LINES]]
    if len(scan.failures) > EVIDENCE_LINES:
        lineno, text = scan.failures[-1]
        evidence.append(Evidence(log.where(lineno), f"(last of {len(scan.failures)}) {text}"))
    evidence += target_evidence
    return CHECK.finding(namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence)


def _refused(
    log: LogSource, scan: _Scan, refused: list[tuple[int, str, str]], target: str, target_evidence: list[Evidence]
) -> Finding:
    codes = ", ".join(sorted({code for _, _, code in refused}))
    since = f"after its last model work at line {scan.last_work}" if scan.last_work else "and no model work ever came"
    message = (
        f"The agent of {log.pod} has its scheduler stream refused with gRPC {codes}"
        f"{' (dials ' + target + ')' if target else ''}: {len(refused)} refused line(s) from line {refused[0][0]} "
        f"{since}. Its `Subscribed to scheduler` lines only mean the request was sent; no retry changes "
        "the answer, so the scheduler does not know this server replica and no model can be placed on it."
    )
    evidence = [Evidence(log.where(lineno), text) for lineno, text, _ in refused[:EVIDENCE_LINES]]
    if len(refused) > EVIDENCE_LINES:
        lineno, text, _ = refused[-1]
        evidence.append(Evidence(log.where(lineno), f"(last of {len(refused)}) {text}"))
    if scan.last_subscribed > refused[0][0]:
        last = Evidence(log.where(scan.last_subscribed), "Subscribed to scheduler (request sent, not answered)")
        evidence.append(last)
    fix = (
        "Let the agent through to the scheduler's agent port (9005, 9055 with mTLS): `RBAC: access denied` is a "
        "service-mesh authorization policy (e.g. Istio AuthorizationPolicy) on the scheduler; Unauthenticated is "
        "control-plane mTLS/credentials; Unimplemented means something other than a matching scheduler answers there."
    )
    return CHECK.finding(
        namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence + target_evidence, fix=fix
    )


def _server_pod(snap: Snapshot, log: LogSource) -> bool:
    """Whether the log's pod is a Seldon server pod: its labels, its containers or its other logs say so."""
    pod = snap.get("Pod", log.namespace, log.pod)
    if pod is not None:
        if "seldon-server-name" in pod.labels or pod.labels.get("app.kubernetes.io/name") == "seldon-server":
            return True
        names = {str(as_mapping(c).get("name")) for c in as_list(pod.spec.get("containers"))}
        if names & _SERVER_CONTAINERS:
            return True
    return any(other.container in _SERVER_CONTAINERS for other in snap.logs_by_pod(log.namespace, log.pod))


# --- where the agent dials -------------------------------------------------------------------------------------------


def _dial_target(snap: Snapshot, log: LogSource, scan: _Scan) -> tuple[str, list[Evidence]]:
    evidence: list[Evidence] = []
    target = ""
    owner = _owner(snap, log)
    if owner is not None:
        found = _agent_env(owner)
        if found is not None:
            path, env = found
            host = env.get("SELDON_SCHEDULER_HOST")
            port = env.get("SELDON_SCHEDULER_PORT", str(SCHEDULER_AGENT_PORT))
            if host:
                target = f"{host}:{port}"
                evidence.append(
                    Evidence(owner.field_where(path), f"SELDON_SCHEDULER_HOST={host} SELDON_SCHEDULER_PORT={port}")
                )
    if scan.dial is not None:
        lineno, address = scan.dial
        target = target or address
        evidence.append(Evidence(log.where(lineno), f"agent dials {address}"))
    return target, evidence


def _owner(snap: Snapshot, log: LogSource) -> KubeObject | None:
    pod = snap.get("Pod", log.namespace, log.pod)
    if pod is not None:
        return pod
    base = re.sub(r"-\d+$", "", log.pod)
    if base != log.pod:
        workload = snap.get("StatefulSet", log.namespace, base)
        if workload is not None:
            return workload
    base = re.sub(r"-[a-z0-9]{6,10}-[a-z0-9]{5}$", "", log.pod)
    return snap.get("Deployment", log.namespace, base) if base != log.pod else None


def _agent_env(obj: KubeObject) -> tuple[str, dict[str, str]] | None:
    prefix = ".spec" if obj.kind == "Pod" else ".spec.template.spec"
    spec: Mapping[str, Any] = (
        obj.spec if obj.kind == "Pod" else as_mapping(as_mapping(obj.spec.get("template")).get("spec"))
    )
    for index, item in enumerate(as_list(spec.get("containers"))):
        container = as_mapping(item)
        if container.get("name") != "agent":
            continue
        env = {
            str(as_mapping(e).get("name")): str(as_mapping(e).get("value"))
            for e in as_list(container.get("env"))
            if as_mapping(e).get("value") is not None
        }
        return f"{prefix}.containers[{index}].env", env
    return None


def _agent_ready(snap: Snapshot, log: LogSource) -> tuple[bool, Evidence] | None:
    pod = snap.get("Pod", log.namespace, log.pod)
    if pod is None:
        return None
    for index, item in enumerate(as_list(pod.status.get("containerStatuses"))):
        status = as_mapping(item)
        if status.get("name") == log.container:
            ready = status.get("ready") is True
            where = pod.field_where(f".status.containerStatuses[{index}].ready")
            return ready, Evidence(where, f"container {log.container} ready={str(ready).lower()}")
    return None


def _text(record: LogRecord) -> str:
    return record.message if record.message else record.raw


def _describe(record: LogRecord) -> str:
    text = _text(record)
    error = record.fields.get("error") or record.fields.get("err")
    if error:
        text = f"{text}: {error}"
    return _short(text)


def _short(text: str) -> str:
    return evidence_line(text, _MESSAGE_LIMIT)
