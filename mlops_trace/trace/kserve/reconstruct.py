"""The hops of a request to an InferenceService, whichever its deployment mode."""

from __future__ import annotations

from collections.abc import Mapping

from mlops_trace.analysis.kserve import Mode
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.kserve.path import KPath, KRequest, reconstruct_knative
from mlops_trace.trace.kserve.path_standard import reconstruct_standard
from mlops_trace.trace.kserve.target import Isvc


def reconstruct(snap: Snapshot, isvc: Isvc, request: KRequest, served: Mapping[str, str] | None = None) -> KPath:
    """Standard mode's hops for a Standard InferenceService, Knative's otherwise (KServe's shipped default)."""
    if isvc.mode is Mode.STANDARD:
        return reconstruct_standard(snap, isvc, request)
    return reconstruct_knative(snap, isvc, request, served)
