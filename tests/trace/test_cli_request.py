"""`mlops-trace request` as a user runs it: a real process against a small V2 server on 127.0.0.1, exit codes
0 (answered), 1 (failed, explained), 2 (could not run, one line naming the endpoint), never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

METADATA = {"name": "iris_1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4]}]}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v2/models/iris":
            self._reply(200, json.dumps(METADATA).encode(), {"content-type": "application/json"})
        else:
            self._reply(404, b"", {"server": "envoy"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/v2/models/iris/infer":
            self._reply(
                200,
                b'{"model_name":"iris_1","outputs":[]}',
                {
                    "x-seldon-route": ":iris_1:",
                    "x-envoy-upstream-service-time": "2",
                    "x-request-id": self.headers.get("x-request-id", ""),
                },
            )
        else:
            self._reply(404, b"", {"server": "envoy"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "request", "--no-stack", "--probes", "0", "--log-wait", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def test_answered_request_exits_0_with_the_json_contract(server: str) -> None:
    proc = _run("--url", server, "--model", "iris", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(proc.stdout)
    assert trace["status"] == 200 and trace["route"] == ":iris_1:" and trace["served_model"] == "iris_1"
    assert trace["request_id"].startswith("mt-")
    assert [hop["hop"] for hop in trace["hops"]] == [1, 2, 3, 4, 5, 6, 7]
    for hop in trace["hops"]:
        assert {"hop", "name", "component", "duration_ms", "source", "evidence"} <= set(hop)
        assert hop["duration_ms"] is not None or hop["untimed_reason"]
    timed = sum(hop["duration_ms"] or 0.0 for hop in trace["hops"])
    assert abs(timed + trace["unexplained_ms"] - trace["total_ms"]) < 0.01


def test_failed_request_exits_1_and_is_explained(server: str) -> None:
    proc = _run("--url", server, "--model", "nothere", "-o", "table")
    assert proc.returncode == 1
    # Without a bundle or cluster there is nothing for the checks to judge by: the hop and the answer are all it says.
    assert "failed at hop 4" in proc.stdout and "no-route" in proc.stdout and "MT302" not in proc.stdout


def test_unreachable_endpoint_exits_2_with_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _run("--url", f"http://127.0.0.1:{port}", "--model", "iris")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("--model", "a", "--experiment", "b"),
        ("--protocol", "soap", "--model", "a"),
        ("--model", "a", "--count", "-1"),
        ("--model", "a", "-o", "xml"),
    ],
)
def test_bad_arguments_exit_2(server: str, args: tuple[str, ...]) -> None:
    proc = _run("--url", server, *args)
    assert proc.returncode == 2 and proc.stderr.startswith("mlops-trace: error:")


def test_count_run_exits_0_and_reports_percentiles(server: str) -> None:
    proc = _run("--url", server, "--model", "iris", "--count", "20", "--concurrency", "4", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["count"] == 20 and summary["success_rate"] == 1.0
    assert set(summary["latency_ms"]) >= {"p50", "p95", "p99"}
    assert summary["split"] is None
