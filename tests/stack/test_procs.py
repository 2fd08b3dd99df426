"""Processes are stopped by PID and start time, never a process that reused the PID; ports come from the kernel."""

from __future__ import annotations

import socket
import sys
from dataclasses import replace
from pathlib import Path

from mlops_trace.stack import ports, procs


def test_start_and_stop(tmp_path: Path) -> None:
    record = procs.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "s.log")
    try:
        assert procs.alive(record)
        impostor = replace(record, start_ticks=record.start_ticks + 1)
        assert not procs.alive(impostor)
        assert procs.stop([impostor]) == []
        assert procs.alive(record)
    finally:
        assert procs.stop([record], timeout=5) == []
    assert not procs.alive(record)


def test_ports() -> None:
    chosen = ports.free_ports(5)
    assert len(set(chosen)) == 5
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert port in ports.listening_ports()
        assert ports.port_open(port)
        assert ports.still_listening([port, chosen[0]]) == [port]
    finally:
        server.close()
    assert port not in ports.listening_ports()
