"""The service-level part of a `doctor` run: query Prometheus into the Snapshot (when asked) and run the catalog
with the user's objectives as check options. `doctor` and `smoke` both go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.analysis.objectives import Objectives
from mlops_trace.findings import Report
from mlops_trace.prometheus.client import PrometheusConfig
from mlops_trace.prometheus.options import prometheus_config
from mlops_trace.promql.builders import check_window
from mlops_trace.snapshot.snapshot import Snapshot


@dataclass(frozen=True)
class ServiceLevel:
    prometheus: PrometheusConfig | None = None
    window: str = "5m"
    objectives: Objectives = field(default_factory=Objectives)

    def prepare(self, snap: Snapshot, *, fresh_after: float | None = None, wait_s: float = 0.0) -> list[str]:
        """Query Prometheus into `snap` (nothing without `--prometheus`); the lines to tell the user."""
        if self.prometheus is None:
            return []
        from mlops_trace.prometheus.attach import query_prometheus_into

        return query_prometheus_into(snap, self.prometheus, self.window, fresh_after=fresh_after, wait_s=wait_s)

    def run(self, snap: Snapshot, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Report:
        return run_checks(snap, select(only, skip), self.objectives.check_options())


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
    return ServiceLevel(
        prometheus=prometheus_config(prometheus, token, user, password, cacert, insecure),
        window=check_window(window),
        objectives=Objectives(max_p95_ms, min_success, split_alpha, split_tolerance),
    )
