"""Tests for the Envoy access log parser (mlops_trace.parsers.envoy_access)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from mlops_trace.parsers.envoy_access import iter_records, parse_line

# Seldon's scheduler format: %RESPONSE_CODE% %GRPC_STATUS_NUMBER% %RESPONSE_FLAGS% … (scheduler/pkg/envoy/xdscache).
SELDON_REST_NR = (
    '[2025-07-12T18:30:09.123Z] "POST /v2/models/iris/infer HTTP/1.1" 404 - NR 0 0 0 - "-" "curl/8.5.0" "-" '
    '"seldon-mesh.seldon-mesh" "-"'
)
DEFAULT_FORMAT_NR = (
    '[2025-07-12T18:30:09.123Z] "POST /v2/models/iris/infer HTTP/1.1" 404 NR 0 0 0 - "-" "curl/8.5.0" "-" '
    '"seldon-mesh" "-"'
)


@pytest.mark.parametrize("line", [SELDON_REST_NR, DEFAULT_FORMAT_NR])
def test_no_route_404(line: str) -> None:
    record = parse_line(8, line + "\n")
    assert record is not None
    assert record.lineno == 8
    assert record.raw == line
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123000, tzinfo=UTC)
    assert (record.method, record.path, record.protocol) == ("POST", "/v2/models/iris/infer", "HTTP/1.1")
    assert record.status == 404
    assert record.response_flags == ("NR",)
    assert record.grpc_status is None
    assert record.duration_ms == 0
    assert record.upstream_service_time_ms is None
    assert record.request_id is None
    assert record.upstream_host is None
    assert record.authority is not None and record.authority.startswith("seldon-mesh")
    assert record.user_agent == "curl/8.5.0"


def test_seldon_grpc_no_route_reports_unimplemented_status() -> None:
    line = (
        '[2025-07-12T18:30:09.200Z] "POST /inference.GRPCInferenceService/ModelInfer HTTP/2" 200 12 NR 0 0 0 - "-" '
        '"grpc-python/1.67.1 grpc-c/44.0.0 (linux; chttp2)" "-" "seldon-mesh:80" "-"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 200
    assert record.grpc_status == "12"
    assert record.response_flags == ("NR",)
    assert record.protocol == "HTTP/2"


def test_successful_request_with_upstream_fields() -> None:
    line = (
        '[2025-07-12T18:30:10.001Z] "POST /v2/models/iris/infer HTTP/1.1" 200 - - 245 312 7 6 "10.244.0.1" '
        '"python-requests/2.31.0" "cieou5ofh5ss73fbjdu0" "seldon-mesh.seldon-mesh" "10.244.0.17:9001"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 200
    assert record.response_flags == ()
    assert record.grpc_status is None
    assert record.bytes_received == 245
    assert record.bytes_sent == 312
    assert record.duration_ms == 7
    assert record.upstream_service_time_ms == 6
    assert record.request_id == "cieou5ofh5ss73fbjdu0"
    assert record.forwarded_for == "10.244.0.1"
    assert record.upstream_host == "10.244.0.17:9001"
    assert record.headers["x-request-id"] == "cieou5ofh5ss73fbjdu0"
    assert record.headers["x-envoy-upstream-service-time"] == "6"


def test_combined_flags_after_retries() -> None:
    line = (
        '[2025-07-12T18:30:11.000Z] "POST /v2/models/iris/infer HTTP/1.1" 503 - UF,URX 245 91 2510 - "-" "curl/8.5.0" '
        '"-" "seldon-mesh" "10.244.0.17:9001"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 503
    assert record.response_flags == ("UF", "URX")
    assert record.duration_ms == 2510


def test_istio_style_variant_with_details_and_extra_fields() -> None:
    line = (
        '[2025-07-12T18:30:09.123Z] "GET /v2/models/iris/ready HTTP/1.1" 404 NR route_not_found - "-" 0 0 0 - "-" '
        '"curl/8.5.0" "4b1b2c3d-aaaa-bbbb-cccc-1234567890ab" "seldon-mesh" "-" - - 10.244.0.5:9000 10.244.0.1:51234 - -'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.response_flags == ("NR",)
    assert record.response_code_details == "route_not_found"
    assert record.request_id == "4b1b2c3d-aaaa-bbbb-cccc-1234567890ab"
    assert record.upstream_cluster is None
    assert record.route_name is None


def test_istio_style_extra_fields_name_cluster_and_route() -> None:
    line = (
        '[2025-07-12T18:30:09.123Z] "POST /v2/models/iris/infer HTTP/1.1" 200 - via_upstream - "-" 10 20 5 4 "-" '
        '"curl/8.5.0" "rid-1" "seldon-mesh" "10.244.0.17:9001" iris_1_http 10.244.0.5:43210 10.244.0.5:9000 '
        "10.244.0.1:51234 - iris_http"
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.response_flags == ()
    assert record.response_code_details == "via_upstream"
    assert record.upstream_cluster == "iris_1_http"
    assert record.route_name == "iris_http"
    assert record.extra_fields == ()


def test_unknown_trailing_fields_are_kept() -> None:
    record = parse_line(1, SELDON_REST_NR + " extra1 extra2")
    assert record is not None
    assert record.extra_fields == ("extra1", "extra2")
    assert record.response_flags == ("NR",)


def test_user_agent_with_embedded_quote() -> None:
    line = (
        '[2025-07-12T18:30:09.123Z] "GET /v2/health/ready HTTP/1.1" 200 - - 0 0 1 1 "-" "odd "agent" 1.0" "r-2" '
        '"seldon-mesh" "10.244.0.17:9001"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.user_agent == 'odd "agent" 1.0'
    assert record.request_id == "r-2"


def test_json_access_line_with_seldon_headers() -> None:
    line = (
        '{"start_time":"2025-07-12T18:30:09.123Z","method":"POST","path":"/v2/models/exp/infer","protocol":"HTTP/1.1",'
        '"response_code":"404","response_flags":"NR","duration":1,"upstream_service_time":null,'
        '"x_request_id":"cieou5ofh5ss73fbjdu0","authority":"seldon-mesh","upstream_host":null,'
        '"upstream_cluster":null,"route_name":null,"grpc_status":null,"seldon_model":"exp.experiment",'
        '"x-seldon-route":":iris_1:","User-Agent":"curl/8.5.0"}'
    )
    record = parse_line(2, line)
    assert record is not None
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123000, tzinfo=UTC)
    assert record.status == 404
    assert record.response_flags == ("NR",)
    assert record.duration_ms == 1
    assert record.upstream_service_time_ms is None
    assert record.request_id == "cieou5ofh5ss73fbjdu0"
    assert record.authority == "seldon-mesh"
    assert record.headers["seldon-model"] == "exp.experiment"
    assert record.headers["x-seldon-route"] == ":iris_1:"
    assert record.headers["user-agent"] == "curl/8.5.0"
    assert record.headers["x-request-id"] == "cieou5ofh5ss73fbjdu0"
    assert "method" not in record.headers and "response-code" not in record.headers


def test_json_access_line_with_alternative_keys() -> None:
    line = (
        '{"timestamp":"2025-07-12T18:30:09Z","method":"POST","path":"/inference.GRPCInferenceService/ModelInfer",'
        '"status":200,"x-envoy-upstream-service-time":"12","request_id":"abc","upstream_cluster":"iris_1_grpc",'
        '"route_name":"iris_grpc","grpc_status":"OK","seldon-model":"iris"}'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 200
    assert record.upstream_service_time_ms == 12
    assert record.request_id == "abc"
    assert record.upstream_cluster == "iris_1_grpc"
    assert record.route_name == "iris_grpc"
    assert record.grpc_status == "OK"
    assert record.headers["x-envoy-upstream-service-time"] == "12"
    assert record.headers["seldon-model"] == "iris"


def test_kubectl_prefix_is_accepted() -> None:
    record = parse_line(1, "2025-07-12T18:30:09.999999999Z " + SELDON_REST_NR)
    assert record is not None
    assert record.status == 404


@pytest.mark.parametrize(
    "line",
    [
        "",
        "[2025-07-12 18:30:09.123][1][info][main] [source/server/server.cc:932] starting main dispatch loop",
        (
            "[2025-07-12 18:30:09.500][15][warning][config] [source/extensions/config_subscription/grpc/"
            "grpc_stream.h:193] DeltaAggregatedResources gRPC config stream to xds_cluster closed: 14, no healthy upstream"
        ),
        '{"level":"info","msg":"not an access log"}',
        "[broken",
        '[2025-07-12T18:30:09.123Z] "GET / HTTP/1.1" notanumber',
        '[2025-07-12T18:30:09.123Z] "unterminated',
        "{not json",
    ],
)
def test_other_lines_give_none(line: str) -> None:
    assert parse_line(1, line) is None


def test_truncated_access_line_keeps_what_it_has() -> None:
    record = parse_line(1, '[2025-07-12T18:30:09.123Z] "POST /v2/models/iris/infer HTTP/1.1" 404 - NR')
    assert record is not None
    assert record.status == 404
    assert record.response_flags == ("NR",)
    assert record.duration_ms is None


def test_iter_records_skips_application_log_lines() -> None:
    lines = [
        (1, "[2025-07-12 18:30:09.123][1][info][main] [source/server/server.cc:932] starting main dispatch loop"),
        (2, SELDON_REST_NR),
        (3, DEFAULT_FORMAT_NR),
    ]
    assert [record.lineno for record in iter_records(iter(lines))] == [2, 3]


def test_user_agent_with_unpaired_quote_still_parses_the_line() -> None:
    line = (
        '[2025-07-12T18:30:09.123Z] "GET /v2/health/ready HTTP/1.1" 200 - - 0 0 1 1 "-" "odd "agent 1.0" "r-3" '
        '"seldon-mesh" "10.244.0.17:9001"'
    )
    record = parse_line(1, line)
    assert record is not None
    assert record.status == 200
    assert record.path == "/v2/health/ready"
    assert record.duration_ms == 1


def test_unicode_digits_do_not_crash() -> None:
    record = parse_line(1, '[2025-07-12T18:30:09.123Z] "GET / HTTP/1.1" 200 ² - 0 0 0 - "-" "-" "-" "h" "-"')
    assert record is not None
    assert record.grpc_status is None
    assert parse_line(1, '[2025-07-12T18:30:09.123Z] "GET / HTTP/1.1" ²⁰⁰ - 0 0 0 -') is None


def test_random_garbage_never_raises() -> None:
    generator = random.Random(1202)
    alphabet = '0123456789²٣ -"[]{}:,.NRUFabcTZ\\x'
    prefixes = ("", "[2025-07-12T18:30:09.123Z] ", '[2025-07-12T18:30:09.123Z] "GET / HTTP/1.1" ', "{")
    for index in range(2000):
        tail = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 90)))
        for prefix in prefixes:
            parse_line(index, prefix + tail)
