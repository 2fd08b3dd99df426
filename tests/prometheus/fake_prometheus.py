"""A fake Prometheus HTTP API on 127.0.0.1 for the client tests: `/api/v1/query` answers from a table of PromQL
texts, `/api/v1/targets` from a list; every request is recorded (path, query, headers) for the assertions.

prometheus-api-client speaks through `requests`, which respx (an httpx mock) cannot intercept, so the client is
tested against this real loopback server instead: the same bytes on the wire as against a real Prometheus.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = Callable[[str], Any]  # PromQL -> data.result, or raise KeyError for "unknown"


@dataclass
class FakePrometheus:
    answers: dict[str, Any] = field(default_factory=dict)
    fallback: Answer | None = None
    targets: list[dict[str, Any]] | None = None
    token: str | None = None
    basic: tuple[str, str] | None = None
    status: int = 200  # force every query to answer this status
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if self.token is not None:
            return given == f"Bearer {self.token}"
        if self.basic is not None:
            expected = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return given == f"Basic {expected}"
        return True

    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        promql = query.get("query", [""])[0]
        self.seen.append({"path": path, "query": promql, "headers": headers})
        if not self._authorized(headers):
            return 401, {"status": "error", "errorType": "unauthorized", "error": "bad credentials"}
        if path == "/api/v1/targets":
            if self.targets is None:
                return 404, {"status": "error", "error": "not found"}
            return 200, {"status": "success", "data": {"activeTargets": self.targets, "droppedTargets": []}}
        if path != "/api/v1/query":
            return 404, {"status": "error", "error": "not found"}
        if self.status != 200:
            return self.status, {"status": "error", "errorType": "internal", "error": "injected"}
        if promql in self.answers:
            result = self.answers[promql]
        elif self.fallback is not None:
            try:
                result = self.fallback(promql)
            except KeyError:
                return 400, {"status": "error", "errorType": "bad_data", "error": f"unknown query {promql}"}
        else:
            return 400, {"status": "error", "errorType": "bad_data", "error": f"unknown query {promql}"}
        kind = "scalar" if result and not isinstance(result[0], dict) else "vector"
        return 200, {"status": "success", "data": {"resultType": kind, "result": result}}


@contextmanager
def serving(fake: FakePrometheus) -> Iterator[FakePrometheus]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake.handle(parts.path, parse_qs(parts.query), headers)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def vector(*rows: tuple[dict[str, str], float | str]) -> list[dict[str, Any]]:
    return [{"metric": labels, "value": [1767225600.0, str(value)]} for labels, value in rows]
