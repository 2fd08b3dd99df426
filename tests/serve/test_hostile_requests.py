"""`bundle serve` answers every request, however broken, with a Kubernetes Status, logs it, and never prints a
traceback: reproducers on real sockets for the audit of hostile and broken inputs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_trace.serve.httpd import Response, ServeLimits
from tests.serve_process import bundle_server
from tests.serve.wire import (
    LOG_LINES,
    Running,
    assert_status,
    closed_by_server,
    connect,
    exchange,
    get,
    read_answer,
    running,
    write_bundle,
)

PODS = "/api/v1/namespaces/fraud-serving/pods"
LOG = f"{PODS}/seldon-scheduler-0/log"


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


@pytest.fixture()
def server(bundle: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[Running]:
    with running(bundle) as serving:
        yield serving
    assert "Traceback" not in capfd.readouterr().err


# --- 1. malformed selectors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "fieldSelector=foo",
        "fieldSelector=spec.bogus%3Dx",
        "fieldSelector=metadata.name%3Da%5Cq",
        "labelSelector=a%20in%20(b",
        "labelSelector==x",
        "labelSelector=%3D%3Dx",
        "labelSelector=%ZZ%FF",
        "labelSelector=%00",
        "labelSelector=a%2Cb%2C",
        "labelSelector=%E2%80%AE",
    ],
)
def test_a_malformed_selector_is_a_400_status_on_a_connection_that_stays_open(server: Running, query: str) -> None:
    with connect(server.port) as sock:
        sock.sendall(get(f"{PODS}?{query}"))
        assert_status(read_answer(sock), 400, "BadRequest")
        sock.sendall(get(f"{PODS}?labelSelector=tier%3Dcontrol"))
        listed = read_answer(sock)
    assert listed.status == 200
    assert [p["metadata"]["name"] for p in listed.json()["items"]] == ["seldon-scheduler-0"]


def test_well_formed_selectors_still_select(server: Running) -> None:
    answer = exchange(server.port, get(f"{PODS}?labelSelector=tier%20in%20(data)&fieldSelector=status.phase%3DPending"))
    assert [p["metadata"]["name"] for p in answer.json()["items"]] == ["mlserver-0"]
    # The unquoted creationTimestamp of the fixture is a datetime once loaded: it is served, not a crash.
    scheduler = exchange(server.port, get(f"{PODS}/seldon-scheduler-0")).json()
    assert scheduler["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"


# --- 2. Content-Length -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code", "reason"),
    [
        ("Content-Length: abc", 400, "BadRequest"),
        ("Content-Length: -5", 400, "BadRequest"),
        ("Content-Length: 1e3", 400, "BadRequest"),
        ("Content-Length: 0x10", 400, "BadRequest"),
        ("Content-Length: \xb2", 400, "BadRequest"),  # '²' passes str.isdigit() but is no length
        ("Content-Length: 3\r\nContent-Length: 4", 400, "BadRequest"),
        ("Content-Length: 3\r\nTransfer-Encoding: chunked", 400, "BadRequest"),
        ("Content-Length: 99999999999999999999999999999999", 413, "RequestEntityTooLarge"),
        ("Content-Length: " + "9" * 5000, 413, "RequestEntityTooLarge"),
        (f"Content-Length: {ServeLimits().max_body_bytes + 1}", 413, "RequestEntityTooLarge"),
    ],
)
def test_a_bad_content_length_is_refused_and_the_connection_closed(
    server: Running, header: str, code: int, reason: str
) -> None:
    with connect(server.port) as sock:
        sock.sendall(f"POST {PODS} HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode("iso-8859-1"))
        answer = read_answer(sock)
        assert_status(answer, code, reason)
        assert answer.headers["connection"] == "close"
        assert closed_by_server(sock)
    assert server.requests.entries == [("POST", PODS)]


# --- 3. bodies are never read ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_is_refused_at_once_without_reading_its_body(server: Running, method: str) -> None:
    with connect(server.port) as sock:
        # The body is announced but not sent: an answer can only come if the server does not wait to read it.
        sock.sendall(f"{method} {PODS}/mlserver-0 HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n".encode())
        started = time.monotonic()
        answer = read_answer(sock)
        assert time.monotonic() - started < 2
        status = assert_status(answer, 405, "MethodNotAllowed")
        assert "read-only" in status["message"] and answer.headers["allow"] == "GET, HEAD"
        assert answer.headers["connection"] == "close"


def test_an_unread_body_is_never_taken_for_the_next_request(server: Running) -> None:
    smuggled = get("/api/v1/namespaces/fraud-serving/pods/mlserver-0")
    with connect(server.port) as sock:
        sock.sendall(
            f"POST {PODS} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode() + smuggled
        )
        assert_status(read_answer(sock), 405, "MethodNotAllowed")
        assert closed_by_server(sock)
    assert server.requests.entries == [("POST", PODS)]


def test_expect_100_continue_gets_the_final_answer_not_an_invitation_to_send(server: Running) -> None:
    with connect(server.port) as sock:
        sock.sendall(f"PUT {PODS}/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n".encode())
        assert_status(read_answer(sock), 405, "MethodNotAllowed")


def test_a_get_with_a_body_is_answered_then_closed(server: Running) -> None:
    with connect(server.port) as sock:
        sock.sendall(f"GET {PODS} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode())
        assert read_answer(sock).status == 200
        assert closed_by_server(sock)


# --- 4. every method is logged and refused -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "PROPFIND", "OPTIONS", "MKCOL", "BREW"])
def test_other_methods_are_logged_and_refused_with_405(server: Running, method: str) -> None:
    target = "127.0.0.1:443" if method == "CONNECT" else PODS
    answer = exchange(server.port, get(target, method))
    status = assert_status(answer, 405, "MethodNotAllowed")
    assert method in status["message"]
    assert server.requests.entries == [(method, target)]


def test_head_is_served_without_a_body(server: Running) -> None:
    with connect(server.port) as sock:
        sock.sendall(get(PODS, "HEAD"))
        answer = read_answer(sock, head_only=True)
        assert answer.status == 200 and int(answer.headers["content-length"]) > 0
        sock.sendall(get("/version"))  # nothing of a body came before this answer
        assert read_answer(sock).json()["major"] == "1"


@pytest.mark.parametrize(
    ("raw", "code", "logged"),
    [
        (b"G@T /api HTTP/1.1\r\nHost: x\r\n\r\n", 400, ("G@T", "/api")),
        (b"GARBAGE\r\n\r\n", 400, ("-", "GARBAGE")),
        (b"GET /api HTTP/9.x\r\n\r\n", 400, ("-", "GET%20/api%20HTTP/9.x")),
        (b"GET /api HTTP/2.0\r\n\r\n", 505, ("-", "GET%20/api%20HTTP/2.0")),
        (b"GET /api FOO HTTP/1.1\r\n\r\n", 400, ("-", "GET%20/api%20FOO%20HTTP/1.1")),
        (b"GET /api\r\n\r\n", 400, ("GET", "/api")),  # HTTP/0.9
        (b"   \r\n\r\n", 400, ("-", "%20%20%20")),
        (b"GET /api HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, ("GET", "/api")),
        (b"GET /api HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, ("GET", "/api")),
        (b"GET /\x1b[31mred\x7f HTTP/1.1\r\n\r\n", 404, ("GET", "/%1B[31mred%7F")),
    ],
)
def test_malformed_requests_get_a_status_and_a_log_line(
    server: Running, raw: bytes, code: int, logged: tuple[str, str]
) -> None:
    answer = exchange(server.port, raw)
    assert answer.status == code
    assert answer.json()["kind"] == "Status" and answer.json()["code"] == code
    assert server.requests.entries == [logged]


def test_a_request_line_over_64_kib_is_414(server: Running) -> None:
    answer = exchange(server.port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
    assert_status(answer, 414, "RequestURITooLong")
    [(verb, path)] = server.requests.entries
    assert verb == "-" and len(path) < 300


# --- handler faults ----------------------------------------------------------------------------------------------


class FaultyApi:
    """Raises on /boom, as a bug in a route would; answers everything else."""

    def reads_body(self, method: str, raw_path: str) -> bool:
        return False

    def handle(self, method: str, raw_path: str, accept: str = "", body: bytes = b"") -> Response:
        if raw_path.startswith("/boom"):
            raise RuntimeError("injected fault\nwith a second line")
        return Response(200, b"{}")


def test_a_fault_in_the_handler_is_a_500_status_and_one_line_on_stderr(
    bundle: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with running(bundle, api=FaultyApi()) as server:
        with connect(server.port) as sock:
            sock.sendall(get("/boom?x=1"))
            status = assert_status(read_answer(sock), 500, "InternalError")
            assert "injected" not in status["message"]  # details go to the server's log, not to the client
            sock.sendall(get("/fine"))  # the connection survives the fault
            assert read_answer(sock).status == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlops-trace: bundle serve: 500 for GET /boom?x=1: RuntimeError: injected fault with")


# --- query values and paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "tailLines=abc",
        "tailLines=-1",
        "tailLines=1.5",
        "tailLines=" + "9" * 5000,
        f"tailLines={2**63}",
        "limitBytes=0",
        "limitBytes=-3",
        "limitBytes=%EF%BC%95",  # a full-width digit
        "limitBytes=" + "9" * 30,
    ],
)
def test_bad_log_parameters_are_400(server: Running, query: str) -> None:
    assert_status(exchange(server.port, get(f"{LOG}?container=scheduler&{query}")), 400, "BadRequest")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"tailLines={2**63 - 1}", "".join(line + "\n" for line in LOG_LINES)),
        ("tailLines=0", ""),
        ("tailLines=2", "line 9\nline 10\n"),
        ("limitBytes=9", "line 1\nli"),
        (f"limitBytes={2**63 - 1}&tailLines=1", "line 10\n"),
    ],
)
def test_large_and_small_log_parameters_are_served(server: Running, query: str, expected: str) -> None:
    answer = exchange(server.port, get(f"{LOG}?container=scheduler&{query}"))
    assert answer.status == 200 and answer.body.decode() == expected


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        (f"{PODS}/../pods", 400, "BadRequest"),
        (f"{PODS}/%2e%2e/x", 400, "BadRequest"),
        ("/api/v1/namespaces/./pods", 400, "BadRequest"),
        (f"{PODS}/seldon-scheduler-0%2F..%2F..%2Fetc", 404, "NotFound"),
        (f"{PODS}/mlserver%2F0", 404, "NotFound"),
        (f"{PODS}/seldon-scheduler-0%2Flog", 404, "NotFound"),
        ("/api/v1/namespaces/fraud-serving/services/seldon-scheduler:80", 404, "NotFound"),
        (f"{PODS}/seldon-scheduler-0/exec", 404, "NotFound"),
        (f"{PODS}/seldon-envoy-abc:9901/proxy/..%2F..%2Fkube%2Fobjects.yaml", 404, "NotFound"),
        (f"{PODS}/seldon-envoy-abc:9901/proxy/kube%2Fobjects.yaml", 404, "NotFound"),
        ("/api/v1/namespaces/fraud-serving/pods/%ZZ", 404, "NotFound"),
        ("http://[::1/api", 400, "BadRequest"),
        ("*", 404, "NotFound"),
    ],
)
def test_odd_paths_are_400_or_404(server: Running, path: str, code: int, reason: str) -> None:
    assert_status(exchange(server.port, get(path)), code, reason)


def test_a_pod_name_with_a_port_is_only_read_by_the_proxy(server: Running) -> None:
    dump = exchange(server.port, get(f"{PODS}/https:seldon-envoy-abc:9901/proxy/config_dump"))
    assert dump.status == 200 and dump.json()["configs"]
    assert exchange(server.port, get(f"{PODS}/seldon-scheduler-0:80")).status == 404


# --- the CLI process ---------------------------------------------------------------------------------------------


def test_the_cli_server_logs_every_request_and_prints_no_traceback(bundle: Path, tmp_path: Path) -> None:
    request_log = tmp_path / "requests.log"
    with bundle_server(bundle, tmp_path, "--request-log", str(request_log)) as served:
        port = served.port
        sent = [
            (get(f"{PODS}?fieldSelector=foo"), 400),
            (get(PODS, "CONNECT"), 405),
            (get(PODS, "TRACE"), 405),
            (get(PODS, "PROPFIND"), 405),
            (f"POST {PODS} HTTP/1.1\r\nContent-Length: abc\r\n\r\n".encode(), 400),
            (f"POST {PODS} HTTP/1.1\r\nContent-Length: -1\r\n\r\n".encode(), 400),
            (f"POST {PODS} HTTP/1.1\r\nContent-Length: {10**12}\r\n\r\n".encode(), 413),
            (get(f"{LOG}?tailLines={'9' * 5000}"), 400),
            (b"GARBAGE\r\n\r\n", 400),
        ]
        for raw, code in sent:
            assert exchange(port, raw).status == code
    stderr_path = served.stderr
    assert "Traceback" not in stderr_path.read_text()
    verbs = [line.split(" ", 1)[0] for line in request_log.read_text().splitlines()]
    assert verbs == ["GET", "CONNECT", "TRACE", "PROPFIND", "POST", "POST", "POST", "GET", "-"]


def test_json_of_the_status_matches_the_api_server_shape(server: Running) -> None:
    body = exchange(server.port, get(f"{PODS}?fieldSelector=foo")).body
    status = json.loads(body)
    assert set(status) == {"kind", "apiVersion", "metadata", "status", "message", "reason", "code"}
    assert status["message"] == "invalid selector: 'foo'; can't understand 'foo'"
