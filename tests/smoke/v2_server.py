"""A tiny Open Inference Protocol (V2) endpoint for the smoke tests, run as its own process on 127.0.0.1.

It answers `GET /v2/models/<name>` with metadata and `POST /v2/models/<name>/infer` with a prediction, naming the
serving model in `x-seldon-route` like Seldon's Envoy does, cycling through `--routes` (e.g. `a_1:7,b_1:3` answers
7 of every 10 requests from a_1). It prints `PORT <n>` once listening and exits by itself after `--lifetime`
seconds, so a test that dies cannot leave it behind; tests stop it earlier by PID.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _cycle(spec: str) -> itertools.cycle[str]:
    names: list[str] = []
    for part in spec.split(","):
        name, _, count = part.partition(":")
        names += [name] * int(count or "1")
    return itertools.cycle(names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", default="model_1:1")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--lifetime", type=float, default=60.0)
    options = parser.parse_args()
    routes = _cycle(options.routes)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
            return

        def _send(self, status: int, body: Mapping[str, object], headers: Mapping[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            name = self.path.rstrip("/").rsplit("/", 1)[-1]
            self._send(200, {"name": name, "platform": "", "inputs": [
                {"name": "features", "datatype": "FP32", "shape": [1, 4]}]}, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if options.status != 200:
                self._send(options.status, {"error": "injected failure"}, {})
                return
            with lock:
                route = next(routes)
            headers = {"x-seldon-route": f":{route}:", "x-envoy-upstream-service-time": "1",
                       "x-request-id": self.headers.get("x-request-id", "")}
            body = {"model_name": route, "model_version": "1", "id": self.headers.get("x-request-id", ""),
                    "outputs": [{"name": "predict", "datatype": "FP32", "shape": [1, 1], "data": [0.5]}]}
            self._send(200, body, headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    time.sleep(options.lifetime)
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
