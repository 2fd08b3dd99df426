"""The exporter end to end, as a user runs it: two `bundle serve` "clusters" (east, west: copies of the
four-root-causes scenario) in one kubeconfig, `mlops-trace exporter --context east --context west`, and the real
Prometheus (Debian's `prometheus`, as the reference stack runs it) scraping it on 127.0.0.1. PromQL returns the finding
series of both clusters; clearing the MT204 fault on west (its Ingress removed, the cluster served again on the same
port) makes west's MT204 series vanish after the exporter's next run while east's stays; `promtool check metrics`
accepts the exposition. Every process binds 127.0.0.1, is bounded in time and is stopped by its PID."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_trace.stack import prometheus as stack_prometheus
from mlops_trace.stack.ports import free_ports
from tests.fixture_walk import FIXTURES
from tests.serve_process import stop_by_pid

pytestmark = pytest.mark.stack

SCENARIO = FIXTURES / "scenarios" / "four-root-causes"
ALL_CHECKS = ["MT101", "MT102", "MT103", "MT104", "MT204"]
PROMETHEUS = stack_prometheus.find_binary()
PROMTOOL = shutil.which("promtool")
SERVING = re.compile(r"serving http://127\.0\.0\.1:(\d+)/metrics")


@contextmanager
def _process(argv: list[str], log: Path, ready: Callable[[], bool], what: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: proc.poll() is None and ready(), 60, lambda: f"{what} did not start: {_tail(log)}")
        yield proc
    finally:
        stop_by_pid(proc)


def _wait(condition: Callable[[], bool], seconds: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, why()
        time.sleep(0.2)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no output)"


def _serve(bundle: Path, port: int, workdir: Path) -> Any:
    """`bundle serve` on a fixed port (so the kubeconfig stays right when a cluster is served again)."""
    kubeconfig = workdir / f"kubeconfig-{bundle.name}-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "mlops_trace", "bundle", "serve", str(bundle), "--port", str(port),
            "--kubeconfig-out", str(kubeconfig), "--duration", "240"]
    return _process(argv, workdir / f"serve-{bundle.name}.log", kubeconfig.exists, f"bundle serve {bundle.name}")


def _kubeconfig(path: Path, ports: dict[str, int]) -> Path:
    lines = ["apiVersion: v1", "kind: Config", "clusters:"]
    lines += [f"- name: {n}\n  cluster:\n    server: http://127.0.0.1:{p}" for n, p in ports.items()]
    lines += ["users:", "- name: nobody\n  user: {}", "contexts:"]
    lines += [f"- name: {n}\n  context:\n    cluster: {n}\n    user: nobody" for n in ports]
    lines.append(f"current-context: {next(iter(ports))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _query(prometheus_port: int, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"http://127.0.0.1:{prometheus_port}/api/v1/query", params={"query": promql}, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _checks_by_cluster(prometheus_port: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for series in _query(prometheus_port, 'mlops_trace_finding{job="mlops-trace-exporter"}'):
        found.setdefault(series["metric"]["cluster"], []).append(series["metric"]["check"])
    return {cluster: sorted(checks) for cluster, checks in found.items()}


def _runs_of(log: Path, cluster: str) -> list[str]:
    return [line for line in _tail_all(log).splitlines() if f"exporter: cluster {cluster}:" in line]


def _tail_all(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                    reason="prometheus/promtool not installed (Debian package prometheus: apt-get install prometheus)")
def test_prometheus_scrapes_two_clusters_and_a_cleared_finding_vanishes(tmp_path: Path) -> None:
    assert PROMETHEUS is not None and PROMTOOL is not None
    bundles = {name: tmp_path / name for name in ("east", "west")}
    for bundle in bundles.values():
        shutil.copytree(SCENARIO, bundle)
    east_port, west_port, exporter_port, prometheus_port = free_ports(4)
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", {"east": east_port, "west": west_port})
    exporter_log = tmp_path / "exporter.log"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        "  - job_name: mlops-trace-exporter\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n",
        encoding="utf-8",
    )
    prometheus_argv = stack_prometheus.argv(PROMETHEUS, config=config, data_dir=tmp_path / "tsdb",
                                            port=prometheus_port)
    exporter_argv = [sys.executable, "-m", "mlops_trace", "exporter", "--kubeconfig", str(kubeconfig),
                     "--context", "east", "--context", "west", "-A", "--port", str(exporter_port),
                     "--interval", "2", "--timeout", "60"]

    def prometheus_ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with _serve(bundles["east"], east_port, tmp_path), \
            _process(exporter_argv, exporter_log, lambda: SERVING.search(_tail_all(exporter_log)) is not None,
                     "the exporter"), \
            _process(prometheus_argv, tmp_path / "prometheus.log", prometheus_ready, "prometheus"):
        with _serve(bundles["west"], west_port, tmp_path):
            _wait(lambda: _checks_by_cluster(prometheus_port) == {"east": ALL_CHECKS, "west": ALL_CHECKS}, 120,
                  lambda: f"{_checks_by_cluster(prometheus_port)}\n{_tail(exporter_log)}")
            exposition = httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=10).content
        # West's fault cleared: the path rewrite fixed by taking the offending Ingress away, west served again.
        (bundles["west"] / "kube" / "ingress-nginx" / "ingresses.yaml").unlink()
        runs_before = len(_runs_of(exporter_log, "west"))
        with _serve(bundles["west"], west_port, tmp_path):
            _wait(lambda: any(" 4 finding(s)" in line for line in _runs_of(exporter_log, "west")[runs_before:]), 120,
                  lambda: _tail(exporter_log))
            cleared = {"east": ALL_CHECKS, "west": [c for c in ALL_CHECKS if c != "MT204"]}
            _wait(lambda: _checks_by_cluster(prometheus_port) == cleared, 30,
                  lambda: f"{_checks_by_cluster(prometheus_port)}\n{_tail(exporter_log)}")
            gone = _query(prometheus_port, 'mlops_trace_finding{cluster="west", check="MT204"}')
            kept = _query(prometheus_port, 'mlops_trace_finding{cluster="east", check="MT204"}')
            successes = _query(prometheus_port, "mlops_trace_run_success")
    assert gone == [] and len(kept) == 1
    assert kept[0]["metric"]["object"] == "Ingress/ml-api" and kept[0]["metric"]["severity"] == "critical"
    assert sorted(s["metric"]["cluster"] for s in successes) == ["east", "west"]
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, timeout=60,
                             check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert b'cluster="west"' in exposition and b'cluster="east"' in exposition
