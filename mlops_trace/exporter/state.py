"""The latest run of each cluster, written by the schedule loop and read by every scrape (one lock between them).

A failed run (the cluster unreachable, the run over its timeout) keeps the findings and check statuses of the last
run that succeeded: an API server that blinks does not resolve every alert. `mlops_trace_run_success` and the
last-success timestamp say how old those series are.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from mlops_trace.exporter.probe import ProbeOutcome
from mlops_trace.findings import CheckResult, Finding


@dataclass(frozen=True)
class RunOutcome:
    """One cluster's run: when it started, how long it took, and what it found (None when it failed)."""

    cluster: str
    started: float  # Unix time
    duration: float  # seconds
    findings: tuple[Finding, ...] | None
    checks: tuple[CheckResult, ...] = ()
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.findings is not None


@dataclass(frozen=True)
class ClusterState:
    cluster: str
    last: RunOutcome
    last_success: RunOutcome | None
    runs_succeeded: int = 0
    runs_failed: int = 0


class ExporterState:
    """Thread-safe: `record` and `record_probe` from the loop, `clusters` and `probe` from the scrape handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[str, ClusterState] = {}
        self._probe: ProbeOutcome | None = None

    def record_probe(self, outcome: ProbeOutcome) -> None:
        with self._lock:
            self._probe = outcome

    def probe(self) -> ProbeOutcome | None:
        with self._lock:
            return self._probe

    def record(self, outcome: RunOutcome) -> None:
        with self._lock:
            old = self._clusters.get(outcome.cluster)
            if old is None:
                old = ClusterState(outcome.cluster, outcome, None)
            if outcome.succeeded:
                new = replace(old, last=outcome, last_success=outcome, runs_succeeded=old.runs_succeeded + 1)
            else:
                new = replace(old, last=outcome, runs_failed=old.runs_failed + 1)
            self._clusters[outcome.cluster] = new

    def clusters(self) -> tuple[ClusterState, ...]:
        with self._lock:
            return tuple(self._clusters[name] for name in sorted(self._clusters))
