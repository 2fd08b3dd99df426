"""Test helpers for `bundle serve` on real sockets: a small bundle, the server run in-process on 127.0.0.1 for a bounded
time, and raw HTTP/1.1 exchanges (so a test can send what no HTTP client library would)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_trace.serve.httpd import Api, BundleHTTPServer, ServeLimits, serving
from mlops_trace.serve.server import BundleApi, ServedBundle
from mlops_trace.snapshot.bundle import open_bundle

OBJECTS = """apiVersion: v1
kind: Pod
metadata:
  name: seldon-scheduler-0
  namespace: fraud-serving
  labels: {app.kubernetes.io/name: seldon-scheduler, tier: control}
  creationTimestamp: 2024-05-01T10:00:00Z
spec: {containers: [{name: scheduler}], nodeName: node-a}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata:
  name: mlserver-0
  namespace: fraud-serving
  labels: {app.kubernetes.io/name: mlserver, tier: data}
spec: {containers: [{name: mlserver}]}
status: {phase: Pending}
---
apiVersion: v1
kind: Service
metadata: {name: seldon-scheduler, namespace: fraud-serving}
"""

LOG_LINES = [f"line {i}" for i in range(1, 11)]
DUMP = {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}]}


def write_bundle(root: Path) -> Path:
    """A bundle with two pods, a service, a scheduler log, and an Envoy config_dump and stats."""
    (root / "kube").mkdir(parents=True)
    (root / "kube" / "objects.yaml").write_text(OBJECTS, encoding="utf-8")
    log_dir = root / "logs" / "fraud-serving" / "seldon-scheduler-0"
    log_dir.mkdir(parents=True)
    (log_dir / "scheduler.log").write_text("".join(line + "\n" for line in LOG_LINES), encoding="utf-8")
    envoy_dir = root / "envoy" / "fraud-serving" / "seldon-envoy-abc"
    envoy_dir.mkdir(parents=True)
    (envoy_dir / "config_dump.json").write_text(json.dumps(DUMP), encoding="utf-8")
    (envoy_dir / "stats.txt").write_text("cluster.a.upstream_rq_total: 3\n", encoding="utf-8")
    return root


@dataclass
class RequestLog:
    """What the server recorded, as (verb, path) pairs."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, method: str, path: str) -> None:
        with self.lock:
            self.entries.append((method, path))


@dataclass
class Running:
    server: BundleHTTPServer
    requests: RequestLog

    @property
    def port(self) -> int:
        return self.server.port


@contextmanager
def running(bundle: Path, limits: ServeLimits | None = None, api: Api | None = None) -> Iterator[Running]:
    """The server over `bundle` on a free port, in this process, stopped (with every connection shut) at the end."""
    requests = RequestLog()
    with open_bundle(bundle) as snap:
        server = BundleHTTPServer(0, requests, limits)
        server.api = api or BundleApi(ServedBundle.build(snap), f"127.0.0.1:{server.port}")
        with serving(server):
            yield Running(server, requests)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_answer(sock: socket.socket, head_only: bool = False) -> Answer:
    """One HTTP response from `sock` (status line, headers, a body of Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full answer: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), status_line
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(int(status_line.split()[1]), headers, rest[:length])


def closed_by_server(sock: socket.socket, within: float = 5.0) -> bool:
    """Whether the server ends the connection (EOF, or a reset) within `within` seconds, reading nothing more."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> Answer:
    """Send `raw` on a new connection and read one answer."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def get(path: str, method: str = "GET", headers: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()


def assert_status(answer: Answer, code: int, reason: str) -> dict[str, Any]:
    """`answer` is a Kubernetes `kind: Status` failure with this code and reason; returns it."""
    assert answer.status == code, (answer.status, answer.body)
    assert answer.headers.get("content-type") == "application/json"
    status: dict[str, Any] = answer.json()
    assert {k: status[k] for k in ("kind", "apiVersion", "status", "reason", "code")} == {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
    }
    assert isinstance(status["message"], str) and status["message"]
    return status


def wait_until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
