"""`mlops-trace bundle serve` as a real process for tests: started on 127.0.0.1:0, bounded in time, its port read
from the kubeconfig it writes, and stopped by its PID (SIGTERM, then SIGKILL) however the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServedProcess:
    proc: subprocess.Popen[bytes]
    port: int
    kubeconfig: Path
    stderr: Path  # what the server printed on stderr (read it after the context ends)


@contextmanager
def bundle_server(bundle: Path, workdir: Path, *extra: str, duration: float = 60) -> Iterator[ServedProcess]:
    kubeconfig, stderr_path = workdir / "kubeconfig", workdir / "serve-stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_trace", "bundle", "serve", str(bundle), "--port", "0",
             "--kubeconfig-out", str(kubeconfig), "--duration", str(duration), *extra],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"bundle serve did not start: {stderr_path.read_text(errors='replace')}")
            time.sleep(0.05)
        port = int(kubeconfig.read_text(encoding="utf-8").split("server: http://127.0.0.1:", 1)[1].split()[0])
        yield ServedProcess(proc, port, kubeconfig, stderr_path)
    finally:
        stop_by_pid(proc)


def stop_by_pid(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
