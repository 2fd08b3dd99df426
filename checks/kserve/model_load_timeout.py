"""MT718 model-load-timeout: an InferenceService (ModelMesh) whose model load exceeded the serving runtime's
loading timeout (`Load of model <id> timed out after <n>sec`), so it never becomes Ready; names the timeout of the
ServingRuntime when it is collected."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.fields import integer
from mlops_trace.analysis.kserve import ISVC
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT718",
    slug="model-load-timeout",
    title="Model load timed out in the serving runtime",
    severity=Severity.CRITICAL,
    requires=("kube:InferenceService",),
    reads=("kube:ServingRuntime", "kube:ClusterServingRuntime"),
    playbook="kserve-revision",
    fix="Raise the ServingRuntime's builtInAdapter.modelLoadingTimeoutMillis above the model's load time (or make "
    "the model load faster: smaller artifact, closer storage), then let the InferenceService reload.",
)

# ModelMesh's message (kserve/modelmesh ea13cdc src/main/java/com/ibm/watson/modelmesh/ModelMesh.java:
# `"Load of model " + modelId + " timed out after " + (loadTimeoutMs / 1000L) + "sec"`), which modelmesh-serving
# copies into the InferenceService's status (kserve/modelmesh-serving#219). The timeout is the ServingRuntime's
# `spec.builtInAdapter.modelLoadingTimeoutMillis` (kserve/kserve aaac4e2 pkg/apis/serving/v1alpha1/
# servingruntime_types.go).
_TIMED_OUT = re.compile(r"load of model (\S+) timed out after (\d+)\s*sec", re.IGNORECASE)


def run(snap: Snapshot) -> Iterator[Finding]:
    for isvc in snap.objects_of(ISVC):
        found = _timeout_text(isvc)
        if found is None:
            continue
        where, text, seconds = found
        evidence = [Evidence(where, evidence_line(text))]
        message = f"InferenceService {isvc.name}'s model load timed out after {seconds} s in the serving runtime"
        runtime = _runtime(snap, isvc)
        if runtime is not None:
            millis = _timeout_millis(runtime)
            evidence.append(Evidence(runtime.field_where(".spec.builtInAdapter.modelLoadingTimeoutMillis"),
                                     f"modelLoadingTimeoutMillis: {millis if millis is not None else '(unset)'}"))
            limit = f"{millis} ms" if millis is not None else "its default"
            message += f" ({runtime.kind} {runtime.name} allows {limit})"
        yield CHECK.finding(
            namespace=isvc.namespace,
            object=f"InferenceService/{isvc.name}",
            message=message + ", so it never becomes Ready.",
            evidence=evidence,
        )


def _timeout_text(isvc: KubeObject) -> tuple[str, str, str] | None:
    """(where, text, seconds) of the timeout message in a condition or in modelStatus.lastFailureInfo."""
    for index, cond in enumerate(isvc.conditions()):
        text = f"{cond.get('reason') or ''} {cond.get('message') or ''}"
        found = _TIMED_OUT.search(text)
        if found is not None:
            return isvc.field_where(f".status.conditions[{index}]"), found.group(0), found.group(2)
    failure: Mapping[str, Any] = as_mapping(as_mapping(isvc.status.get("modelStatus")).get("lastFailureInfo"))
    found = _TIMED_OUT.search(str(failure.get("message") or ""))
    if found is not None:
        return isvc.field_where(".status.modelStatus.lastFailureInfo"), found.group(0), found.group(2)
    return None


def _runtime(snap: Snapshot, isvc: KubeObject) -> KubeObject | None:
    name = str(as_mapping(as_mapping(isvc.spec.get("predictor")).get("model")).get("runtime")
               or isvc.status.get("servingRuntimeName") or "")
    if not name:
        runtimes = snap.objects_of("ServingRuntime", isvc.namespace)
        return runtimes[0] if len(runtimes) == 1 else None
    return snap.get("ServingRuntime", isvc.namespace, name) or snap.get("ClusterServingRuntime", None, name)


def _timeout_millis(runtime: KubeObject) -> int | None:
    return integer(as_mapping(runtime.spec.get("builtInAdapter")).get("modelLoadingTimeoutMillis"), minimum=0)
