"""MT304 experiment-invalid: an Experiment the scheduler refuses or cannot route (bad default, missing or unready
candidates, zero or invalid weights, duplicates, a baseline shared by two Experiments, nothing to route to)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.fields import WEIGHT_RULE
from mlops_trace.analysis.seldon import Candidate, experiment_candidates, is_ready
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT304",
    slug="experiment-invalid",
    title="Experiment is invalid or points at models that cannot serve",
    severity=Severity.CRITICAL,
    requires=("kube:Experiment",),
    reads=("kube:Model", "kube:Pipeline"),
    playbook="traffic-not-splitting",
    fix="Make `default` one of the candidates, give the candidates non-zero weights, list each once, and point the "
    "Experiment only at Ready Models (Pipelines for resourceType: pipeline) not used as baseline elsewhere.",
)


def run(snap: Snapshot) -> Iterator[Finding]:
    by_namespace: dict[str | None, list[KubeObject]] = defaultdict(list)
    for exp in snap.objects_of("Experiment"):
        by_namespace[exp.namespace].append(exp)
    findings: list[Finding] = []
    uncovered: set[str] = set()
    for namespace in sorted(by_namespace, key=lambda ns: ns or ""):
        experiments = sorted(by_namespace[namespace], key=lambda e: e.name)
        for exp in experiments:
            findings.extend(_spec_problems(exp))
            if _targets(exp) and not snap.covers(_target_kind(exp), namespace):
                uncovered.add(f"{_target_kind(exp)} objects of namespace {namespace}")
            findings.extend(_target_problems(snap, exp))
        findings.extend(_shared_baselines(experiments))
    if not findings and uncovered:
        # The specs are valid, but whether the candidates exist and are Ready is unknown: say so instead of passing.
        raise SkipCheck(
            "Experiment specs are valid, but the input holds no "
            + ", ".join(sorted(uncovered))
            + " to tell whether candidates and mirrors exist and are Ready"
        )
    yield from findings


def _target_kind(exp: KubeObject) -> str:
    """Candidates and mirror name Models, or Pipelines when `resourceType: pipeline`."""
    return "Pipeline" if str(exp.spec.get("resourceType") or "model").lower() == "pipeline" else "Model"


def _default(exp: KubeObject) -> str | None:
    value = exp.spec.get("default")
    return value if isinstance(value, str) and value else None


def _mirror(exp: KubeObject) -> str | None:
    value = as_mapping(exp.spec.get("mirror")).get("name")
    return value if isinstance(value, str) and value else None


def _candidates_text(candidates: list[Candidate]) -> str:
    if not candidates:
        return "candidates: none"
    return "candidates: " + ", ".join(f"{cand.name} (weight {cand.weight_text()})" for cand in candidates)


def _finding(exp: KubeObject, message: str, evidence: list[Evidence], fix: str | None = None) -> Finding:
    return CHECK.finding(namespace=exp.namespace, object=exp.ref, message=message, evidence=evidence, fix=fix)


def _spec_problems(exp: KubeObject) -> Iterator[Finding]:
    candidates = experiment_candidates(exp)
    names = [cand.name for cand in candidates]
    default = _default(exp)
    mirror = _mirror(exp)
    listed = Evidence(exp.field_where(".spec.candidates"), _candidates_text(candidates))

    if not candidates and mirror is None:
        yield _finding(
            exp,
            f"Experiment {exp.name} has no candidates and no mirror: the scheduler rejects it, nothing is routed",
            [listed],
        )
        return
    if default is not None and default not in names:
        yield _finding(
            exp,
            f"default {default} of Experiment {exp.name} is not among its candidates ({', '.join(names) or 'none'}); "
            "the scheduler rejects the Experiment",
            [Evidence(exp.field_where(".spec.default"), f"default: {default}"), listed],
        )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        yield _finding(
            exp,
            f"Experiment {exp.name} lists candidate(s) {', '.join(duplicates)} more than once; the scheduler rejects "
            "duplicate candidates",
            [listed],
        )
    invalid = [cand for cand in candidates if cand.weight is None]
    if invalid:
        named = ", ".join(f"{cand.name} ({cand.weight_text()})" for cand in invalid)
        yield _finding(
            exp,
            f"Experiment {exp.name} gives candidate(s) {named} a weight that is not {WEIGHT_RULE} (Seldon's "
            "weights are unsigned 32-bit integers): the Experiment is invalid and no traffic split can be built "
            "from it",
            [Evidence(exp.field_where(cand.field), f"{cand.name} weight: {cand.weight_text()}") for cand in invalid]
            + [listed],
            fix=f"Give every candidate of Experiment {exp.name} a weight that is {WEIGHT_RULE} (the shares are "
            "the weights over their sum), and check the template or tool that wrote the Experiment.",
        )
    elif candidates and all(cand.weight == 0 for cand in candidates):
        yield _finding(
            exp,
            f"every candidate of Experiment {exp.name} has weight 0: no traffic split can be built",
            [listed],
        )


def _targets(exp: KubeObject) -> dict[str, list[str]]:
    """Name → its roles in the Experiment (`candidate`, `mirror`)."""
    roles: dict[str, list[str]] = defaultdict(list)
    for cand in experiment_candidates(exp):
        if "candidate" not in roles[cand.name]:
            roles[cand.name].append("candidate")
    mirror = _mirror(exp)
    if mirror is not None:
        roles[mirror].append("mirror")
    return roles


def _target_problems(snap: Snapshot, exp: KubeObject) -> Iterator[Finding]:
    kind = _target_kind(exp)
    namespace = exp.namespace
    roles = _targets(exp)
    for name in sorted(roles):
        role = " and ".join(roles[name])
        where = ".spec.mirror.name" if roles[name] == ["mirror"] else ".spec.candidates"
        target = snap.get(kind, namespace, name)
        if target is None:
            if not snap.covers(kind, namespace):
                continue  # a bundle without this namespace's Models cannot tell missing from not collected
            present = len(snap.objects_of(kind, namespace))
            yield _finding(
                exp,
                f"{role} {kind} {name} does not exist in namespace {namespace}: "
                f"Experiment {exp.name} cannot route to it",
                [
                    Evidence(exp.field_where(where), f"{role}: {name}"),
                    Evidence(f"kube/ (namespace {namespace})", f"no {kind} named {name} ({present} {kind} object(s))"),
                ],
            )
            continue
        if is_ready(target) is False:
            cond = as_mapping(target.condition("Ready"))
            detail = str(cond.get("message") or cond.get("reason") or "Ready=False")
            yield _finding(
                exp,
                f"{role} {kind} {name} of Experiment {exp.name} is not Ready ({detail}): the scheduler cannot "
                "build the Experiment's routes until it is",
                [
                    Evidence(exp.field_where(where), f"{role}: {name}"),
                    Evidence(target.field_where(".status.conditions[Ready]"), evidence_line(f"Ready=False: {detail}")),
                ],
            )


def _created(exp: KubeObject) -> str:
    return str(exp.metadata.get("creationTimestamp") or "")


def _shared_baselines(experiments: list[KubeObject]) -> Iterator[Finding]:
    """A baseline (default) may belong to one Experiment only; the oldest keeps it, the others are refused."""
    by_default: dict[tuple[str, str], list[KubeObject]] = defaultdict(list)
    for exp in experiments:
        default = _default(exp)
        if default is not None:
            by_default[(_target_kind(exp), default)].append(exp)
    for (kind, default), owners in sorted(by_default.items()):
        if len(owners) < 2:
            continue
        owners.sort(key=lambda e: (_created(e) == "", _created(e), e.name))
        first = owners[0]
        for exp in owners[1:]:
            yield _finding(
                exp,
                f"{kind} {default} is the default of Experiment {exp.name} and also of Experiment {first.name}; a "
                "baseline may belong to one Experiment only, so the scheduler refuses one of them",
                [
                    Evidence(exp.field_where(".spec.default"), f"default: {default}"),
                    Evidence(first.field_where(".spec.default"), f"default: {default}"),
                ],
            )
