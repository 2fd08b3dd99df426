"""MT716 revision-not-ready: the newest Knative Revision of a KServe component failed (or cannot start), so the
Configuration has no ready revision (`RevisionMissing` / `RevisionFailed`) and the InferenceService is not Ready:
a pod that cannot be scheduled, an image Knative cannot resolve to a digest, a container that exits, or a
progress deadline the model download outlasted. Says which, from the Revision, its pods and the events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    components_of,
    condition_evidence,
    condition_state,
    condition_words,
    container_status,
    owner_isvc,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT716",
    slug="revision-not-ready",
    title="Knative revision of a KServe component is not ready",
    severity=Severity.CRITICAL,
    requires=("kube:Revision|kube:Configuration|kube:InferenceService",),
    reads=("kube:Pod", "kube:Event"),
    playbook="kserve-revision",
    fix="Fix what the revision's condition names: free or request less memory/CPU for an unschedulable pod, give "
    "Knative pull access to the image (or skip tag resolution for that registry), fix the crashing container, or "
    "keep minReplicas >= 1 and raise the progress deadline while a large model downloads.",
)

# Knative's words (knative/serving 98e5ef9): Route `RevisionMissing` `Configuration %q does not have any ready
# Revision.` (pkg/apis/serving/v1/route_lifecycle.go), Configuration `RevisionFailed` `Revision %q failed with
# message: %s.` (configuration_lifecycle.go), the event `Latest created revision %q has failed`
# (pkg/reconciler/configuration/configuration.go), Revision `ProgressDeadlineExceeded` `Initial scale was never
# achieved`, `ContainerMissing` `Unable to fetch image %q: %s`, `ExitCode<n>` `Container failed with: %s`
# (revision_lifecycle.go). Tag-to-digest resolution failing on registry auth says `unsupported status code 401`
# (kserve#576). The scheduler's `Insufficient memory` comes through the pod's PodScheduled condition.
_FAILED_REASONS = ("RevisionMissing", "RevisionFailed")
_MIN_SCALE = "autoscaling.knative.dev/min-scale"
_UNAUTHORIZED = re.compile(r"unsupported status code 40[13]|unauthorized|denied", re.IGNORECASE)
_REVISION_LABEL = "serving.knative.dev/revision"
_CONFIGURATION_LABEL = "serving.knative.dev/configuration"


@dataclass
class _Case:
    namespace: str | None
    revision: str
    owner: tuple[str, str] | None
    evidence: list[Evidence] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    for revision in snap.objects_of("Revision"):
        if revision.api_version.startswith("serving.knative.dev/") and _failing(revision) and _is_latest(snap, revision):
            _revision_case(snap, revision, cases)
    for config in snap.objects_of("Configuration"):
        _configuration_case(snap, config, cases)
    known = {case.owner for case in cases.values() if case.owner}
    for isvc in snap.objects_of(ISVC):
        for component in components_of(isvc):
            if (isvc.name, component) not in known:
                _isvc_case(isvc, component, cases)
    for case in cases.values():
        yield _finding(case)


def _failing(revision: KubeObject) -> bool:
    if condition_state(revision, "Ready") == "False":
        return True
    return any(condition_state(revision, t) == "False" for t in ("ResourcesAvailable", "ContainerHealthy"))


def _is_latest(snap: Snapshot, revision: KubeObject) -> bool:
    """Whether the revision is its Configuration's newest (an older failed one was superseded); true when the
    Configuration is not in the snapshot."""
    name = revision.labels.get(_CONFIGURATION_LABEL)
    config = snap.get("Configuration", revision.namespace, name) if name else None
    if config is None:
        return True
    latest = config.status.get("latestCreatedRevisionName")
    return not latest or latest == revision.name


def _case(snap: Snapshot, cases: dict[tuple[str | None, str], _Case], obj: KubeObject, revision: str) -> _Case:
    return cases.setdefault((obj.namespace, revision), _Case(obj.namespace, revision, owner_isvc(snap, obj)))


def _revision_case(snap: Snapshot, revision: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    case = _case(snap, cases, revision, revision.name)
    shown_words: set[str] = set()
    for type_ in ("Ready", "ResourcesAvailable", "ContainerHealthy"):
        shown = condition_evidence(revision, type_)
        words = condition_words(revision, type_)
        if shown is not None and condition_state(revision, type_) == "False" and words not in shown_words:
            shown_words.add(words)
            case.evidence.append(shown)
    said = " ".join(condition_words(revision, t) for t in ("Ready", "ResourcesAvailable", "ContainerHealthy"))
    refused = _UNAUTHORIZED.search(said)
    if "ContainerMissing" in said and refused is not None:
        case.hints.append(f"Knative could not resolve the image to a digest: the registry refused it (`{refused.group(0)}`)")
    elif "ProgressDeadlineExceeded" in said or "initial scale was never achieved" in said.lower():
        case.hints.append("its pod never became ready within the progress deadline")
    elif "ExitCode" in said or "container failed with" in said.lower():
        case.hints.append("its container exits")
    _pod_hints(snap, revision, case)


def _pod_hints(snap: Snapshot, revision: KubeObject, case: _Case) -> None:
    pods = [p for p in snap.objects_of("Pod", revision.namespace) if p.labels.get(_REVISION_LABEL) == revision.name]
    for pod in pods[:1]:
        for index, cond in enumerate(pod.conditions()):
            if cond.get("type") == "PodScheduled" and str(cond.get("status")) == "False":
                case.evidence.append(Evidence(pod.field_where(f".status.conditions[{index}]"),
                                              evidence_line(f"PodScheduled=False {cond.get('reason') or ''}: "
                                                            f"{cond.get('message') or ''}")))
                case.hints.append(f"pod {pod.name} cannot be scheduled (`{evidence_line(str(cond.get('message')), 90)}`)")
        init = container_status(pod, "storage-initializer", init=True)
        if init is not None and as_mapping(init[1].get("state")).get("running") is not None:
            scale = revision.annotations.get(_MIN_SCALE)
            case.evidence.append(Evidence(pod.field_where(f".status.initContainerStatuses[{init[0]}]"),
                                          "storage-initializer running (the model is still downloading)"))
            if scale == "0":
                case.evidence.append(Evidence(revision.field_where(f".metadata.annotations[{_MIN_SCALE}]"),
                                              f"{_MIN_SCALE}: 0"))
                case.hints.append("the model was still downloading and min-scale 0 lets the autoscaler remove the "
                                  "pod before it is ready")
            else:
                case.hints.append("the model was still downloading when the deadline passed")
    for event in snap.objects_of("Event", revision.namespace):
        involved = as_mapping(event.raw.get("involvedObject"))
        name = str(involved.get("name") or "")
        related = name in (revision.name, revision.labels.get(_CONFIGURATION_LABEL)) or name in {p.name for p in pods}
        if related and str(event.raw.get("type")) == "Warning" and len(case.evidence) < 6:
            case.evidence.append(Evidence(f"{event.source} {event.ref}",
                                          evidence_line(f"{event.raw.get('reason')}: {event.raw.get('message')}")))


def _configuration_case(snap: Snapshot, config: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    if not config.api_version.startswith("serving.knative.dev/") or condition_state(config, "Ready") in ("True", ""):
        return
    latest = str(config.status.get("latestCreatedRevisionName") or "")
    if not latest or latest == config.status.get("latestReadyRevisionName"):
        return
    if snap.get("Revision", config.namespace, latest) is not None and (config.namespace, latest) not in cases:
        return  # the revision is there and not failing: still deploying
    case = _case(snap, cases, config, latest)
    shown = condition_evidence(config, "Ready")
    if shown is not None and len(case.evidence) < 6:
        case.evidence.append(shown)


def _isvc_case(isvc: KubeObject, component: str, cases: dict[tuple[str | None, str], _Case]) -> None:
    """From the InferenceService alone (no Knative objects collected): `<Component>Ready` False with a revision
    reason that KServe copied from the ksvc."""
    type_ = f"{component.capitalize()}Ready"
    if condition_state(isvc, type_) != "False":
        return
    words = condition_words(isvc, type_)
    if not any(reason.lower() in words.lower() for reason in _FAILED_REASONS):
        return
    revision = re.search(r'revision "([^"]+)"', words, re.IGNORECASE)
    name = revision.group(1) if revision else f"{isvc.name}-{component}"
    case = cases.setdefault((isvc.namespace, name), _Case(isvc.namespace, name, (isvc.name, component)))
    shown = condition_evidence(isvc, type_)
    if shown is not None:
        case.evidence.append(shown)


def _finding(case: _Case) -> Finding:
    subject = f"InferenceService {case.owner[0]} ({case.owner[1]})" if case.owner else "its Knative Service"
    message = f"Revision {case.revision} of {subject} is not ready, so its Configuration has no ready revision"
    if case.hints:
        message += ": " + "; ".join(dict.fromkeys(case.hints))
    return CHECK.finding(
        namespace=case.namespace,
        object=f"InferenceService/{case.owner[0]}" if case.owner else f"Revision/{case.revision}",
        message=message + ".",
        evidence=case.evidence[:7],
    )
