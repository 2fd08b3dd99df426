"""MT208 rollout-readiness-gap: requests failed because Envoy received traffic before it was ready, or MLServer after
its shutdown had begun (a readiness probe or drain hook that does not gate the pod)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.timeline import as_utc, line_time
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import nginx_access
from mlops_trace.snapshot.kube import KubeObject, as_mapping, pod_containers, pod_template_labels, pod_template_spec
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT208",
    slug="rollout-readiness-gap",
    title="Requests failed while Envoy was starting or MLServer was shutting down",
    severity=Severity.WARNING,
    requires=("envoy:access|logs:mlserver",),
    reads=("kube:Deployment", "kube:Pod", "kube:StatefulSet", "logs:ingress"),
    playbook="rollout-readiness",
    fix=(
        "Gate traffic on readiness: give the envoy container `readinessProbe: httpGet /ready port 9003` (as Seldon's "
        "own manifests do), and keep the mlserver container's preStop drain hook (`httpGet terminate` on the agent's "
        "port 9007) so the agent drains before MLServer stops."
    ),
)

SAMPLES = 3
ENVOY_WORKERS_STARTED = "all dependencies initialized. starting workers"  # Envoy ListenerManagerImpl::startWorkers
MLSERVER_POOL_SHUTDOWN = "waiting for shutdown of default inference pool"  # MLServer 1.7 parallel/registry.py


@dataclass(frozen=True)
class _EnvoyStart:
    log: LogSource
    lineno: int
    line: str
    started: datetime  # the first timestamped line of this run of the container
    ready: datetime  # the `starting workers` line


def run(snap: Snapshot) -> Iterator[Finding]:
    judged: list[str] = []
    unjudged: list[str] = []
    yield from _envoy_findings(snap, judged, unjudged)
    yield from _mlserver_findings(snap, judged)
    if not judged:
        reason = "; ".join(unjudged) if unjudged else "no Envoy start and no MLServer log to judge"
        raise SkipCheck(reason)


# --- Envoy: traffic before `starting workers` --------------------------------------------------------------------


def _envoy_findings(snap: Snapshot, judged: list[str], unjudged: list[str]) -> Iterator[Finding]:
    starts = [start for log in snap.logs_of(Role.ENVOY) if (start := _envoy_start(log)) is not None]
    if not starts:
        if snap.logs_of(Role.ENVOY):
            unjudged.append("the Envoy container logs hold no start (`starting workers`) with a time")
        return
    ingress_logs = snap.logs_of(Role.INGRESS)
    if not ingress_logs:
        unjudged.append("Envoy (re)started, but no ingress-nginx access log shows what reached it meanwhile")
        return
    for start in starts:
        pod = snap.get("Pod", start.log.namespace, start.log.pod)
        address = _pod_ip(pod)
        if pod is None or address is None:
            unjudged.append(f"no Pod object with an IP for {start.log.namespace}/{start.log.pod}")
            continue
        judged.append(start.log.display)
        hits = list(_early_attempts(ingress_logs, address, start))
        if hits:
            yield _envoy_finding(snap, pod, start, address, hits)


def _envoy_start(log: LogSource) -> _EnvoyStart | None:
    """The last `starting workers` line of the log, with the time of the log's first timestamped line."""
    first: datetime | None = None
    found: _EnvoyStart | None = None
    for lineno, line in log.lines():
        when = line_time(lineno, line)
        if when is None:
            continue
        first = first or when
        if ENVOY_WORKERS_STARTED in line.lower():
            found = _EnvoyStart(log, lineno, line, first, when)
            first = when  # a later start of the same log (hot restart) counts from here
    return found


def _pod_ip(pod: KubeObject | None) -> str | None:
    if pod is None:
        return None
    address = pod.status.get("podIP")
    return str(address) if isinstance(address, str) and address else None


def _early_attempts(logs: list[LogSource], address: str, start: _EnvoyStart) -> Iterator[Evidence]:
    """Ingress access lines that tried the Envoy pod inside [its start, `starting workers`) and got no answer or
    a 5xx from it."""
    for log in logs:
        for record in nginx_access.iter_records(log.lines_mentioning([address])):
            when = as_utc(record.time)
            if when is None or not start.started <= when < start.ready:
                continue
            for index, upstream in enumerate(record.upstream_addrs):
                if _address_host(upstream) != address:
                    continue
                status = record.upstream_statuses[index] if index < len(record.upstream_statuses) else None
                if status is None or status >= 500:
                    yield Evidence(log.where(record.lineno), evidence_line(record.raw))
                    break


def _address_host(upstream: str) -> str:
    if upstream.startswith("["):
        return upstream[1:].split("]", 1)[0]
    return upstream.rsplit(":", 1)[0] if upstream.count(":") == 1 else upstream


def _envoy_finding(snap: Snapshot, pod: KubeObject, start: _EnvoyStart, address: str, hits: list[Evidence]) -> Finding:
    gap = (start.ready - start.started).total_seconds()
    probe_where, probe_what, gated = _envoy_probe(snap, pod)
    evidence = [
        Evidence(start.log.where(start.lineno), evidence_line(start.line)),
        *hits[:SAMPLES],
        Evidence(probe_where, probe_what),
    ]
    cause = (
        "its envoy container has no readiness or startup probe, so Kubernetes counted it Ready as soon as the "
        "container ran"
        if not gated
        else "its probe did not keep it out of the Service's endpoints until then"
    )
    more = f" (showing {SAMPLES})" if len(hits) > SAMPLES else ""
    message = (
        f"Envoy pod {pod.name} ({address}) started workers {gap:.1f} s after its log began, and ingress-nginx sent "
        f"{len(hits)} request(s){more} to it before that, which failed: {cause}. Before `starting workers` Envoy "
        "accepts no connection on any listener, so a pod in the endpoints gives 502/503 at the ingress and "
        "UNAVAILABLE to gRPC clients."
    )
    return CHECK.finding(namespace=pod.namespace, object=pod.ref, message=message, evidence=evidence)


def _envoy_probe(snap: Snapshot, pod: KubeObject) -> tuple[str, str, bool]:
    """Where the envoy container's probes are defined and what they are; whether one gates on readiness."""
    holders: list[tuple[KubeObject, str, Mapping[str, Any]]] = [(pod, ".spec.containers", pod.spec)]
    for deployment in snap.objects_of("Deployment", pod.namespace):
        if pod_role(deployment.name, pod_template_labels(deployment)) is Role.ENVOY:
            holders.append((deployment, ".spec.template.spec.containers", pod_template_spec(deployment)))
    for holder, field, spec in holders:
        for container in pod_containers(spec):
            if container.get("name") != "envoy":
                continue
            probes = {key: container.get(key) for key in ("readinessProbe", "startupProbe") if container.get(key)}
            if not probes:
                return holder.field_where(field), "container envoy: no readinessProbe, no startupProbe", False
            shown = ", ".join(f"{key} {_describe_probe(value)}" for key, value in probes.items())
            return holder.field_where(field), f"container envoy: {shown}", True
    return pod.field_where(".spec.containers"), "no container named envoy", False


def _describe_probe(probe: Any) -> str:
    spec = as_mapping(probe)
    http = as_mapping(spec.get("httpGet"))
    if http:
        return f"httpGet {http.get('path', '/')} port {http.get('port')}"
    tcp = as_mapping(spec.get("tcpSocket"))
    if tcp:
        return f"tcpSocket port {tcp.get('port')}"
    return "exec" if spec.get("exec") else "of unknown kind"


# --- MLServer: 500s after the inference pool began to shut down --------------------------------------------------


def _mlserver_findings(snap: Snapshot, judged: list[str]) -> Iterator[Finding]:
    for current in snap.logs_of(Role.MLSERVER):
        runs = [current] + ([current.previous_run] if current.previous_run is not None else [])
        for log in runs:
            judged.append(log.display)
            found = _after_shutdown(log)
            if found is not None:
                yield _mlserver_finding(snap, log, *found)


def _after_shutdown(log: LogSource) -> tuple[int, str, list[Evidence], int] | None:
    """The pool-shutdown line and the infer answers 500 after it (and how many 500s came before it)."""
    shutdown: tuple[int, str] | None = None
    after: list[Evidence] = []
    before = 0
    for lineno, line in log.lines():
        lowered = line.lower()
        if shutdown is None and MLSERVER_POOL_SHUTDOWN in lowered:
            shutdown = (lineno, line)
            continue
        if not _infer_500(lowered):
            continue
        if shutdown is None:
            before += 1
        else:
            after.append(Evidence(log.where(lineno), evidence_line(line)))
    if shutdown is None or not after:
        return None
    return shutdown[0], shutdown[1], after, before


def _infer_500(lowered: str) -> bool:
    """A uvicorn access line of an inference call answered 500 (`"POST /v2/models/m_1/infer HTTP/1.1" 500`)."""
    head, quote, rest = lowered.partition('" 500')
    return bool(quote) and "/infer" in head and "/v2/" in head and "http/" in head and not rest[:1].isdigit()


def _mlserver_finding(
    snap: Snapshot, log: LogSource, lineno: int, line: str, after: list[Evidence], before: int
) -> Finding:
    holder_where, hook = _mlserver_prestop(snap, log)
    more = f" (showing {SAMPLES})" if len(after) > SAMPLES else ""
    earlier = f"; {before} infer call(s) had failed with 500 before it too" if before else ""
    run = "the previous run of " if log.previous else ""
    message = (
        f"MLServer in {run}pod {log.pod} began shutting down its inference pool and then answered {len(after)} "
        f"inference call(s){more} with 500{earlier}: traffic still reached it after shutdown had started. MLServer "
        "closes its worker pool before its REST and gRPC servers, so every call in between fails; the pod must "
        "be drained first (Seldon's agent drains on the mlserver container's preStop hook)."
    )
    evidence = [Evidence(log.where(lineno), evidence_line(line)), *after[:SAMPLES]]
    if holder_where is not None:
        evidence.append(Evidence(holder_where, hook))
    return CHECK.finding(namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence)


def _mlserver_prestop(snap: Snapshot, log: LogSource) -> tuple[str | None, str]:
    """The mlserver container's preStop hook, from the Pod (or the StatefulSet/Deployment it belongs to)."""
    pod = snap.get("Pod", log.namespace, log.pod)
    holders: list[tuple[KubeObject, str, Mapping[str, Any]]] = []
    if pod is not None:
        holders.append((pod, ".spec.containers", pod.spec))
    for kind in ("StatefulSet", "Deployment"):
        for workload in snap.objects_of(kind, log.namespace):
            if log.pod.startswith(workload.name + "-"):
                holders.append((workload, ".spec.template.spec.containers", pod_template_spec(workload)))
    for holder, field, spec in holders:
        for container in pod_containers(spec):
            if container.get("name") != log.container:
                continue
            pre_stop = as_mapping(as_mapping(container.get("lifecycle")).get("preStop"))
            http = as_mapping(pre_stop.get("httpGet"))
            if not pre_stop:
                return holder.field_where(field), f"container {log.container}: no preStop hook (no drain first)"
            if http:
                return (
                    holder.field_where(field),
                    f"container {log.container}: preStop httpGet {http.get('path')} port {http.get('port')}",
                )
            return holder.field_where(field), f"container {log.container}: preStop {', '.join(pre_stop)}"
    return None, ""
