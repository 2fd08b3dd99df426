"""`mlops-trace alerts`: a PrometheusRule (monitoring.coreos.com/v1) with the two alerts of the write-ups, made
for one namespace from its Experiments.

- `HighMLInferenceLatency`: the P95 of the chosen latency histogram above the objective for `--for` (5m).
- `ABTestTrafficImbalance`: one rule per Experiment candidate; fires when the candidate's observed share of the
  requests to the Experiment's candidates differs from its target share (its weight over the sum of weights) by
  more than the tolerance, once the window holds enough requests to tell.

The PromQL comes from the same builders as checks MT401 and MT403, so an alert and a `doctor` finding measure the
same thing. Runbook annotations point at the playbooks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from mlops_trace.analysis.objectives import DEFAULT_MAX_P95_MS
from mlops_trace.analysis.seldon import iter_weighted_candidates
from mlops_trace.errors import UsageError
from mlops_trace.exporter import names
from mlops_trace.exporter.names import DEFAULT_JOB
from mlops_trace.promql import plan
from mlops_trace.promql.builders import (
    check_window,
    eq,
    increase_sum,
    literal_regex,
    regex,
    selector,
    window_seconds,
)
from mlops_trace.promql.families import Family
from mlops_trace.snapshot.kube import KubeObject

API_VERSION = "monitoring.coreos.com/v1"
LATENCY_ALERT = "HighMLInferenceLatency"
SPLIT_ALERT = "ABTestTrafficImbalance"
CRITICAL_FINDING_ALERT = "MlopsTraceCriticalFinding"
EXPORTER_DOWN_ALERT = "MlopsTraceExporterDown"
EXPORTER_STALE_ALERT = "MlopsTraceExporterStale"
DEFAULT_SPLIT_TOLERANCE = 0.10  # share points; a 5m window is noisy, so wider than MT403's 0.05
DEFAULT_MIN_REQUESTS = 200


class MetricSource(StrEnum):
    ENVOY = "envoy"
    AGENT = "agent"
    MLSERVER = "mlserver"


_LATENCY: dict[MetricSource, plan.LatencySource] = {
    MetricSource.ENVOY: plan.LATENCY_SOURCES[0],
    MetricSource.AGENT: plan.LATENCY_SOURCES[1],
    MetricSource.MLSERVER: plan.LATENCY_SOURCES[2],
}
_SPLIT: dict[MetricSource, plan.SplitSource] = {
    MetricSource.ENVOY: plan.SPLIT_SOURCES[0],
    MetricSource.AGENT: plan.SPLIT_SOURCES[1],
    MetricSource.MLSERVER: plan.SPLIT_SOURCES[2],
}
_SUBJECT_LABEL: dict[Family, str] = {
    Family.ENVOY_CLUSTER: "envoy_cluster_name",
    Family.AGENT: "server",
    Family.MLSERVER: "pod",
}


@dataclass(frozen=True)
class AlertSettings:
    namespace: str
    name: str | None = None
    max_p95_ms: float = DEFAULT_MAX_P95_MS
    duration: str = "5m"  # `for:` of both alerts
    window: str = "5m"
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    min_requests: int = DEFAULT_MIN_REQUESTS
    source: MetricSource = MetricSource.ENVOY
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook_base: str | None = None
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not self.namespace:
            raise UsageError("alerts needs the namespace of the serving stack: -n NAMESPACE")
        check_window(self.window)
        try:
            check_window(self.duration)
        except UsageError:
            raise UsageError(f"--for must be a Prometheus duration such as 5m (got {self.duration!r})") from None
        if self.max_p95_ms <= 0:
            raise UsageError("--max-p95 must be above 0 ms")
        if not 0.0 < self.split_tolerance < 1.0:
            raise UsageError("--split-tolerance must be a share between 0 and 1 (e.g. 0.1)")
        if self.min_requests < 1:
            raise UsageError("--min-requests must be at least 1")

    @property
    def rule_name(self) -> str:
        return self.name or f"mlops-trace-{self.namespace}"


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label {value!r}: expected KEY=VALUE")
        labels[key.strip()] = text.strip()
    return labels


def _runbook(settings: AlertSettings, playbook: str, check_id: str) -> dict[str, str]:
    notes = {"runbook": f"mlops-trace playbook playbooks/{playbook}.md (`mlops-trace checks explain {check_id}`)"}
    if settings.runbook_base:
        notes["runbook_url"] = f"{settings.runbook_base.rstrip('/')}/{playbook}.md"
    return notes


def latency_rule(settings: AlertSettings) -> dict[str, Any]:
    source = _LATENCY[settings.source]
    in_namespace = (eq("namespace", settings.namespace),)
    threshold = settings.max_p95_ms if source.family is Family.ENVOY_CLUSTER else settings.max_p95_ms / 1000.0
    unit = "ms" if source.family is Family.ENVOY_CLUSTER else "s"
    expr = f"{plan.latency_p95_query(source, settings.window, in_namespace)} > {threshold:g}"
    subject = _SUBJECT_LABEL[source.family]
    shown = "{{ $value | humanize }}" + unit if unit == "ms" else "{{ $value | humanizeDuration }}"
    return {
        "alert": LATENCY_ALERT,
        "expr": expr,
        "for": settings.duration,
        "labels": {"severity": settings.severity, "mlops_trace_check": "MT401"},
        "annotations": {
            "summary": f"ML inference P95 latency above {settings.max_p95_ms:g}ms in {settings.namespace}",
            "description": f"P95 latency of {subject} {{{{ $labels.{subject} }}}} in namespace {settings.namespace} "
            f"is {shown} over the last {settings.window}, above the {settings.max_p95_ms:g}ms objective "
            f"(metric {source.bucket}).",
            **_runbook(settings, "high-latency", "MT401"),
        },
    }


def _candidate_matchers(source: plan.SplitSource, names: Sequence[str]) -> tuple[str, str]:
    """(label, regex) selecting the series of the models `names`, any version."""
    alternatives = literal_regex(names)
    group = f"({alternatives})" if len(names) > 1 else alternatives
    if source.family is Family.ENVOY_CLUSTER:
        return "envoy_cluster_name", f"{group}_[0-9]+_(http|grpc)"
    return "model", f"{group}(_[0-9]+)?"


def split_rules(settings: AlertSettings, experiment: KubeObject) -> list[dict[str, Any]]:
    """One rule per candidate with a positive weight; none for pipelines or fewer than two weighted candidates."""
    weights: dict[str, int] = {}
    for name, weight in iter_weighted_candidates(experiment):
        weights[name] = weights.get(name, 0) + max(weight, 0)
    total = sum(weights.values())
    live = sorted(name for name, weight in weights.items() if weight > 0)
    if str(experiment.spec.get("resourceType") or "model").lower() == "pipeline" or len(live) < 2:
        return []
    source = _SPLIT[settings.source]
    in_namespace = eq("namespace", settings.namespace)
    base = tuple(m for m in source.matchers if m.label not in ("envoy_cluster_name", "model"))
    label, all_regex = _candidate_matchers(source, live)
    all_requests = increase_sum(source.metric, (), (*base, regex(label, all_regex), in_namespace), settings.window)
    rules: list[dict[str, Any]] = []
    for name in live:
        share = weights[name] / total
        _, one_regex = _candidate_matchers(source, [name])
        mine = increase_sum(source.metric, (), (*base, regex(label, one_regex), in_namespace), settings.window)
        expr = (
            f"abs(\n  {mine}\n  /\n  {all_requests}\n  - {share:.4g}\n) > {settings.split_tolerance:g}\n"
            f"and on() {all_requests} >= {settings.min_requests}"
        )
        rules.append(
            {
                "alert": SPLIT_ALERT,
                "expr": expr,
                "for": settings.duration,
                "labels": {
                    "severity": settings.severity,
                    "mlops_trace_check": "MT403",
                    "experiment": experiment.name,
                    "candidate": name,
                    "target_share": f"{share:.4g}",
                },
                "annotations": {
                    "summary": f"A/B test {experiment.name}: {name} is off its {100.0 * share:.1f}% target share",
                    "description": f"Candidate {name} of Experiment {experiment.name} in namespace "
                    f"{settings.namespace} got a share of the experiment's requests that differs from its target "
                    f"{100.0 * share:.1f}% (weights "
                    + ", ".join(f"{n}={w}" for n, w in sorted(weights.items()))
                    + f") by {{{{ $value | humanizePercentage }}}} over the last {settings.window}, more than the "
                    f"{100.0 * settings.split_tolerance:g}% tolerance.",
                    **_runbook(settings, "traffic-not-splitting", "MT403"),
                },
            }
        )
    return rules


def build_rule(
    settings: AlertSettings, experiments: Sequence[KubeObject], exporter: ExporterAlerts | None = None
) -> dict[str, Any]:
    """The PrometheusRule object; with `exporter`, also the exporter's group for the findings in the namespace."""
    groups: list[dict[str, Any]] = [
        {"name": f"mlops-trace.{settings.namespace}.latency", "rules": [latency_rule(settings)]}
    ]
    split: list[dict[str, Any]] = []
    for experiment in sorted(experiments, key=lambda e: e.name):
        split.extend(split_rules(settings, experiment))
    if split:
        groups.append({"name": f"mlops-trace.{settings.namespace}.ab-split", "rules": split})
    if exporter is not None:
        groups.append(
            {"name": f"mlops-trace.{settings.namespace}.exporter", "rules": exporter_rules(exporter, settings.namespace)}
        )
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {
            "name": settings.rule_name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-trace", **settings.labels},
        },
        "spec": {"groups": groups},
    }


@dataclass(frozen=True)
class ExporterAlerts:
    """The alerts on `mlops-trace exporter`'s series: a critical finding open for `finding_for`, the exporter down
    (its scrape failing or gone) for `down_for`, and its runs stale (no successful run for `stale_after`)."""

    job: str = DEFAULT_JOB
    finding_for: str = "15m"
    down_for: str = "5m"
    stale_after: str = "30m"

    def __post_init__(self) -> None:
        for flag, value in (("finding-for", self.finding_for), ("down-for", self.down_for),
                            ("stale-after", self.stale_after)):
            try:
                check_window(value)
            except UsageError:
                raise UsageError(f"--{flag} must be a Prometheus duration such as 15m (got {value!r})") from None
        if not self.job:
            raise UsageError("the exporter's job name is empty")


def exporter_rules(alerts: ExporterAlerts, namespace: str | None = None) -> list[dict[str, Any]]:
    """The exporter's three alerts; `namespace` limits the finding alert to findings there (all by default)."""
    job = (eq("job", alerts.job),)
    scope = (eq("severity", "critical"), *((eq("namespace", namespace),) if namespace else ()))
    finding = {
        "alert": CRITICAL_FINDING_ALERT,
        "expr": f"max by (cluster, namespace, check, slug, object) ({selector(names.FINDING, scope)}) == 1",
        "for": alerts.finding_for,
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "mlops-trace {{ $labels.check }} ({{ $labels.slug }}) open on {{ $labels.object }}",
            "description": "Check {{ $labels.check }} has reported {{ $labels.object }} in namespace "
            "{{ $labels.namespace }} of cluster {{ $labels.cluster }} for " + alerts.finding_for + ". "
            "`mlops-trace doctor --only {{ $labels.check }} -n {{ $labels.namespace }}` shows the evidence.",
            "runbook": "mlops-trace checks explain {{ $labels.check }}",
        },
    }
    down = {
        "alert": EXPORTER_DOWN_ALERT,
        "expr": f"{selector('up', job)} == 0 or absent({selector('up', job)})",
        "for": alerts.down_for,
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "mlops-trace exporter down",
            "description": f"Prometheus has not scraped the mlops-trace exporter (job {alerts.job}) for "
            f"{alerts.down_for}: its findings are not being updated.",
        },
    }
    last_success = f"max by (cluster) ({selector(names.LAST_SUCCESS, job)})"
    stale = {
        "alert": EXPORTER_STALE_ALERT,
        "expr": f"time() - {last_success} > {window_seconds(alerts.stale_after):g}\n"
        f"or (max by (cluster) ({selector(names.RUN_SUCCESS, job)}) == 0 unless on (cluster) {last_success})",
        "for": alerts.down_for,
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "mlops-trace exporter has no recent successful run for {{ $labels.cluster }}",
            "description": "The mlops-trace exporter's last successful run on cluster {{ $labels.cluster }} is older "
            f"than {alerts.stale_after} (or none has succeeded yet): its findings are stale. "
            "The exporter's log names the run's error.",
        },
    }
    return [finding, down, stale]


def build_exporter_rule(
    alerts: ExporterAlerts, *, name: str, namespace: str, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A PrometheusRule with the exporter's alerts only, over every cluster and namespace it watches (deploy/)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-trace", **(labels or {})},
        },
        "spec": {"groups": [{"name": "mlops-trace.exporter", "rules": exporter_rules(alerts)}]},
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the split expressions) as YAML literal blocks, so the rule reads like hand-written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def render_rule(rule: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rule, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.dump(dict(rule), Dumper=_BlockDumper, sort_keys=False, width=120, allow_unicode=True)
    raise UsageError(f"--output must be yaml or json (got {fmt!r})")


def skipped_experiments(experiments: Sequence[KubeObject]) -> list[str]:
    """Why an Experiment got no split rule (shown as warnings)."""
    reasons: list[str] = []
    for experiment in experiments:
        if str(experiment.spec.get("resourceType") or "model").lower() == "pipeline":
            reasons.append(f"{experiment.ref}: a pipeline experiment has no per-model split to watch")
        elif len([w for _, w in iter_weighted_candidates(experiment) if w > 0]) < 2:
            reasons.append(f"{experiment.ref}: fewer than two candidates with a positive weight")
    return reasons
