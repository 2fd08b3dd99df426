"""Tests for the nginx error-log parser (mlops_trace.parsers.nginx_error). Lines are real pastes from public issues
(source above each); the identifying text is kept, addresses and hosts are our own."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_trace.parsers import logs, nginx_access
from mlops_trace.parsers.nginx_error import StatusCause, iter_records, parse_line, status_cause

DATA = Path(__file__).parent / "data"

# The shape the task names, with its own values.
PREMATURELY_CLOSED = (
    "2021/03/27 01:58:00 [error] 318#318: *75161 upstream prematurely closed connection while reading response "
    'header from upstream, client: 10.0.0.1, server: ml.example.com, request: "POST /v2/models/x/infer HTTP/2.0", '
    'upstream: "http://10.1.2.3:9000/v2/models/x/infer", host: "ml.example.com"'
)


def test_upstream_prematurely_closed_connection() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/12285
    record = parse_line(3, PREMATURELY_CLOSED + "\n")
    assert record is not None
    assert record.lineno == 3
    assert record.raw == PREMATURELY_CLOSED
    assert record.time == datetime(2021, 3, 27, 1, 58, 0)
    assert (record.level, record.pid, record.tid, record.connection) == ("error", 318, 318, 75161)
    assert record.message == "upstream prematurely closed connection while reading response header from upstream"
    assert record.errno is None and record.errno_text is None
    assert (record.client, record.server, record.host) == ("10.0.0.1", "ml.example.com", "ml.example.com")
    assert record.request == "POST /v2/models/x/infer HTTP/2.0"
    assert (record.method, record.path, record.protocol) == ("POST", "/v2/models/x/infer", "HTTP/2.0")
    assert record.upstream == "http://10.1.2.3:9000/v2/models/x/infer"
    assert record.referrer is None
    assert dict(record.context) == {}
    assert record.cause == StatusCause(502, "upstream-closed", record.cause.summary if record.cause else "")


def test_upstream_timed_out_while_connecting_with_referrer() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/9443
    line = (
        "2023/03/08 16:06:19 [error] 31#31: *2359 upstream timed out (110: Operation timed out) while connecting to "
        'upstream, client: 10.0.0.9, server: ml.example.com, request: "GET /favicon.ico HTTP/1.1", upstream: '
        '"https://10.1.2.3:8443/favicon.ico", host: "ml.example.com", referrer: "https://ml.example.com/"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert (record.errno, record.errno_text) == (110, "Operation timed out")
    assert record.message == "upstream timed out (110: Operation timed out) while connecting to upstream"
    assert record.referrer == "https://ml.example.com/"
    assert record.cause is not None and (record.cause.status, record.cause.cause) == (504, "upstream-timeout")


def test_upstream_timed_out_while_reading_response_header_without_context() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/9063 (the paste stops after the message)
    line = (
        "2022/09/18 10:00:00 [error] 117#117: *16706 upstream timed out (110: Operation timed out) while reading "
        "response header from upstream"
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.client is None and record.request is None and record.method is None
    assert record.cause is not None and record.cause.status == 504


def test_connect_failed_connection_refused() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/5734
    line = (
        "2020/06/17 15:42:54 [error] 37#37: *248 connect() failed (111: Connection refused) while connecting to "
        'upstream, client: 10.0.0.5, server: ml.example.com, request: "GET / HTTP/1.1", upstream: '
        '"http://127.0.0.1:8181/", host: "ml.example.com"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert (record.errno, record.errno_text) == (111, "Connection refused")
    assert record.upstream == "http://127.0.0.1:8181/"
    assert record.cause is not None and (record.cause.status, record.cause.cause) == (502, "connection-refused")


def test_stream_module_line_has_bytes_and_no_request() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/6919 (TCP services)
    line = (
        "2021/03/02 05:32:30 [error] 37#37: *271101 connect() failed (111: Connection refused) while connecting to "
        'upstream, client: 10.0.0.42, server: 0.0.0.0:9009, upstream: "10.1.2.225:9009", bytes from/to client:0/0, '
        "bytes from/to upstream:0/0"
    )
    record = parse_line(1, line)
    assert record is not None
    assert (record.server, record.upstream, record.request) == ("0.0.0.0:9009", "10.1.2.225:9009", None)
    assert dict(record.context) == {"bytes from/to client": "0/0", "bytes from/to upstream": "0/0"}


def test_context_with_a_comma_lost_in_the_paste() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/9877: the paste lost the comma after `client: ...` when
    # its author masked the client and server by hand
    line = (
        "2023/04/17 20:24:55 [error] 397#397: *56382572 upstream prematurely closed connection while reading "
        'response header from upstream, client: 10.0.0.3 server: ml.example.com, request: "POST /api/token HTTP/1.1",'
        ' upstream: "http://10.1.2.3:9000/api/token", host: "ml.example.com"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert (record.client, record.server) == ("10.0.0.3", "ml.example.com")
    assert record.path == "/api/token"


def test_start_up_line_without_connection_or_context() -> None:
    # https://github.com/kubernetes/kubernetes/pull/123874 (behind `kubectl logs --prefix`)
    record = parse_line(
        1,
        "[pod/ingress-nginx-controller-5c8d66c76d-x2x9q/controller] 2024/03/07 21:10:16 [notice] 1#1: "
        'using the "epoll" event method',
    )
    assert record is not None
    assert (record.level, record.connection, record.message) == ("notice", None, 'using the "epoll" event method')
    assert dict(record.source) == {"pod": "ingress-nginx-controller-5c8d66c76d-x2x9q", "container": "controller"}
    assert record.cause is None


def test_prefixes_and_indentation() -> None:
    # https://github.com/kubernetes-retired/contrib/issues/2363 (indented paste) and
    # https://github.com/mysticaltech/terraform-hcloud-kube-hetzner/issues/1464 (pod name before the line)
    indented = parse_line(1, "    " + PREMATURELY_CLOSED)
    assert indented is not None and indented.connection == 75161
    named = parse_line(2, "ingress-nginx-controller-5876c489c5-k9pwp " + PREMATURELY_CLOSED)
    assert named is not None and dict(named.source) == {"pod": "ingress-nginx-controller-5876c489c5-k9pwp"}
    stamped = parse_line(3, "2021-03-27T01:58:00.456789Z " + PREMATURELY_CLOSED)
    assert stamped is not None and stamped.time == datetime(2021, 3, 27, 1, 58, 0, 456789, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "status", "cause"),
    [
        (
            "upstream timed out (110: Connection timed out) while reading response header from upstream",
            504,
            "upstream-timeout",
        ),
        ("connect() failed (110: Connection timed out) while connecting to upstream", 504, "upstream-timeout"),
        ("upstream timed out (110: Operation timed out) while sending request to upstream", 504, "upstream-timeout"),
        ("upstream prematurely closed connection while reading response header from upstream", 502, "upstream-closed"),
        ("connect() failed (111: Connection refused) while connecting to upstream", 502, "connection-refused"),
        (
            "recv() failed (104: Connection reset by peer) while reading response header from upstream",
            502,
            "connection-reset",
        ),
        ("connect() failed (113: No route to host) while connecting to upstream", 502, "no-route"),
        ("no live upstreams while connecting to upstream", 502, "no-live-upstreams"),
        ("upstream sent too big header while reading response header from upstream", 502, "bad-upstream-header"),
        (
            (
                "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) "
                "while SSL handshaking to upstream"
            ),
            502,
            "upstream-tls",
        ),
        ("client intended to send too large body: 10485761 bytes", 413, "body-too-large"),
    ],
)
def test_status_cause(message: str, status: int, cause: str) -> None:
    found = status_cause(message)
    assert found is not None
    assert (found.status, found.cause) == (status, cause)
    assert found.summary


@pytest.mark.parametrize(
    "message",
    [
        "upstream prematurely closed connection while reading upstream",  # the answer had already begun
        "recv() failed (104: Connection reset by peer) while sending to client",
        "client prematurely closed connection while reading client request body",
        'using the "epoll" event method',
        "",
    ],
)
def test_no_status_cause(message: str) -> None:
    assert status_cause(message) is None


def test_controller_log_lines_each_go_to_their_own_parser() -> None:
    # ingress-nginx interleaves access lines, error lines and klog lines in one container log
    text = (DATA / "ingress_nginx_controller.log").read_text()
    numbered = list(enumerate(text.splitlines(), start=1))
    errors = list(iter_records(numbered))
    accesses = list(nginx_access.iter_records(numbered))
    assert [(record.lineno, record.level) for record in errors] == [(7, "notice"), (9, "error"), (11, "error")]
    assert [record.lineno for record in accesses] == [8, 10, 12]
    assert [record.status for record in accesses] == [200, 504, 502]
    causes = [record.cause.status if record.cause else None for record in errors]
    assert causes == [None, 504, 502]
    # the same lines through the container log parser: error lines are errors, klog lines klog, access lines text
    records = {record.lineno: record for record in logs.iter_records(numbered)}
    assert records[7].level == "info" and records[7].fields["pid"] == "27"
    assert records[9].level == "error" and records[9].fields["upstream"] == "http://10.1.2.3:9000/v2/models/iris/infer"
    assert records[9].fields["errno"] == "110" and records[9].fields["path"] == "/v2/models/iris/infer"
    assert logs.message_contains(records[11], "upstream prematurely closed connection")
    assert records[5].fields["caller"] == "main.go:205" and records[13].level == "error"
    assert records[8].level is None and records[8].message.startswith("10.0.0.9 - - [08/Mar/2023")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        'I0712 18:30:09.123456       7 controller.go:190] "Configuration changes detected, backend reload required"',
        '10.0.0.1 - - [12/Jul/2025:18:30:09 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 1 0.1 [a] [] - - - - -',
        "2021/03/27 01:58:00 [bogus] 1#1: x",
        "2021/03/27 01:58:00 [error] x#1: y",
        "2021/13/45 99:99:99 [error] 1#1: odd time",
    ],
)
def test_other_lines_give_none_or_degrade(line: str) -> None:
    record = parse_line(1, line)
    if line.startswith("2021/13/45"):
        assert record is not None and record.time is None
    else:
        assert record is None


def test_random_garbage_never_raises() -> None:
    generator = random.Random(502)
    alphabet = '0123456789 ,:"()*#[]/abcerrorclientupstream\\x'
    prefix = "2021/03/27 01:58:00 [error] 318#318: *75161 "
    for index in range(2000):
        tail = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 90)))
        for line in (tail, prefix + tail, prefix[: generator.randint(0, len(prefix))] + tail):
            parse_line(index, line)
            status_cause(tail)
