"""Shared plumbing of the stack's own long-running processes (scheduler, agent, controller, kubeview): read the
JSON config named on the command line, stop cleanly on SIGTERM/SIGINT, and exchange JSON lines over TCP."""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def load_config(argv: list[str] | None = None) -> dict[str, Any]:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m mlops_trace.stack.<component> CONFIG.json")
    data = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"{args[0]}: not a JSON object")
    return data


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so loops can end and close their files."""
    stop = threading.Event()

    def _handler(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


class LineReader:
    """JSON messages, one per line, from a socket; None at the end of the stream or on a broken connection."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("r", encoding="utf-8")

    def read(self) -> dict[str, Any] | None:
        try:
            line = self._file.readline()
        except (OSError, ValueError):
            return None
        if not line:
            return None
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None


def serve_lines(port: int, handler: Callable[[socket.socket], None], stop: threading.Event) -> socket.socket:
    """Listen on 127.0.0.1:port and run `handler` in a thread per connection."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    server.settimeout(0.5)

    def _accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=_accept, daemon=True).start()
    return server
