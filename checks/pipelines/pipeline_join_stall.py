"""MT503 pipeline-join-stall: a Pipeline joins the output of a triggered step with an `outer` or `any` join
(seldon-core issue #4850) and recorded requests to it timed out: a request whose trigger was not sent never gets
that step's output, and the join never answers it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.pipelines import answer_of, pipeline_of_request, request_timed_out, waited
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT503",
    slug="pipeline-join-stall",
    title="Pipeline requests stall on an outer/any join of triggered steps",
    severity=Severity.WARNING,
    requires=("kube:Pipeline", "requests"),
    playbook="pipelines",
    fix="Send every trigger a request needs, or restructure the Pipeline so triggered steps are not joined with "
    "`outer`/`any` (e.g. give each triggered branch its own Pipeline, or join with `inner` and always send the triggers).",
)

# Seldon's join types (operator/apis/mlops/v1alpha1/pipeline_types.go: inner, outer, any); #4850 reports `outer`
# hanging with triggers. No release note or commit of seldon-core up to v2.10.2 says it was fixed, and the dataflow
# engine's trigger and join code (TriggerTransforms.kt, Joiner.kt) joins the same way in v2.6.0 and v2.10.2.
_STALLING_JOINS = frozenset({"outer", "any"})
EVIDENCE_REQUESTS = 4


@dataclass(frozen=True)
class _Join:
    where: str  # the spec field of the join
    kind: str  # outer | any
    triggered: tuple[str, ...]  # triggered steps it joins
    into: str  # "the output" or "step <name>"


def run(snap: Snapshot) -> Iterator[Finding]:
    timed_out = [r for r in snap.requests if request_timed_out(r) and pipeline_of_request(r) is not None]
    if not timed_out:
        return
    for pipeline in sorted(snap.objects_of("Pipeline"), key=lambda p: (p.namespace or "", p.name)):
        joins = _stalling_joins(pipeline)
        if not joins:
            continue
        mine = [r for r in timed_out if pipeline_of_request(r) == pipeline.name and _same_namespace(r, pipeline)]
        if not mine:
            continue
        yield _finding(pipeline, joins, mine)


def _same_namespace(record: RequestRecord, pipeline: KubeObject) -> bool:
    return record.namespace is None or record.namespace == pipeline.namespace


def _stalling_joins(pipeline: KubeObject) -> list[_Join]:
    steps = [as_mapping(s) for s in as_list(pipeline.spec.get("steps"))]
    triggered = {str(s.get("name")) for s in steps if as_list(s.get("triggers")) and s.get("name")}
    if not triggered:
        return []
    joins: list[_Join] = []
    output = as_mapping(pipeline.spec.get("output"))
    kind = _join_kind(output.get("stepsJoin"))
    if kind in _STALLING_JOINS:
        joined = _triggered_sources(output.get("steps"), triggered)
        if joined:
            joins.append(_Join(pipeline.field_where(".spec.output.stepsJoin"), kind, joined, "the output"))
    for index, step in enumerate(steps):
        kind = _join_kind(step.get("inputsJoinType"))
        if kind not in _STALLING_JOINS:
            continue
        joined = _triggered_sources(step.get("inputs"), triggered)
        if joined:
            where = pipeline.field_where(f".spec.steps[{index}].inputsJoinType")
            joins.append(_Join(where, kind, joined, f"step {step.get('name')}"))
    return joins


def _join_kind(value: Any) -> str:
    return str(value).strip().lower() if isinstance(value, str) else ""


def _triggered_sources(inputs: Any, triggered: set[str]) -> tuple[str, ...]:
    """Triggered steps among a join's inputs: `<step>`, `<step>.outputs` or `<step>.outputs.<tensor>`."""
    found = [str(item).split(".", 1)[0] for item in as_list(inputs) if str(item).split(".", 1)[0] in triggered]
    return tuple(dict.fromkeys(found))


def _finding(pipeline: KubeObject, joins: list[_Join], requests: list[RequestRecord]) -> Finding:
    first = joins[0]
    triggers = _triggers_of(pipeline, first.triggered)
    message = (
        f"Pipeline {pipeline.name} joins triggered step(s) {', '.join(first.triggered)} into {first.into} with "
        f"`{first.kind}`, and {len(requests)} recorded request(s) to it timed out: a request that does not carry "
        f"every trigger ({', '.join(triggers) or 'see the steps'}) never gets those steps' output and the join "
        "does not answer it (seldon-core #4850)."
    )
    evidence = [Evidence(join.where, f"{join.kind} join of triggered {', '.join(join.triggered)}") for join in joins]
    for name in first.triggered:
        for index, step in enumerate(as_list(pipeline.spec.get("steps"))):
            item: Mapping[str, Any] = as_mapping(step)
            if item.get("name") == name:
                listed = ", ".join(str(t) for t in as_list(item.get("triggers")))
                evidence.append(Evidence(pipeline.field_where(f".spec.steps[{index}].triggers"), listed))
    for record in requests[:EVIDENCE_REQUESTS]:
        said = f"{record.method} {record.path} → {answer_of(record)}{waited(record)}"
        evidence.append(Evidence(record.display, said))
    return CHECK.finding(
        namespace=pipeline.namespace, object=f"Pipeline/{pipeline.name}", message=message, evidence=evidence
    )


def _triggers_of(pipeline: KubeObject, steps: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for step in as_list(pipeline.spec.get("steps")):
        item = as_mapping(step)
        if item.get("name") in steps:
            found += [str(t) for t in as_list(item.get("triggers"))]
    return list(dict.fromkeys(found))
