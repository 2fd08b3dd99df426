"""MT404 autoscaler-ineffective: a HorizontalPodAutoscaler on a Seldon Server (its StatefulSet, the Server itself, or
a Model) that cannot do its job: the HPA controller says it cannot scale the target (AbleToScale False) or cannot
compute a replica count (ScalingActive False, e.g. FailedGetResourceMetric), it already runs maxReplicas while it
wants more (ScalingLimited TooManyReplicas), or its CPU target is one the server pods never reach: MLServer runs
inference in `MLSERVER_PARALLEL_WORKERS` Python processes, about one core each, so a large CPU request makes a
utilization target unreachable and the HPA never scales up."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.fields import integer
from mlops_trace.analysis.objectives import DEFAULT_CORES_PER_MLSERVER_WORKER
from mlops_trace.analysis.seldon import runs_seldon_agent
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping, container_env, pod_template_spec
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT404",
    slug="autoscaler-ineffective",
    title="An autoscaler of a Seldon Server cannot scale it",
    severity=Severity.WARNING,
    requires=("kube:HorizontalPodAutoscaler",),
    reads=("kube:StatefulSet", "kube:Deployment", "kube:Server", "kube:Model"),
    playbook="autoscaling",
    fix="Make the HPA able to measure and reach its target: install metrics-server (or the adapter of its custom "
    "metric), give every container a CPU request, set a utilization target the MLServer workers can reach (or raise "
    "MLSERVER_PARALLEL_WORKERS), and raise maxReplicas when it is pinned at the maximum under load.",
)

WORKERS_ENV = "MLSERVER_PARALLEL_WORKERS"  # MLServer's server-wide parallel_workers (default 1)
DEFAULT_WORKERS = 1
_CPU = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)(m?)")  # a longer number is no CPU quantity
_SELDON_GROUP = "mlops.seldon.io"


@dataclass(frozen=True)
class _Target:
    ref: str  # as the HPA names it: `StatefulSet/mlserver`
    workload: KubeObject | None  # the pods' template, when known


def _cores(value: Any) -> float | None:
    """A CPU quantity (`500m`, `1`, `1.5`) in cores; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    match = _CPU.fullmatch(str(value).strip())
    if match is None:
        return None
    number = float(match.group(1))
    return number / 1000.0 if match.group(2) else number


def _target(snap: Snapshot, hpa: KubeObject) -> _Target | None:
    """The Seldon target of the HPA, or None when it scales something else."""
    ref = as_mapping(hpa.spec.get("scaleTargetRef"))
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    api = str(ref.get("apiVersion") or "")
    namespace = hpa.namespace
    if kind in ("StatefulSet", "Deployment"):
        workload = snap.get(kind, namespace, name)
        if workload is not None and runs_seldon_agent(workload):
            return _Target(f"{kind}/{name}", workload)
        return None
    if kind in ("Server", "Model") and (not api or api.startswith(_SELDON_GROUP)):
        # Seldon names a Server's StatefulSet after the Server.
        workload = snap.get("StatefulSet", namespace, name) if kind == "Server" else None
        return _Target(f"{kind}/{name}", workload)
    return None


def run(snap: Snapshot, *, cores_per_worker: float = DEFAULT_CORES_PER_MLSERVER_WORKER) -> Iterator[Finding]:
    judged = 0
    for hpa in sorted(snap.objects_of("HorizontalPodAutoscaler"), key=lambda o: (o.namespace or "", o.name)):
        target = _target(snap, hpa)
        if target is None:
            continue
        judged += 1
        yield from _judge(hpa, target, cores_per_worker)
    if not judged:
        raise SkipCheck("no HorizontalPodAutoscaler targets a Seldon Server, its StatefulSet or a Model")


def _condition(hpa: KubeObject, kind: str) -> Mapping[str, Any] | None:
    return hpa.condition(kind)


def _condition_text(condition: Mapping[str, Any]) -> str:
    return evidence_line(
        f"{condition.get('type')}={condition.get('status')} reason {condition.get('reason') or '-'}: "
        f"{condition.get('message') or ''}"
    )


def _judge(hpa: KubeObject, target: _Target, cores_per_worker: float) -> Iterator[Finding]:
    head = f"HPA {hpa.name} of {target.ref}"
    blocked = False
    for kind, words in (
        ("AbleToScale", "cannot change the replica count of its target"),
        ("ScalingActive", "cannot compute a replica count (its metrics are unavailable or invalid)"),
    ):
        condition = _condition(hpa, kind)
        if condition is None or str(condition.get("status")) != "False":
            continue
        blocked = True
        reason = condition.get("reason") or "no reason"
        yield CHECK.finding(
            namespace=hpa.namespace,
            object=hpa.ref,
            message=f"{head} {words}: {kind} is False ({reason}), so it never scales the server",
            evidence=[Evidence(hpa.field_where(f".status.conditions[{kind}]"), _condition_text(condition))],
        )
    limited = _condition(hpa, "ScalingLimited")
    current = integer(hpa.status.get("currentReplicas"), minimum=0)
    maximum = integer(hpa.spec.get("maxReplicas"), minimum=1)
    if (
        limited is not None
        and str(limited.get("status")) == "True"
        and str(limited.get("reason")) == "TooManyReplicas"
        and current is not None
        and maximum is not None
        and current >= maximum
    ):
        yield CHECK.finding(
            namespace=hpa.namespace,
            object=hpa.ref,
            message=f"{head} runs {current} replicas, its maxReplicas, and wants more (ScalingLimited "
            "TooManyReplicas): under this load it cannot add capacity",
            evidence=[
                Evidence(hpa.field_where(".status.conditions[ScalingLimited]"), _condition_text(limited)),
                Evidence(hpa.field_where(".spec.maxReplicas"), f"maxReplicas={maximum}, currentReplicas={current}"),
            ],
        )
    if not blocked and target.workload is not None:
        finding = _unreachable_cpu(hpa, target, target.workload, cores_per_worker)
        if finding is not None:
            yield finding


# --- CPU target ----------------------------------------------------------------------------------------------------


def _cpu_target(hpa: KubeObject) -> tuple[int, str | None, str] | None:
    """(target utilization %, the container it is of or None for the pod, the field) of a CPU Utilization metric."""
    legacy = integer(hpa.spec.get("targetCPUUtilizationPercentage"), minimum=1)
    if legacy is not None:
        return legacy, None, ".spec.targetCPUUtilizationPercentage"
    for index, metric in enumerate(as_list(hpa.spec.get("metrics"))):
        metric = as_mapping(metric)
        kind = str(metric.get("type") or "")
        source = as_mapping(metric.get("resource" if kind == "Resource" else "containerResource"))
        if kind not in ("Resource", "ContainerResource") or str(source.get("name")) != "cpu":
            continue
        target = as_mapping(source.get("target"))
        value = integer(target.get("averageUtilization"), minimum=1)
        if str(target.get("type") or "Utilization") == "Utilization" and value is not None:
            container = str(source.get("container") or "") or None if kind == "ContainerResource" else None
            return value, container, f".spec.metrics[{index}]"
    return None


def _containers(workload: KubeObject) -> list[Mapping[str, Any]]:
    return [as_mapping(c) for c in as_list(pod_template_spec(workload).get("containers"))]


def _workers(container: Mapping[str, Any]) -> tuple[int, str]:
    value = container_env(container).get(WORKERS_ENV)
    if value is None:
        return DEFAULT_WORKERS, f"{WORKERS_ENV} not set (MLServer's default {DEFAULT_WORKERS})"
    workers = integer(value, minimum=0)
    if workers is None:
        return DEFAULT_WORKERS, f"{WORKERS_ENV}={evidence_line(value)} (not a count; read as {DEFAULT_WORKERS})"
    # 0 turns the worker pool off: inference runs in the main process, one process still.
    return max(workers, 1), f"{WORKERS_ENV}={workers}"


def _unreachable_cpu(hpa: KubeObject, target: _Target, workload: KubeObject, per_worker: float) -> Finding | None:
    found = _cpu_target(hpa)
    if found is None:
        return None
    utilization, only_container, metric_field = found
    containers = _containers(workload)
    mlserver = next((c for c in containers if str(c.get("name")) == "mlserver"), None)
    if mlserver is None:
        return None
    requests: dict[str, float | None] = {}
    limits: dict[str, float | None] = {}
    for container in containers:
        resources = as_mapping(container.get("resources"))
        requests[str(container.get("name"))] = _cores(as_mapping(resources.get("requests")).get("cpu"))
        limits[str(container.get("name"))] = _cores(as_mapping(resources.get("limits")).get("cpu"))
    workers, workers_text = _workers(mlserver)
    busy = workers * per_worker
    if limits["mlserver"] is not None:
        busy = min(busy, limits["mlserver"] or 0.0)
    if only_container not in (None, "mlserver"):
        return None
    measured = ["mlserver"] if only_container else list(requests)
    if any(requests[name] is None for name in measured):
        return None  # utilization needs every request; the HPA says so itself (ScalingActive False)
    requested = sum(requests[name] or 0.0 for name in measured)
    others = sum(requests[name] or 0.0 for name in measured if name != "mlserver")
    if requested <= 0:
        return None
    reachable = 100.0 * (busy + others) / requested
    if reachable >= utilization:
        return None
    env_path = ".spec.template.spec.containers[mlserver]"
    limit_text = f", limit {limits['mlserver']:g}" if limits["mlserver"] is not None else ", no limit"
    return CHECK.finding(
        namespace=hpa.namespace,
        object=hpa.ref,
        message=f"HPA {hpa.name} of {target.ref} targets {utilization}% CPU, but at full load its pods reach about "
        f"{reachable:.0f}%: MLServer runs inference in {workers} worker process(es), about {per_worker:g} core each, "
        f"against {requested:g} requested core(s), so the target is never crossed and it never scales up",
        evidence=[
            Evidence(hpa.field_where(metric_field), f"cpu averageUtilization {utilization}%"),
            Evidence(
                workload.field_where(f"{env_path}.resources"),
                f"mlserver cpu request {requests['mlserver']:g}{limit_text}; pod requests {requested:g} in all",
            ),
            Evidence(workload.field_where(f"{env_path}.env"), workers_text),
        ],
    )
