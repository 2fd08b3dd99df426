"""MT502 pipeline-not-ready: a Pipeline is not Ready because no dataflow engine (or, from v2.10, no pipeline gateway)
has registered with its scheduler, as its status or the scheduler log says, or because the SeldonRuntime or the
dataflow-engine Deployment runs none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis import fields
from mlops_trace.analysis.check import make_check
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import parse_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role, pod_role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT502",
    slug="pipeline-not-ready",
    title="Pipeline not ready: no dataflow engine or pipeline gateway",
    severity=Severity.CRITICAL,
    requires=("kube:Pipeline",),
    reads=("kube:Deployment", "kube:Pod", "kube:SeldonRuntime", "logs:scheduler"),
    playbook="pipelines",
    fix="Run the dataflow engine (and pipeline gateway) in the Pipeline's namespace: remove `disable: true` or "
    "`replicas: 0` for seldon-dataflow-engine in the SeldonRuntime overrides and make its pods Ready (they need Kafka).",
    explained_by=("MT501",),
)

DATAFLOW = "seldon-dataflow-engine"
PIPELINE_GATEWAY = "seldon-pipelinegateway"
# scheduler/pkg/kafka/dataflow/server.go since PR #5080 (v2.7.0): the pipeline's state reason, which the controller
# puts in the Pipeline condition's message (v2.10 prefixes the pipeline-gateway reason: `Empty reason | …`).
NO_ENGINE = "no dataflow engines available to handle pipeline"
# scheduler/pkg/server/pipeline_status.go (v2.10.0+): the pipeline-gateway counterpart.
NO_GATEWAY = "no pipeline gateway available to handle pipeline"
# ≤v2.6 the scheduler only logged it: `Can't handle event as no streams available for pipeline <p>` (warn).
_OLD_LOG = re.compile(r"can't handle event as no streams available for pipeline (\S+)", re.IGNORECASE)
_CONDITIONS = ("PipelineReady", "PipelineGwReady", "Ready")


@dataclass
class _Case:
    pipeline: KubeObject
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    logged = _scheduler_lines(snap)
    for pipeline in sorted(snap.objects_of("Pipeline"), key=lambda p: (p.namespace or "", p.name)):
        if pipeline.condition_true("Ready") is True or pipeline.condition_true("PipelineReady") is True:
            continue  # Ready, or only waiting for its models (ModelsReady False): not this check's
        if pipeline.condition_true("PipelineReady") is not False and pipeline.condition_true("Ready") is not False:
            continue  # no status yet: nothing says it is not Ready
        case = _Case(pipeline)
        missing = _conditions(pipeline, case)
        judged = bool(case.reasons)
        _static(snap, pipeline.namespace or "", case, missing, evidence_only=judged)
        lines = logged.get((pipeline.namespace, pipeline.name), []) or logged.get((None, pipeline.name), [])
        if not case.reasons and lines:
            case.reasons.append(f"the scheduler logs `{evidence_line(lines[0][1], 120)}`")
        if not case.reasons:
            continue
        case.evidence += [Evidence(where, text) for where, text in lines[:2]]
        yield CHECK.finding(
            namespace=pipeline.namespace,
            object=f"Pipeline/{pipeline.name}",
            message=f"Pipeline {pipeline.name} is not Ready: " + "; ".join(dict.fromkeys(case.reasons)) + ".",
            evidence=case.evidence[:8],
        )


def _conditions(pipeline: KubeObject, case: _Case) -> set[str]:
    """Add the conditions that name a missing component; return which components they name."""
    missing: set[str] = set()
    for index, cond in enumerate(as_list(pipeline.status.get("conditions"))):
        item = as_mapping(cond)
        if item.get("type") not in _CONDITIONS or str(item.get("status", "")).lower() == "true":
            continue
        said = f"{item.get('reason') or ''} {item.get('message') or ''}".lower()
        for needle, component in ((NO_ENGINE, "dataflow engine"), (NO_GATEWAY, "pipeline gateway")):
            if needle in said and component not in missing:
                missing.add(component)
                case.reasons.append(f"its {item.get('type')} condition says no {component} is available")
                where = pipeline.field_where(f".status.conditions[{index}]")
                text = f"{item.get('type')}=False reason={item.get('reason')!r} message={item.get('message')!r}"
                case.evidence.append(Evidence(where, evidence_line(text)))
    return missing


def _static(snap: Snapshot, namespace: str, case: _Case, missing: set[str], evidence_only: bool) -> None:
    """Add why the namespace runs no dataflow engine (SeldonRuntime override, Deployment at 0 or without ready pods),
    or no pipeline gateway when the status names that. With `evidence_only`, only evidence is added, for a Pipeline
    its status already judged."""
    wanted = {DATAFLOW}
    if "pipeline gateway" in missing:
        wanted.add(PIPELINE_GATEWAY)
    for runtime in snap.objects_of("SeldonRuntime", namespace):
        for index, override in enumerate(as_list(runtime.spec.get("overrides"))):
            item = as_mapping(override)
            name = item.get("name")
            if not isinstance(name, str) or name not in wanted:
                continue
            disabled = item.get("disable") is True
            if disabled or fields.replicas(item.get("replicas")) == 0:
                what = "disable: true" if disabled else "replicas: 0"
                where = runtime.field_where(f".spec.overrides[{index}]")
                case.evidence.append(Evidence(where, f"{name}: {what}"))
                if not evidence_only:
                    case.reasons.append(f"SeldonRuntime {runtime.name} sets {what} for {name}")
    for deployment in snap.objects_of("Deployment", namespace):
        labels = as_mapping(as_mapping(deployment.spec.get("template")).get("metadata")).get("labels")
        role = pod_role(deployment.name, {str(k): str(v) for k, v in as_mapping(labels).items()})
        name = {Role.DATAFLOW: DATAFLOW, Role.PIPELINEGATEWAY: PIPELINE_GATEWAY}.get(role)
        if name not in wanted:
            continue
        replicas = fields.replicas(deployment.spec.get("replicas"))
        ready = fields.integer(deployment.status.get("readyReplicas"), minimum=0) or 0
        if replicas == 0 or (replicas and deployment.status and ready == 0):
            said = f"replicas={replicas} readyReplicas={ready}"
            case.evidence.append(Evidence(deployment.field_where(".spec.replicas"), said))
            if not evidence_only:
                case.reasons.append(f"Deployment {deployment.name} has {said}")


def _scheduler_lines(snap: Snapshot) -> dict[tuple[str | None, str], list[tuple[str, str]]]:
    """Scheduler lines that name a pipeline no dataflow engine handles, by (namespace, pipeline)."""
    found: dict[tuple[str | None, str], list[tuple[str, str]]] = {}
    for log in snap.logs_of(Role.SCHEDULER):
        for lineno, line in log.lines_mentioning((NO_ENGINE, "no streams available for pipeline")):
            record = parse_line(lineno, line)
            text = record.message or record.raw
            old = _OLD_LOG.search(text)
            name = record.fields.get("pipeline") or (old.group(1) if old else "")
            if not name or (NO_ENGINE not in text.lower() and old is None):
                continue
            said = evidence_line(f"{text} (pipeline {name})" if name not in text else text)
            for key in ((log.namespace, name), (None, name)):
                found.setdefault(key, []).append((log.where(lineno), said))
    return found
