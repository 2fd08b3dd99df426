"""The names of the exporter's series and of the job that scrapes it: shared by the collector (`metrics`), the alert
rules (`alerts.exporter_rules`) and the deploy manifests' tests, so none of them spells a name twice."""

from __future__ import annotations

FINDING = "mlops_trace_finding"
FINDINGS = "mlops_trace_findings"
CHECK_STATUS = "mlops_trace_check_status"
RUN_SUCCESS = "mlops_trace_run_success"
RUN_DURATION = "mlops_trace_run_duration_seconds"
LAST_RUN = "mlops_trace_last_run_timestamp_seconds"
LAST_SUCCESS = "mlops_trace_last_successful_run_timestamp_seconds"
RUNS = "mlops_trace_runs"  # a counter: exposed as mlops_trace_runs_total

PROBE_SUCCESS = "mlops_trace_probe_success"
PROBE_DURATION = "mlops_trace_probe_duration_seconds"
PROBE_REQUESTS = "mlops_trace_probe_requests"
PROBE_TARGET_SHARE = "mlops_trace_probe_split_target_ratio"
PROBE_ANSWERED_SHARE = "mlops_trace_probe_split_answered_ratio"
PROBE_HOP_P50 = "mlops_trace_probe_hop_p50_seconds"
PROBE_HOP_P95 = "mlops_trace_probe_hop_p95_seconds"

FINDING_LABELS = ("cluster", "check", "slug", "severity", "namespace", "object")

# The `job` of the exporter's series: the name of the Service (ServiceMonitor) or `<namespace>/<name>` of the
# PodMonitor in deploy/, and the job of a plain scrape config.
DEFAULT_JOB = "mlops-trace-exporter"
