"""Metrics for the stack: Debian's `prometheus` binary (when installed) scraping MLServer and Envoy on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_trace.stack.topology import ENVOY_POD, NAMESPACE, SERVER_POD

SCRAPE_INTERVAL = "5s"


def find_binary() -> Path | None:
    """The prometheus server binary; the stack runs without metrics when there is none."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    fallback = Path("/usr/bin/prometheus")
    return fallback if fallback.is_file() else None


def render(*, mlserver_metrics: int, envoy_admin: int, agent_admin: int) -> str:
    """prometheus.yml: one job per hop that exports metrics, labelled with the pod it stands for."""
    return f"""\
global:
  scrape_interval: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
scrape_configs:
  - job_name: mlserver
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{mlserver_metrics}"]
        labels: {{namespace: {NAMESPACE}, pod: {SERVER_POD}, container: mlserver}}
  - job_name: seldon-envoy
    metrics_path: /stats/prometheus
    static_configs:
      - targets: ["127.0.0.1:{envoy_admin}"]
        labels: {{namespace: {NAMESPACE}, pod: {ENVOY_POD}, container: envoy}}
  - job_name: agent-proxy
    metrics_path: /stats/prometheus
    static_configs:
      - targets: ["127.0.0.1:{agent_admin}"]
        labels: {{namespace: {NAMESPACE}, pod: {SERVER_POD}, container: agent}}
"""


def argv(binary: Path, *, config: Path, data_dir: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2h",
        "--log.level=info",
    ]
