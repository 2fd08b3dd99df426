"""MT305 candidates-share-storage: two candidates of one Experiment load the same artefact (`spec.storageUri`), so
the A/B test compares a model with itself."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.seldon import iter_weighted_candidates
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT305",
    slug="candidates-share-storage",
    title="Two candidates of an Experiment load the same storageUri",
    severity=Severity.WARNING,
    requires=("kube:Experiment", "kube:Model"),
    reads=(),
    playbook="traffic-not-splitting",
    fix="Point each candidate Model at its own artefact (spec.storageUri), or drop the duplicate candidate.",
)


def normalise_storage_uri(uri: str) -> str:
    """The same location written two ways compares equal: scheme case and trailing slashes do not matter."""
    text = uri.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        text = scheme.lower() + sep + rest
    return text.rstrip("/") or text


def _is_model_experiment(exp: KubeObject) -> bool:
    return str(exp.spec.get("resourceType") or "model").lower() == "model"


def run(snap: Snapshot) -> Iterator[Finding]:
    judged = 0
    unjudged: list[str] = []
    findings: list[Finding] = []
    for exp in sorted(snap.objects_of("Experiment"), key=lambda e: (e.namespace or "", e.name)):
        if not _is_model_experiment(exp):
            continue
        names = list(dict.fromkeys(name for name, _ in iter_weighted_candidates(exp)))
        if len(names) < 2:
            continue
        with_storage: list[tuple[str, KubeObject, str]] = []
        for name in names:
            model = snap.get("Model", exp.namespace, name)
            uri = model.spec.get("storageUri") if model is not None else None
            if model is not None and isinstance(uri, str) and uri.strip():
                with_storage.append((name, model, uri))
        if len(with_storage) < 2:
            unjudged.append(f"{exp.namespace}/{exp.name}")
            continue
        judged += 1
        findings.extend(_shared(exp, with_storage))
    if not judged and unjudged:
        raise SkipCheck(
            "no Model with spec.storageUri for at least two candidates of Experiment(s) " + ", ".join(unjudged)
        )
    yield from findings


def _shared(exp: KubeObject, with_storage: list[tuple[str, KubeObject, str]]) -> Iterator[Finding]:
    groups: dict[str, list[tuple[str, KubeObject, str]]] = defaultdict(list)
    for item in with_storage:
        groups[normalise_storage_uri(item[2])].append(item)
    for location, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        names = [name for name, _, _ in members]
        evidence = [Evidence(model.field_where(".spec.storageUri"), f"storageUri: {uri}") for _, model, uri in members]
        evidence.insert(0, Evidence(exp.field_where(".spec.candidates"), "candidates: " + ", ".join(names)))
        yield CHECK.finding(
            namespace=exp.namespace,
            object=exp.ref,
            message=f"candidates {', '.join(names)} of Experiment {exp.name} all load {location}: the experiment "
            "compares a model with itself",
            evidence=evidence,
        )
