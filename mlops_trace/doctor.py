"""`doctor`, one path for every caller (the CLI's `doctor`, `smoke`): open the snapshot (an offline bundle, or a live
cluster collected into one) → attach Prometheus's answers when asked → add the request records of a run, if any → run
the catalog with the user's objectives → the Report. `request` runs the same catalog on its own snapshot
(`trace.diagnose`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.analysis.objectives import Objectives
from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import UsageError
from mlops_trace.findings import InputProblem, Report
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.prometheus.client import PrometheusConfig
from mlops_trace.promql.builders import check_window
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot


@dataclass(frozen=True)
class ServiceLevel:
    """The service-level part of a run: which Prometheus to query (none: MT401-MT403 read what the input holds), over
    which window, against which objectives."""

    prometheus: PrometheusConfig | None = None
    window: str = "5m"
    objectives: Objectives = field(default_factory=Objectives)

    def prepare(self, snap: Snapshot, *, fresh_after: float | None = None, wait_s: float = 0.0) -> list[str]:
        """Query Prometheus into `snap` (nothing without one); the lines to tell the user."""
        if self.prometheus is None:
            return []
        from mlops_trace.prometheus.attach import query_prometheus_into

        return query_prometheus_into(snap, self.prometheus, self.window, fresh_after=fresh_after, wait_s=wait_s)



def service_level(
    *,
    prometheus: str | None,
    token: str | None,
    user: str | None,
    password: str | None,
    cacert: Path | None,
    insecure: bool,
    window: str,
    max_p95_ms: float | None,
    min_success: float | None,
    split_alpha: float | None,
    split_tolerance: float | None = None,
) -> ServiceLevel:
    """Validate the service-level flags (UsageError/InputError) into one value."""
    from mlops_trace.prometheus.options import prometheus_config

    return ServiceLevel(
        prometheus=prometheus_config(prometheus, token, user, password, cacert, insecure),
        window=check_window(window),
        objectives=Objectives(max_p95_ms, min_success, split_alpha, split_tolerance),
    )


@dataclass(frozen=True)
class DoctorRun:
    """One doctor run: where to read (exactly one of `bundle` and `live`), what to judge by, which checks."""

    bundle: Path | None = None
    live: LiveTarget | None = None
    limits: InputLimits = DEFAULT_LIMITS
    service_level: ServiceLevel = field(default_factory=ServiceLevel)
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    requests: Sequence[RequestRecord] = ()  # a request run's records, judged with the rest (`smoke`)
    fresh_after: float | None = None  # Prometheus: wait for a scrape newer than this (after a request run)
    prometheus_wait_s: float = 0.0


@dataclass(frozen=True)
class DoctorResult:
    report: Report
    notes: tuple[str, ...]  # what the Prometheus step wants the user to know
    problems: tuple[InputProblem, ...]  # input files that could not be used


@contextmanager
def open_snapshot(
    bundle: Path | None, live: LiveTarget | None, limits: InputLimits = DEFAULT_LIMITS
) -> Iterator[Snapshot]:
    if bundle is not None and live is not None and (live.namespaces or live.all_namespaces):
        raise UsageError("--bundle reads an offline bundle; it does not go with -n/-A")
    if bundle is not None:
        from mlops_trace.snapshot.bundle import open_bundle

        with open_bundle(bundle, limits) as snap:
            yield snap
        return
    if live is None or not (live.namespaces or live.all_namespaces):
        raise UsageError("say what to examine: --bundle DIR, -n NAMESPACE (repeatable) or -A")
    from mlops_trace.collect.live import open_live_snapshot

    with open_live_snapshot(live, limits) as snap:
        yield snap


def run_doctor(run: DoctorRun, on_input: Callable[[Sequence[str], Sequence[InputProblem]], None] | None = None) -> DoctorResult:
    """The pipeline. `on_input` hears the Prometheus notes and the input problems before the checks run (a long run
    says early what it could not read)."""
    with open_snapshot(run.bundle, run.live, run.limits) as snap:
        notes = run.service_level.prepare(snap, fresh_after=run.fresh_after, wait_s=run.prometheus_wait_s)
        if run.requests:
            snap.requests[:] = list(run.requests)
        if on_input is not None:
            on_input(notes, snap.problems)
        report = run_checks(snap, select(run.only, run.skip), run.service_level.objectives.check_options())
        problems = tuple(snap.problems)
    return DoctorResult(report, tuple(notes), problems)
