"""The exporter's series, drawn from `ExporterState` at each scrape by a prometheus_client Collector: only what the
latest runs hold is exposed, so a finding that cleared has no series any more (Prometheus marks it stale at the next
scrape) rather than a 0 that would linger.

Names (all with a `cluster` label, the kubeconfig context or `--cluster-name`):

- `mlops_trace_finding{check, slug, severity, namespace, object}` 1: one series per open finding.
- `mlops_trace_findings{severity}`: how many findings of each severity are open (0 included).
- `mlops_trace_check_status{check, slug, status}`: 1 for the status the check ended in, 0 for the other three.
- `mlops_trace_run_success`, `mlops_trace_run_duration_seconds`, `mlops_trace_last_run_timestamp_seconds`,
  `mlops_trace_last_successful_run_timestamp_seconds` and the counter `mlops_trace_runs_total{result}`: the
  exporter's own health, for the down/stale alerts (`alerts.exporter_rules`).

With `--probe-experiment` (labels `experiment`, no `cluster`): `mlops_trace_probe_success` (every request of the
last burst answered), `mlops_trace_probe_duration_seconds`, `mlops_trace_probe_requests{result}`, the split as
`mlops_trace_probe_split_target_ratio{model}` against `mlops_trace_probe_split_answered_ratio{model}`, and
`mlops_trace_probe_hop_p50_seconds{hop}` and `mlops_trace_probe_hop_p95_seconds{hop}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mlops_trace.exporter.names import (
    CHECK_STATUS,
    FINDING,
    FINDING_LABELS,
    FINDINGS,
    LAST_RUN,
    LAST_SUCCESS,
    PROBE_ANSWERED_SHARE,
    PROBE_DURATION,
    PROBE_HOP_P50,
    PROBE_HOP_P95,
    PROBE_REQUESTS,
    PROBE_SUCCESS,
    PROBE_TARGET_SHARE,
    RUN_DURATION,
    RUN_SUCCESS,
    RUNS,
)
from mlops_trace.exporter.probe import ProbeOutcome
from mlops_trace.exporter.state import ClusterState, ExporterState
from mlops_trace.findings import CheckStatus, Finding, Severity


def finding_labels(cluster: str, finding: Finding) -> tuple[str, ...]:
    """The label values of a finding's series (FINDING_LABELS order); namespace "" for cluster-scoped objects."""
    return (cluster, finding.id, finding.slug, finding.severity.value, finding.namespace or "", finding.object)


class FindingsCollector(Collector):
    """Yields the series of the current state at every scrape."""

    def __init__(self, state: ExporterState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        clusters = self._state.clusters()
        yield from _findings(clusters)
        yield from _checks(clusters)
        yield from _runs(clusters)
        probe = self._state.probe()
        if probe is not None:
            yield from _probe(probe)


def registry_for(state: ExporterState) -> CollectorRegistry:
    """A registry holding only the exporter's collector (no process or platform series of the client's default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FindingsCollector(state))
    return registry


def _findings(clusters: tuple[ClusterState, ...]) -> Iterator[Metric]:
    open_findings = GaugeMetricFamily(
        FINDING, "An open finding of the last successful run (1); the series ends when the finding clears.",
        labels=FINDING_LABELS,
    )
    counts = GaugeMetricFamily(
        FINDINGS, "Open findings of the last successful run, by severity.", labels=("cluster", "severity")
    )
    for cluster in clusters:
        if cluster.last_success is None or cluster.last_success.findings is None:
            continue
        found = cluster.last_success.findings
        # Two findings of one check on one object (different messages) are one series: a series is its labels.
        for labels in sorted({finding_labels(cluster.cluster, f) for f in found}):
            open_findings.add_metric(labels, 1.0)
        for severity in Severity:
            counts.add_metric((cluster.cluster, severity.value), float(sum(f.severity is severity for f in found)))
    yield open_findings
    yield counts


def _checks(clusters: tuple[ClusterState, ...]) -> Iterator[Metric]:
    status = GaugeMetricFamily(
        CHECK_STATUS, "How each check of the last successful run ended: 1 for its status, 0 for the others.",
        labels=("cluster", "check", "slug", "status"),
    )
    for cluster in clusters:
        if cluster.last_success is None:
            continue
        for check in sorted(cluster.last_success.checks, key=lambda c: c.id):
            for value in CheckStatus:
                status.add_metric(
                    (cluster.cluster, check.id, check.slug, value.value), 1.0 if check.status is value else 0.0
                )
    yield status


def _runs(clusters: tuple[ClusterState, ...]) -> Iterator[Metric]:
    success = GaugeMetricFamily(RUN_SUCCESS, "Whether the last run of the catalog succeeded (1) or not (0).",
                                labels=("cluster",))
    duration = GaugeMetricFamily(RUN_DURATION, "How long the last run took (collection and checks).",
                                 labels=("cluster",), unit="seconds")
    last = GaugeMetricFamily(LAST_RUN, "When the last run started (Unix time).", labels=("cluster",))
    last_ok = GaugeMetricFamily(LAST_SUCCESS, "When the last successful run started (Unix time).",
                                labels=("cluster",))
    runs = CounterMetricFamily(RUNS, "Runs of the catalog since the exporter started, by result.",
                               labels=("cluster", "result"))
    for cluster in clusters:
        name = cluster.cluster
        success.add_metric((name,), 1.0 if cluster.last.succeeded else 0.0)
        duration.add_metric((name,), cluster.last.duration)
        last.add_metric((name,), cluster.last.started)
        if cluster.last_success is not None:
            last_ok.add_metric((name,), cluster.last_success.started)
        runs.add_metric((name, "success"), float(cluster.runs_succeeded))
        runs.add_metric((name, "failure"), float(cluster.runs_failed))
    yield from (success, duration, last, last_ok, runs)


def _probe(probe: ProbeOutcome) -> Iterator[Metric]:
    experiment = (probe.experiment,)
    success = GaugeMetricFamily(PROBE_SUCCESS, "Whether every request of the last probe burst was answered (1).",
                                labels=("experiment",))
    success.add_metric(experiment, 1.0 if probe.ran and probe.count and probe.succeeded == probe.count else 0.0)
    duration = GaugeMetricFamily(PROBE_DURATION, "How long the last probe burst took.", labels=("experiment",),
                                 unit="seconds")
    duration.add_metric(experiment, probe.duration)
    yield from (success, duration)
    if not probe.ran:
        return
    requests = GaugeMetricFamily(PROBE_REQUESTS, "Requests of the last probe burst, by result.",
                                 labels=("experiment", "result"))
    requests.add_metric((probe.experiment, "ok"), float(probe.succeeded))
    requests.add_metric((probe.experiment, "failed"), float(probe.count - probe.succeeded))
    target = GaugeMetricFamily(PROBE_TARGET_SHARE, "The Experiment's share for each candidate (0-1).",
                               labels=("experiment", "model"))
    answered = GaugeMetricFamily(PROBE_ANSWERED_SHARE,
                                 "The share of the last burst's answers each candidate gave (0-1).",
                                 labels=("experiment", "model"))
    total = sum(probe.answered.values())
    for model in sorted(set(probe.target_shares) | set(probe.answered)):
        if model in probe.target_shares:
            target.add_metric((probe.experiment, model), probe.target_shares[model])
        if total:
            answered.add_metric((probe.experiment, model), probe.answered.get(model, 0) / total)
    # Two gauges, not a `quantile` label: that label belongs to summaries (promtool says so).
    p50 = GaugeMetricFamily(PROBE_HOP_P50, "Each hop's median latency over the last probe burst.",
                            labels=("experiment", "hop"), unit="seconds")
    p95 = GaugeMetricFamily(PROBE_HOP_P95, "Each hop's 95th percentile latency over the last probe burst.",
                            labels=("experiment", "hop"), unit="seconds")
    # The hop's name only: its component text names pods and ports that change with every rollout.
    seen: set[str] = set()
    for hop in probe.hops:
        if hop.name in seen:  # a series is its labels: the first hop of a name stands for it
            continue
        seen.add(hop.name)
        p50.add_metric((probe.experiment, hop.name), hop.p50_s)
        p95.add_metric((probe.experiment, hop.name), hop.p95_s)
    yield from (requests, target, answered, p50, p95)
