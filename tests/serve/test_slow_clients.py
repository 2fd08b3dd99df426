"""`bundle serve` under many and slow clients: a burst waits in the accept queue instead of being dropped, a client
that trickles its request is cut off, idle and excess connections are bounded, and stopping never waits on a client."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

import pytest

from mlops_trace.serve.httpd import ServeLimits
from tests.serve_process import bundle_server
from tests.serve.wire import assert_status, closed_by_server, connect, exchange, get, read_answer, running, write_bundle

QUICK = ServeLimits(idle_seconds=5.0, head_seconds=1.0, linger_seconds=0.5)


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


def _trickle(sock: socket.socket, data: bytes, every: float, within: float) -> tuple[bytes, float]:
    """Send `data` one byte every `every` seconds until the server answers or closes; (what came back, seconds)."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > within:
            break
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            break
    sock.settimeout(max(0.1, within - (time.monotonic() - started)))
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received, time.monotonic() - started


def test_a_client_sending_one_byte_at_a_time_is_cut_off_while_others_are_served(
    bundle: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    request = get("/api/v1/pods") + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
    with running(bundle, QUICK) as server, connect(server.port, timeout=10) as slow:
        result: dict[str, float] = {}

        def other_client() -> None:
            time.sleep(0.3)  # while the slow client holds its connection
            started = time.monotonic()
            assert exchange(server.port, get("/api/v1/pods")).status == 200
            result["seconds"] = time.monotonic() - started

        other = threading.Thread(target=other_client)
        other.start()
        # Each pause (0.2 s) is far below the idle timeout: only a deadline on the whole head cuts this client off.
        received, seconds = _trickle(slow, request, every=0.2, within=10)
        other.join(10)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b'"reason": "Timeout"' in received
    assert QUICK.head_seconds <= seconds < QUICK.head_seconds + 3
    assert result["seconds"] < 1.0
    assert "Traceback" not in capfd.readouterr().err


def test_an_idle_connection_is_closed_after_the_idle_timeout(bundle: Path) -> None:
    limits = ServeLimits(idle_seconds=0.5, head_seconds=1.0)
    with running(bundle, limits) as server, connect(server.port) as sock:
        sock.sendall(get("/version"))
        assert read_answer(sock).status == 200
        started = time.monotonic()
        assert closed_by_server(sock, within=5)
        assert time.monotonic() - started < 3


def test_connections_beyond_the_limit_get_503_and_the_slots_come_back(bundle: Path) -> None:
    limits = ServeLimits(max_connections=2, head_seconds=30.0)
    with running(bundle, limits) as server:
        holders = [connect(server.port) for _ in range(2)]
        try:
            for holder in holders:
                holder.sendall(b"GET /api HTTP/1.1\r\n")  # a head that never ends
            time.sleep(0.3)
            assert_status(exchange(server.port, get("/version")), 503, "ServiceUnavailable")
        finally:
            for holder in holders:
                holder.close()
        deadline = time.monotonic() + 5
        while exchange(server.port, get("/version")).status != 200:
            assert time.monotonic() < deadline, "the slots of closed connections were not given back"
            time.sleep(0.05)


def connect_later() -> socket.socket:
    """A socket to connect once the server's port is known."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    return sock


def test_stopping_does_not_wait_for_a_slow_client(bundle: Path) -> None:
    limits = ServeLimits(head_seconds=60.0, idle_seconds=60.0)
    with connect_later() as holder:
        with running(bundle, limits) as server:
            holder.connect(("127.0.0.1", server.port))
            holder.sendall(b"GET /api HTTP/1.1\r\n")
            time.sleep(0.2)
            started = time.monotonic()
        assert time.monotonic() - started < 3
        assert closed_by_server(holder, within=2)


def test_a_hundred_concurrent_clients_are_all_answered_quickly(bundle: Path, tmp_path: Path) -> None:
    """The CLI server (its real backlog and threads): a burst of clients all get a 200 within a bound. With the old
    backlog of 5, connections beyond the queue were dropped and retried by the kernel 1, 3, 7... seconds later."""
    with bundle_server(bundle, tmp_path, duration=120) as served:
        port = served.port
        clients = 100
        start = threading.Barrier(clients)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            start.wait(10)
            started = time.monotonic()
            try:
                for path in ("/api/v1/namespaces/fraud-serving/pods", "/api"):
                    answer = exchange(port, get(path, headers="Connection: close\r\n"), timeout=20)
                    assert answer.status == 200
            except (OSError, AssertionError) as exc:
                with lock:
                    failures.append(f"{index}: {exc!r}")
                return
            with lock:
                latencies.append(time.monotonic() - started)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        wall = time.monotonic() - began
    stderr = served.stderr.read_bytes()
    assert failures == []
    assert len(latencies) == clients
    # A dropped SYN is retried after 1 s, then 3 s: a client dropped twice would take over 3 s.
    assert max(latencies) < 3.0, sorted(latencies)[-5:]
    assert wall < 15
    assert b"Traceback" not in stderr
