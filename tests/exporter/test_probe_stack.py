"""The exporter's probe against the real reference stack (its own, in a tmp state dir): `mlops-trace exporter
--probe-experiment` sends its bursts through NGINX, Envoy and MLServer as `request --count` does, and /metrics
carries the Experiment's 70/30 target shares, the shares its candidates answered, and each hop's p50/p95, in a text
promtool accepts. The exporter binds 127.0.0.1, is bounded in time and stopped by its PID."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_trace.stack.ports import free_ports
from tests.serve_process import stop_by_pid
from tests.stack_run import running_stack

pytestmark = pytest.mark.stack

PROMTOOL = shutil.which("promtool")


def test_the_probe_exports_the_split_and_the_hops(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    log = tmp_path / "exporter.log"
    with running_stack(tmp_path / "stack") as info:
        experiment = info["experiment"]["name"]
        argv = [sys.executable, "-m", "mlops_trace", "exporter", "--kubeconfig", info["kubeconfig"], "-A",
                "--port", str(port), "--interval", "3600", "--probe-experiment", experiment,
                "--probe-url", info["ingress_url"], "--probe-host", info["host"], "--probe-count", "40"]
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while f"probe {experiment}:" not in log.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            stop_by_pid(proc)
    assert re.search(rf"probe {re.escape(experiment)}: 40/40 answered in ", log.read_text()), log.read_text()
    samples: dict[str, dict[tuple[str, ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(v for k, v in sorted(sample.labels.items()) if k != "experiment")
            samples.setdefault(sample.name, {})[key] = sample.value
    assert samples["mlops_trace_probe_success"] == {(): 1.0}
    weights = info["experiment"]["weights"]
    total = sum(weights.values())
    assert samples["mlops_trace_probe_split_target_ratio"] == {(m,): w / total for m, w in weights.items()}
    answered = samples["mlops_trace_probe_split_answered_ratio"]
    assert set(answered) == {(m,) for m in weights} and abs(sum(answered.values()) - 1.0) < 1e-9
    assert all(0.0 < share < 1.0 for share in answered.values())  # 40 requests at 70/30 reach both
    p50, p95 = samples["mlops_trace_probe_hop_p50_seconds"], samples["mlops_trace_probe_hop_p95_seconds"]
    assert ("Seldon Envoy",) in p50 and set(p50) == set(p95)
    assert all(0.0 <= p50[hop] <= p95[hop] < 10.0 for hop in p50)
    if PROMTOOL is not None:
        checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                                 timeout=60, check=False)
        assert checked.returncode == 0, checked.stderr.decode()
