"""MT719 canary-traffic-stale: an InferenceService component rolls out a canary (`canaryTrafficPercent: N` with a
previous rolled-out revision to split against) but the Knative Route's `status.traffic`, which net-istio programs
into the gateway, gives the latest revision a share other than N: the split the user asked for is not the one
served. Says whether the Route has reconciled its spec (`status.observedGeneration` against `metadata.generation`)
and whether the latest revision is Ready (Knative keeps `latestRevision: true` on the latest *ready* one)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.fields import integer, shown
from mlops_trace.analysis.kserve import (
    ISVC,
    KSVC,
    component_name,
    components_of,
    condition_evidence,
    condition_state,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT719",
    slug="canary-traffic-stale",
    title="Knative Route does not serve the InferenceService's canary split",
    severity=Severity.WARNING,
    requires=("kube:InferenceService",),
    reads=("kube:Route", "kube:Service.serving.knative.dev", "kube:Configuration", "kube:Revision"),
    playbook="kserve-canary",
    explained_by=("MT716",),
    fix="Find why the Route is behind: a latest revision that is not Ready (fix it, or the split stays on the old "
    "one), a Route whose observedGeneration lags its generation (Knative's controller or webhook is failing: read its "
    "log), or a ksvc whose spec.traffic KServe never updated (kserve-controller-manager log). Then check "
    "status.components.<component>.traffic again.",
)

# KServe (kserve/kserve aaac4e2, after v0.20.0) pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
# ksvc_reconciler.go: with `canaryTrafficPercent: N` and a `latestRolledoutRevision` the ksvc's spec.traffic is
# `{latestRevision: true, percent: N}` plus `{revisionName: <latestRolledoutRevision>, percent: 100-N, tag: prev}`; on
# a first rollout (no rolled-out revision yet) it is `{latestRevision: true, percent: 100}` whatever N says.
# pkg/apis/serving/v1beta1/inference_service_status.go PropagateStatus: `latestRolledoutRevision` moves only when
# the latest ready revision gets 100 % (the old one becomes `previousRolledoutRevision`), and
# `components.<c>.traffic` is a copy of the ksvc's status.traffic. Knative (knative/serving 98e5ef9)
# pkg/reconciler/route/traffic/traffic.go resolves `latestRevision: true` to the Configuration's
# LatestReadyRevisionName; pkg/apis/serving/v1/route_lifecycle.go counts the Route ready only when
# status.observedGeneration equals metadata.generation.
_FIELD = "canaryTrafficPercent"


@dataclass(frozen=True)
class _Split:
    """A traffic list read from one object: revision → percent, or None when a percent is unreadable."""

    shares: Mapping[str, int] | None
    text: str
    where: str


@dataclass(frozen=True)
class _Component:
    isvc: KubeObject
    component: str
    percent: int
    latest: str
    previous: str
    route: KubeObject | None


def run(snap: Snapshot) -> Iterator[Finding]:
    for isvc in snap.objects_of(ISVC):
        for component in components_of(isvc):
            found = _component(snap, isvc, component)
            if found is not None:
                finding = _judge(snap, found)
                if finding is not None:
                    yield finding


def _component(snap: Snapshot, isvc: KubeObject, component: str) -> _Component | None:
    """The component when it rolls out a canary against an older revision; None on a first rollout."""
    percent = integer(as_mapping(isvc.spec.get(component)).get(_FIELD), minimum=0, maximum=100)
    if percent is None:
        return None
    name = component_name(isvc.name, component)
    status = as_mapping(as_mapping(isvc.status.get("components")).get(component))
    config = snap.get("Configuration", isvc.namespace, name)
    ksvc = snap.get(KSVC, isvc.namespace, name)
    route = snap.get("Route", isvc.namespace, name)
    latest = _first_name(status.get("latestCreatedRevision"),
                         *(obj.status.get("latestCreatedRevisionName") for obj in (config, ksvc) if obj is not None))
    if not latest:
        return None
    rolled_out = [status.get("latestRolledoutRevision"), status.get("previousRolledoutRevision")]
    for obj in (route, ksvc):
        if obj is not None:
            rolled_out += [as_mapping(item).get("revisionName") for item in as_list(obj.spec.get("traffic"))]
    previous = next((str(n) for n in rolled_out if isinstance(n, str) and n and n != latest), "")
    if not previous:
        return None
    return _Component(isvc, component, percent, latest, previous, route)


def _first_name(*values: Any) -> str:
    return next((str(v) for v in values if isinstance(v, str) and v), "")


def _split(obj: KubeObject, path: str, items: Any) -> _Split | None:
    entries = [as_mapping(item) for item in as_list(items)]
    if not entries:
        return None
    shares: dict[str, int] | None = {}
    words = []
    for entry in entries:
        revision = entry.get("revisionName")
        percent = integer(entry.get("percent"), minimum=0, maximum=100)
        label = str(revision) if revision else "latest ready revision"
        extra = f" tag={evidence_line(str(entry.get('tag')), 40)}" if entry.get("tag") else ""
        if entry.get("latestRevision") is True:
            extra += " latestRevision"
        words.append(f"{label} {shown(entry.get('percent')) if percent is None else percent}%{extra}")
        if shares is not None and revision and percent is not None:
            shares[str(revision)] = shares.get(str(revision), 0) + percent
        elif entry.get("percent") is not None:
            shares = None  # a share we cannot place: unknown, not zero
    return _Split(shares, evidence_line(", ".join(words)), obj.field_where(path))


def _judge(snap: Snapshot, comp: _Component) -> Finding | None:
    isvc, c = comp.isvc, comp.component
    served = _split(comp.route, ".status.traffic", comp.route.status.get("traffic")) if comp.route else None
    isvc_split = _split(isvc, f".status.components.{c}.traffic",
                        as_mapping(as_mapping(isvc.status.get("components")).get(c)).get("traffic"))
    judged = served if served is not None else isvc_split
    if judged is None or judged.shares is None:
        return None
    share = judged.shares.get(comp.latest, 0)
    if share == comp.percent:
        return None
    evidence = [Evidence(isvc.field_where(f".spec.{c}.{_FIELD}"), f"{_FIELD}: {comp.percent}")]
    status = as_mapping(as_mapping(isvc.status.get("components")).get(c))
    revisions = [f"{key}: {status.get(key)}" for key in ("latestCreatedRevision", "latestReadyRevision",
                                                            "latestRolledoutRevision", "previousRolledoutRevision")
                 if status.get(key)]
    if revisions:
        evidence.append(Evidence(isvc.field_where(f".status.components.{c}"), evidence_line(", ".join(revisions))))
    source = "the InferenceService's status (a copy of the ksvc's)"
    reasons: list[str] = []
    if comp.route is not None:
        source = f"Route {comp.route.name}'s status.traffic (what net-istio programs)"
        spec = _split(comp.route, ".spec.traffic", comp.route.spec.get("traffic"))
        if spec is not None:
            evidence.append(Evidence(spec.where, spec.text))
        evidence.append(Evidence(judged.where, judged.text))
        reasons.append(_generation_words(comp.route, evidence))
    if isvc_split is not None:
        evidence.append(Evidence(isvc_split.where, isvc_split.text))
    not_ready = _not_ready(snap, comp, evidence)
    if not_ready:
        reasons.insert(0, not_ready)
    message = (f"InferenceService {isvc.name} ({c}) asks {_FIELD} {comp.percent} for revision {comp.latest} (the rest "
               f"on {comp.previous}), but {source} gives it {share}%")
    reasons = [r for r in reasons if r]
    return CHECK.finding(
        namespace=isvc.namespace,
        object=f"InferenceService/{isvc.name}",
        message=message + (": " + "; ".join(reasons) if reasons else "") + ".",
        evidence=evidence[:8],
    )


def _generation_words(route: KubeObject, evidence: list[Evidence]) -> str:
    generation = integer(route.metadata.get("generation"), minimum=0)
    observed = integer(route.status.get("observedGeneration"), minimum=0)
    if generation is None or observed is None:
        return ""
    evidence.append(Evidence(route.field_where(".status.observedGeneration"),
                             f"generation {generation}, observedGeneration {observed}"))
    if observed < generation:
        return (f"the Route has not reconciled its spec (status.observedGeneration {observed} < metadata.generation "
                f"{generation}), so the gateway still has the old split")
    return f"the Route reconciled generation {generation} and still serves this split"


def _not_ready(snap: Snapshot, comp: _Component, evidence: list[Evidence]) -> str:
    """Why the latest revision gets nothing when it is not Ready (Knative keeps traffic on the latest ready one)."""
    revision = snap.get("Revision", comp.isvc.namespace, comp.latest)
    if revision is not None and condition_state(revision, "Ready") in ("False", "Unknown"):
        shown_condition = condition_evidence(revision, "Ready")
        if shown_condition is not None:
            evidence.append(shown_condition)
        return (f"revision {comp.latest} is not Ready, so Knative keeps `latestRevision: true` on the latest ready "
                "revision")
    status = as_mapping(as_mapping(comp.isvc.status.get("components")).get(comp.component))
    ready = status.get("latestReadyRevision")
    if revision is None and isinstance(ready, str) and ready and ready != comp.latest:
        return (f"revision {comp.latest} is not the latest ready one ({ready}), so Knative keeps "
                "`latestRevision: true` there")
    return ""
