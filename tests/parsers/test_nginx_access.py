"""Tests for the ingress-nginx access log parser (mlops_trace.parsers.nginx_access)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlops_trace.parsers.nginx_access import iter_records, parse_line

RETRIED = (
    '192.168.49.1 - - [12/Jul/2025:18:30:09 +0000] "POST /seldon/seldon-mesh/v2/models/iris/infer HTTP/1.1" 200 215 '
    '"-" "curl/8.5.0" 312 0.006 [seldon-mesh-seldon-mesh-80] [] 10.0.0.5:9000, 10.0.0.6:9000 0, 215 0.002, 0.004 '
    "502, 200 3f5b1c0d9e8a7b6c5d4e3f2a1b0c9d8e"
)
NOT_FOUND = (
    '10.244.0.1 - admin [12/Jul/2025:20:30:09 +0200] "POST /v2/models/exp/infer?x=1 HTTP/2.0" 404 0 '
    '"https://example.test/" "python-requests/2.31.0" 540 0.001 [seldon-mesh-seldon-mesh-80] '
    "[seldon-mesh-canary-80] 10.244.0.17:9000 0 0.001 404 aa11bb22cc33dd44ee55ff6677889900"
)


def test_default_upstreaminfo_line_with_retries() -> None:
    record = parse_line(5, RETRIED + "\n")
    assert record is not None
    assert record.lineno == 5
    assert record.raw == RETRIED
    assert record.remote_addr == "192.168.49.1"
    assert record.remote_user is None
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=UTC)
    assert (record.method, record.path, record.protocol) == (
        "POST",
        "/seldon/seldon-mesh/v2/models/iris/infer",
        "HTTP/1.1",
    )
    assert record.status == 200
    assert record.body_bytes_sent == 215
    assert record.referer is None
    assert record.user_agent == "curl/8.5.0"
    assert record.request_length == 312
    assert record.request_time == pytest.approx(0.006)
    assert record.proxy_upstream_name == "seldon-mesh-seldon-mesh-80"
    assert record.proxy_alternative_upstream_name is None
    assert record.upstream_addrs == ("10.0.0.5:9000", "10.0.0.6:9000")
    assert record.upstream_response_lengths == (0, 215)
    assert record.upstream_response_times == (0.002, 0.004)
    assert record.upstream_statuses == (502, 200)
    assert record.upstream_status == 200
    assert record.upstream_response_time == pytest.approx(0.006)
    assert record.request_id == "3f5b1c0d9e8a7b6c5d4e3f2a1b0c9d8e"


def test_single_upstream_404_with_zone_user_referer_and_alternative_upstream() -> None:
    record = parse_line(1, NOT_FOUND)
    assert record is not None
    assert record.remote_user == "admin"
    assert record.time == datetime(2025, 7, 12, 20, 30, 9, tzinfo=timezone(timedelta(hours=2)))
    assert record.path == "/v2/models/exp/infer?x=1"
    assert record.protocol == "HTTP/2.0"
    assert record.referer == "https://example.test/"
    assert record.proxy_alternative_upstream_name == "seldon-mesh-canary-80"
    assert record.upstream_addrs == ("10.244.0.17:9000",)
    assert record.upstream_status == 404
    assert record.upstream_response_time == pytest.approx(0.001)


def test_internal_redirect_lists_and_missing_values() -> None:
    line = (
        '10.0.0.1 - - [12/Jul/2025:18:30:09 +0000] "GET /v2/health/ready HTTP/1.1" 502 150 "-" "kube-probe/1.30" '
        "98 5.003 [seldon-mesh-seldon-mesh-80] [] 10.0.0.5:9000, 10.0.0.6:9000 : 10.0.0.9:8080 0, 0 : 150 "
        "5.000, - : 0.003 504, 502 : 502 0123456789abcdef0123456789abcdef"
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.upstream_addrs == ("10.0.0.5:9000", "10.0.0.6:9000", "10.0.0.9:8080")
    assert record.upstream_response_lengths == (0, 0, 150)
    assert record.upstream_response_times == (5.0, None, 0.003)
    assert record.upstream_statuses == (504, 502, 502)
    assert record.upstream_status == 502
    assert record.upstream_response_time == pytest.approx(5.003)
    assert record.request_id == "0123456789abcdef0123456789abcdef"


def test_tls_garbage_request_without_upstream() -> None:
    line = (
        '203.0.113.7 - - [12/Jul/2025:18:30:09 +0000] "\\x16\\x03\\x01\\x00\\xF4\\x01\\x00\\x00\\xF0\\x03\\x03" 400 150 '
        '"-" "-" 0 0.004 [] [] - - - - 5c2a9e1f0b7d4c3a8e6f1d2b3c4a5e6f'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 400
    assert (record.method, record.path, record.protocol) == (None, None, None)
    assert record.user_agent is None
    assert record.proxy_upstream_name is None
    assert record.upstream_addrs == ()
    assert record.upstream_statuses == ()
    assert record.upstream_status is None
    assert record.upstream_response_time is None
    assert record.request_id == "5c2a9e1f0b7d4c3a8e6f1d2b3c4a5e6f"


def test_kubectl_timestamp_prefix() -> None:
    record = parse_line(1, "2025-07-12T18:30:09.500000000Z " + RETRIED)
    assert record is not None
    assert record.raw.startswith("2025-07-12T18:30:09.500000000Z ")
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=UTC)  # $time_local wins
    assert record.upstream_status == 200


def test_line_without_request_id_field() -> None:
    record = parse_line(1, RETRIED.rsplit(" ", 1)[0])
    assert record is not None
    assert record.request_id is None
    assert record.upstream_statuses == (502, 200)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        'I0712 18:30:09.123456       7 controller.go:190] "Configuration changes detected, backend reload required"',
        'W0712 18:30:09.123456       7 controller.go:1214] Service "seldon-mesh/x" does not have any active Endpoint.',
        "-------------------------------------------------------------------------------",
        "NGINX Ingress controller",
        '10.0.0.1 - - [12/Jul/2025:18:30:09 +0000] "GET / HTTP/1.1" abc',
    ],
)
def test_non_access_lines_give_none(line: str) -> None:
    assert parse_line(1, line) is None


def test_iter_records_skips_other_lines_and_keeps_numbers() -> None:
    lines = [(1, "I0712 18:30:09.123456 7 main.go:1] starting"), (2, RETRIED), (3, ""), (4, NOT_FOUND)]
    records = list(iter_records(iter(lines)))
    assert [record.lineno for record in records] == [2, 4]
    assert [record.status for record in records] == [200, 404]


def test_random_garbage_never_raises() -> None:
    generator = random.Random(404)
    alphabet = '0123456789²٣ -,:"[]abcGET/HTP.\\x'
    prefix = '10.0.0.1 - - [12/Jul/2025:18:30:09 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 1 0.1 [a] [] '
    for index in range(2000):
        tail = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 90)))
        for line in (tail, prefix + tail, prefix[: generator.randint(0, len(prefix))] + tail):
            parse_line(index, line)


# https://github.com/kubernetes/ingress-nginx/issues/9443 (a 504 after three attempts), with our own addresses
TIMED_OUT = (
    '10.0.0.9 - admin [08/Mar/2023:16:06:19 +0000] "GET /favicon.ico HTTP/1.1" 504 562 "https://ml.example.com/" '
    '"Mozilla/5.0 (X11; Linux x86_64)" 1118 14.997 [seldon-mesh-seldon-mesh-80] [] 10.1.2.3:8443, 10.1.2.3:8443, '
    "10.1.2.3:8443 0, 0, 0 5.000, 5.000, 5.000 504, 504, 504 e9edc959a02abc0823d7b6382095afb8"
)


@pytest.mark.parametrize("indent", ["    ", "\t", "  \t "])
def test_access_line_with_leading_whitespace(indent: str) -> None:
    # pasted as an indented code block, as in https://github.com/kubernetes-retired/contrib/issues/2363
    record = parse_line(1, indent + TIMED_OUT)
    assert record is not None
    assert record.status == 504
    assert record.upstream_statuses == (504, 504, 504)
    assert record.upstream_response_time == 15.0
    assert record.remote_user == "admin"


def test_access_line_behind_source_prefixes() -> None:
    kubectl = parse_line(1, "[pod/ingress-nginx-controller-5c8d66c76d-x2x9q/controller] " + TIMED_OUT)
    assert kubectl is not None and kubectl.source["container"] == "controller"
    stern = parse_line(2, "ingress-nginx-controller-5c8d66c76d-x2x9q controller " + TIMED_OUT)
    assert stern is not None and dict(stern.source) == {
        "pod": "ingress-nginx-controller-5c8d66c76d-x2x9q",
        "container": "controller",
    }
    coloured = parse_line(3, "\x1b[32mingress-nginx-controller-5c8d66c76d-x2x9q\x1b[0m " + TIMED_OUT)
    assert coloured is not None and coloured.status == 504
    stamped = parse_line(
        4, "2023-03-08T16:06:19.5Z [pod/ingress-nginx-controller-5c8d66c76d-x2x9q/controller] " + TIMED_OUT
    )
    assert stamped is not None and stamped.request_id == "e9edc959a02abc0823d7b6382095afb8"


def test_error_log_lines_are_not_access_lines() -> None:
    # https://github.com/kubernetes/ingress-nginx/issues/12285: the error line logged beside the 502 access line
    line = (
        "2024/11/03 06:09:29 [error] 184#184: *94 upstream prematurely closed connection while reading response "
        'header from upstream, client: 10.0.0.9, server: ml.example.com, request: "GET / HTTP/1.1", upstream: '
        '"http://10.1.2.4:5601/", host: "ml.example.com"'
    )
    assert parse_line(1, line) is None
    assert parse_line(2, "    " + line) is None
