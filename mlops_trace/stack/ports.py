"""Free ports on 127.0.0.1, and what the kernel says is listening (/proc/net/tcp), for start-up and `stack down`."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mlops_trace.errors import MlopsTraceError

_LISTEN = "0A"


class StackError(MlopsTraceError):
    """A component of the stack could not be set up, started or stopped."""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago (all bound at once, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def listening_ports() -> set[int]:
    """Local ports in LISTEN state, IPv4 and IPv6, from the kernel's tables."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii", errors="replace").splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[3] == _LISTEN:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], bool] | None = None,
             log: str | None = None, interval: float = 0.1) -> None:
    """Poll `check` until it holds; a one-line StackError naming the component when it does not in time, or at
    once when its process died."""
    from mlops_trace.stack.procs import tail

    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and not alive():
            detail = tail(log) if log else ""
            raise StackError(f"{what} exited during start-up" + (f" (log {log}: {detail})" if log else ""))
        if time.monotonic() >= deadline:
            detail = tail(log) if log else ""
            raise StackError(f"{what} not ready after {timeout:g}s" + (f" (log {log}: {detail})" if log else ""))
        time.sleep(interval)


def still_listening(ports: Iterable[int]) -> list[int]:
    listening = listening_ports()
    return sorted(p for p in ports if p in listening)
