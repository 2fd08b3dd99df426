"""Ctrl-C during a run over several clusters: the clusters are read in worker threads, which the signal does not reach;
the run must still stop at once, exit 2 and leave no temporary bundle behind, even when every API server hangs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixture_walk import REPO
from tests.fleet.served_fleet import fleet_kubeconfig


@contextmanager
def silent_server(expected: int) -> Iterator[tuple[int, threading.Event]]:
    """An API server on 127.0.0.1 that accepts and never answers; the event is set once `expected` clients hang."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    hanging = threading.Event()
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)
            if len(held) >= expected:
                hanging.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), hanging
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def test_ctrl_c_stops_every_cluster_at_once_and_cleans_up(tmp_path: Path) -> None:
    with silent_server(expected=2) as (port, hanging):
        url = f"http://127.0.0.1:{port}"
        kubeconfig = fleet_kubeconfig({"east": url, "west": url}, {}, tmp_path / "kubeconfig")
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_trace", "doctor", "--kubeconfig", str(kubeconfig), "--all-contexts", "-A",
             "--request-timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "TMPDIR": str(scratch)},
        )
        try:
            assert hanging.wait(60), "both clusters should be waiting on the silent server"
            assert proc.poll() is None
            sent = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert proc.returncode == 2
    assert "interrupted: the run did not complete" in stderr
    assert "Traceback" not in stderr
    assert took < 10, f"the run took {took:.1f} s to stop (the calls wait up to 60 s)"
    assert sorted(p.name for p in scratch.iterdir()) == []
