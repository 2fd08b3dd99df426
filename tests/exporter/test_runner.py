"""The exporter's process: a round against a served bundle through the real pipeline and HTTP server, a run past its
timeout (and its cluster skipped until that run ends), a cluster that cannot be reached, SIGTERM, and the flags'
one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlops_trace.cli import app
from mlops_trace.collect.target import LiveTarget
from mlops_trace.exporter.runner import Scheduler, run_cluster, serve
from mlops_trace.exporter.settings import ClusterTarget, ExporterSettings
from mlops_trace.exporter.state import ExporterState, RunOutcome
from tests.fixture_walk import FIXTURES
from tests.serve_process import bundle_server, stop_by_pid

SCENARIO = FIXTURES / "scenarios" / "four-root-causes"
SERVING = re.compile(r"serving http://127\.0\.0\.1:(\d+)/metrics")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig(path: Path, port: int, *names: str) -> Path:
    """A kubeconfig with one context per name, each on http://127.0.0.1:port (no credentials: bundle serve)."""
    lines = ["apiVersion: v1", "kind: Config", "clusters:"]
    lines += [f"- name: {n}\n  cluster:\n    server: http://127.0.0.1:{port}" for n in names]
    lines += ["users:", "- name: nobody\n  user: {}", "contexts:"]
    lines += [f"- name: {n}\n  context:\n    cluster: {n}\n    user: nobody\n    namespace: fraud-serving" for n in names]
    lines.append(f"current-context: {names[0]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_round_over_a_served_bundle_is_on_metrics(tmp_path: Path) -> None:
    with bundle_server(SCENARIO, tmp_path, duration=90) as served:
        target = ClusterTarget("east", LiveTarget(all_namespaces=True, kubeconfig=str(served.kubeconfig)))
        settings = ExporterSettings(clusters=(target,), port=0, interval=3600)
        lines: list[str] = []
        stop = threading.Event()
        thread = threading.Thread(target=serve, args=(settings, lines.append, stop), daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not any("cluster east" in line for line in lines):
                assert time.monotonic() < deadline, lines
                assert thread.is_alive(), lines
                time.sleep(0.1)
            match = SERVING.search(lines[0])
            assert match is not None, lines
            text = httpx.get(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=10).text
        finally:
            stop.set()
            thread.join(15)
    assert not thread.is_alive()
    assert lines[-1] == "stopped"
    assert "cluster east: 5 finding(s) (worst critical)" in lines[1]
    assert re.search(r'mlops_trace_finding\{[^}]*check="MT204"[^}]*cluster="east"[^}]*\} 1\.0', text), text
    assert 'mlops_trace_run_success{cluster="east"} 1.0' in text


def test_an_unreachable_cluster_is_a_failed_run(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "gone")
    target = ClusterTarget("gone", LiveTarget(namespaces=("fraud-serving",), kubeconfig=str(kubeconfig),
                                              request_timeout=2))
    outcome = run_cluster(ExporterSettings(clusters=(target,), run_timeout=10), target)
    assert not outcome.succeeded
    assert "connection refused" in outcome.error


def test_a_run_past_its_timeout_fails_and_its_cluster_waits_for_it() -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow(settings: ExporterSettings, target: ClusterTarget) -> RunOutcome:
        calls.append(target.name)
        release.wait(30)
        return RunOutcome(target.name, time.time(), 0.0, (), ())

    target = ClusterTarget("slow", LiveTarget(namespaces=("a",)))
    settings = ExporterSettings(clusters=(target,), run_timeout=0.3)
    state, stop = ExporterState(), threading.Event()
    scheduler = Scheduler(settings, state, lambda line: None, run=slow, grace=0.1)
    try:
        (first,) = scheduler.run_round(stop)
        assert not first.succeeded and "longer than 0.3 s (--timeout)" in first.error
        (second,) = scheduler.run_round(stop)
        assert "has not ended" in second.error
        assert calls == ["slow"]  # the timed-out run was not started again beside itself
    finally:
        release.set()
    time.sleep(0.3)
    (third,) = scheduler.run_round(stop)
    assert third.succeeded and calls == ["slow", "slow"]
    assert state.clusters()[0].runs_failed == 2 and state.clusters()[0].runs_succeeded == 1


def test_sigterm_stops_the_exporter(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "gone")
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_trace", "exporter", "--kubeconfig", str(kubeconfig), "--port", "0",
             "--interval", "3600", "--request-timeout", "2"],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while "cluster gone: run failed" not in stderr_path.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, stderr_path.read_text(errors="replace")
            time.sleep(0.1)
        port = SERVING.search(stderr_path.read_text())
        assert port is not None
        metrics = httpx.get(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10).text
        assert 'mlops_trace_run_success{cluster="gone"} 0.0' in metrics
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        stop_by_pid(proc)
    text = stderr_path.read_text()
    assert text.rstrip().endswith("mlops-trace: exporter: stopped") and "Traceback" not in text


def test_once_exits_2_when_a_run_failed(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "gone")
    result = CliRunner().invoke(app, ["exporter", "--kubeconfig", str(kubeconfig), "--port", "0", "--once",
                                      "--request-timeout", "2"])
    assert result.exit_code == 2, result.output
    assert "cluster gone: run failed" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--address", "localhost"], "--address must be an IP address"),
        (["--interval", "0"], "--interval must be a positive number"),
        (["--timeout", "-1"], "--timeout must be a positive number"),
        (["--context", "east", "--cluster-name", "x"], "--cluster-name names the one cluster"),
        (["--context", "east", "--context", "east"], "--context: each context once"),
        (["--context", "north"], "no context named 'north'"),
        (["--window", "soon"], "--window must be a Prometheus duration"),
        (["--parallel", "0"], "--parallel must be between 1 and"),
        (["--all-contexts", "--context", "east"], "--all-contexts reads every context"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "east", "west")
    result = CliRunner().invoke(app, ["exporter", "--kubeconfig", str(kubeconfig), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_every_context_is_a_cluster(tmp_path: Path) -> None:
    from mlops_trace.exporter.settings import cluster_targets

    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "east", "west")
    targets = cluster_targets(LiveTarget(kubeconfig=str(kubeconfig)), (), None, all_contexts=True)
    assert [(t.name, t.live.context, t.live.namespaces) for t in targets] == [
        ("east", "east", ("fraud-serving",)), ("west", "west", ("fraud-serving",))]
    (current,) = cluster_targets(LiveTarget(kubeconfig=str(kubeconfig), all_namespaces=True), (), None)
    assert current.name == "east" and current.live.context is None and current.live.all_namespaces


def test_a_round_reads_clusters_in_parallel() -> None:
    both_started = threading.Barrier(2, timeout=10)

    def meet(settings: ExporterSettings, target: ClusterTarget) -> RunOutcome:
        both_started.wait()  # a one-at-a-time round would break the barrier after its timeout
        return RunOutcome(target.name, time.time(), 0.0, (), ())

    targets = tuple(ClusterTarget(name, LiveTarget(namespaces=("a",))) for name in ("east", "west"))
    scheduler = Scheduler(ExporterSettings(clusters=targets, parallel=2), ExporterState(), lambda line: None, run=meet)
    outcomes = scheduler.run_round(threading.Event())
    assert [(o.cluster, o.succeeded) for o in outcomes] == [("east", True), ("west", True)]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kc", _closed_port(), "east")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["exporter", "--kubeconfig", str(kubeconfig), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"mlops-trace: error: --address 127.0.0.1 --port {port}: ")
    assert "in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1
