"""MT601 mlserver-worker-died: an MLServer inference worker died and the server did not get back to serving: no new
worker became ready, requests to its models hung, or the MLServer version never replaces dead workers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.mlserver import (
    RESPAWN_VERSION,
    WORKER_STOP_ANSWER,
    PoolScan,
    exit_meaning,
    parallel_workers,
    scan_pool,
    server_image_version,
)
from mlops_trace.analysis.pipelines import answer_of, model_of_request, request_timed_out, waited
from mlops_trace.analysis.routing import unversioned
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT601",
    slug="mlserver-worker-died",
    title="MLServer inference worker died",
    severity=Severity.CRITICAL,
    requires=("logs:mlserver|requests",),
    reads=("kube:Model", "kube:Pod"),
    playbook="mlserver-workers",
    fix="Give the mlserver container the memory its workers need (a worker killed by signal 9 is usually the OOM "
    "killer), upgrade MLServer to >= 1.4.0 so dead workers are replaced, and restart the server pod to recover now.",
)

EVIDENCE_REQUESTS = 8
_SERVER_INDEX = re.compile(r"-\d+$")


@dataclass
class _Server:
    log: LogSource
    scan: PoolScan
    hung: list[RequestRecord] = field(default_factory=list)
    stopped: list[RequestRecord] = field(default_factory=list)  # answered 500 `Worker process stopped …`


def run(snap: Snapshot) -> Iterator[Finding]:
    servers = [_Server(log, scan_pool(log)) for log in snap.logs_of(Role.MLSERVER)]
    unplaced: list[RequestRecord] = []
    for record in snap.requests:
        stopped = WORKER_STOP_ANSWER in record.body.lower() or WORKER_STOP_ANSWER in (record.grpc_message or "").lower()
        hung = request_timed_out(record)
        if not (stopped or hung):
            continue
        server = _server_of(snap, record, servers)
        if server is None:
            if stopped:
                unplaced.append(record)
            continue
        (server.stopped if stopped else server.hung).append(record)
    for server in sorted(servers, key=lambda s: (s.log.namespace, s.log.pod, s.log.container)):
        finding = _judge(snap, server)
        if finding is not None:
            yield finding
    for record in unplaced:
        yield _answer_finding(record)


def _judge(snap: Snapshot, server: _Server) -> Finding | None:
    log, scan = server.log, server.scan
    pod = snap.get("Pod", log.namespace, log.pod)
    unreplaced = scan.unreplaced()
    evidence: list[Evidence] = []
    if unreplaced:
        death = unreplaced[0]
        message = (
            f"An inference worker of MLServer in {log.pod} died ({exit_meaning(death.exit_code)}) at line "
            f"{death.lineno} and no new worker of {death.pool} became ready after it: the pool is broken, so "
            "inference on its models fails or waits while the server's health endpoints still answer."
        )
        evidence += [Evidence(log.where(d.lineno), d.text) for d in unreplaced[:3]]
    elif scan.deaths and (server.hung or server.stopped):
        death = scan.deaths[-1]
        message = (
            f"An inference worker of MLServer in {log.pod} died ({exit_meaning(death.exit_code)}) at line "
            f"{death.lineno}; a new worker became ready at line {scan.ready.get(death.pool, 0)}, yet recorded "
            f"requests to its models {'hung' if server.hung else 'failed with the worker-stop answer'}."
        )
        evidence.append(Evidence(log.where(death.lineno), death.text))
        evidence.append(Evidence(log.where(scan.ready.get(death.pool, 0)), "new worker ready"))
    elif server.hung and not scan.deaths:
        old = _old_server(pod, log)
        if old is None:
            return None
        version, image = old
        message = (
            f"Requests to the models of MLServer {'.'.join(map(str, version))} in {log.pod} hung. This MLServer "
            "version neither logs nor replaces an inference worker that died (fixed in 1.4.0, MLServer PR #1234): "
            "after an OOM kill its health endpoints stay OK while requests wait forever."
        )
        evidence.append(Evidence(pod.field_where(".spec.containers") if pod else log.display, f"image {image}"))
    elif scan.deaths:
        # MLServer >= 1.4 replaces the worker (measured on 1.7.1: ~2.5 s), but what it was running failed with
        # `Worker process stopped unexpectedly`, requests during the reload failed too, and a kill by signal 9 (the
        # OOM killer) comes back under the same load.
        death = scan.deaths[-1]
        ready = scan.ready.get(death.pool, 0)
        message = (
            f"An inference worker of MLServer in {log.pod} died ({exit_meaning(death.exit_code)}) at line "
            f"{death.lineno}. MLServer replaced it (new worker ready at line {ready}), but the requests it was "
            "running failed with `Worker process stopped unexpectedly`, and so did requests while the new worker "
            "loaded the models; the health endpoints answered throughout."
        )
        evidence.append(Evidence(log.where(death.lineno), death.text))
        evidence.append(Evidence(log.where(ready), "new worker ready"))
    else:
        return None  # no worker died
    evidence += _container_evidence(pod, log)
    previous = log.previous_run
    if previous is not None:
        earlier = scan_pool(previous).deaths
        if earlier:
            evidence.append(Evidence(previous.where(earlier[-1].lineno), f"previous run: {earlier[-1].text}"))
    for record in (server.hung + server.stopped)[:EVIDENCE_REQUESTS]:
        evidence.append(Evidence(record.display, _said(record)))
    return CHECK.finding(namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence)


def _answer_finding(record: RequestRecord) -> Finding:
    model = model_of_request(record) or record.path
    grpc_message = record.grpc_message or ""
    answer = grpc_message if WORKER_STOP_ANSWER in grpc_message.lower() else record.body
    message = (
        f"The request to {model} was answered `{evidence_line(answer, 100)}`: the MLServer inference worker that "
        "held it died. The bundle has no MLServer log of that server to tell whether a new worker took over."
    )
    return CHECK.finding(
        namespace=record.namespace,
        object=f"Model/{unversioned(model)}" if model_of_request(record) else "Request/" + record.display,
        message=message,
        evidence=[Evidence(record.display, _said(record))],
    )


def _said(record: RequestRecord) -> str:
    body = f": {evidence_line(record.body, 80)}" if record.body and record.status else ""
    return evidence_line(f"{record.method} {record.path} → {answer_of(record)}{waited(record)}{body}")


def _old_server(pod: KubeObject | None, log: LogSource) -> tuple[tuple[int, ...], str] | None:
    """(version, image) when the container runs an MLServer that never replaces dead workers, with its pool on."""
    found = server_image_version(pod, log.container)
    if found is None or found[0] >= RESPAWN_VERSION:
        return None
    if parallel_workers(pod, log.container) == 0:
        return None  # inference runs in the main process: there are no workers to lose
    return found


def _container_evidence(pod: KubeObject | None, log: LogSource) -> list[Evidence]:
    if pod is None:
        return []
    for index, item in enumerate(as_list(pod.status.get("containerStatuses"))):
        status = as_mapping(item)
        if status.get("name") != log.container:
            continue
        parts = [f"restartCount={status.get('restartCount', 0)}"]
        last = as_mapping(as_mapping(status.get("lastState")).get("terminated"))
        if last:
            parts.append(f"last terminated: {last.get('reason', '?')} exit code {last.get('exitCode', '?')}")
        return [Evidence(pod.field_where(f".status.containerStatuses[{index}]"), ", ".join(parts))]
    return []


# --- which server a request reached ----------------------------------------------------------------------------------


def _server_of(snap: Snapshot, record: RequestRecord, servers: list[_Server]) -> _Server | None:
    named = model_of_request(record)
    model = unversioned(named) if named else None
    candidates = [s for s in servers if record.namespace is None or s.log.namespace == record.namespace]
    if model is not None:
        wanted = _model_server(snap, record, model)
        if wanted is not None:
            on_server = [s for s in candidates if _server_name(snap, s.log) == wanted]
            if len(on_server) == 1:
                return on_server[0]
            on_server = [s for s in on_server if model in s.scan.models] or on_server
            broken = [s for s in on_server if s.scan.deaths]
            chosen = broken or on_server
            return chosen[0] if chosen else None
        loading = [s for s in candidates if model in s.scan.models]
        if loading:
            return ([s for s in loading if s.scan.deaths] or loading)[0]
    return candidates[0] if len(candidates) == 1 else None


def _model_server(snap: Snapshot, record: RequestRecord, model: str) -> str | None:
    objects = [m for m in snap.objects_of("Model", record.namespace) if m.name == model]
    for obj in objects:
        server = obj.spec.get("server")
        if isinstance(server, str) and server:
            return server
    return None


def _server_name(snap: Snapshot, log: LogSource) -> str:
    pod = snap.get("Pod", log.namespace, log.pod)
    if pod is not None and pod.labels.get("seldon-server-name"):
        return pod.labels["seldon-server-name"]
    return _SERVER_INDEX.sub("", log.pod)
