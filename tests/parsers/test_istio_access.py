"""Istio's access log (parsers/logs/istio.py): the default TEXT format of istio/istio
pilot/pkg/model/telemetry_logging.go (at 01358b3) and its JSON encoding, on lines of that exact shape.

The NR, UH, URX and UF lines are as Istio's users published them from real gateways and sidecars (Istio's access log
task and troubleshooting write-ups; the addresses are theirs); the KServe ones follow the same format with the
hosts and clusters a KServe request crosses (KSERVE-FACTS §2.2, §6)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mlops_trace.parsers.logs.istio import (
    RESPONSE_FLAGS,
    IstioCluster,
    LogEncoding,
    iter_records,
    parse_cluster,
    parse_line,
)

NR = ('[2024-08-21T01:14:56.707Z] "HEAD / HTTP/1.1" 404 NR route_not_found - "-" 0 0 0 - "10.0.0.15" "curl/7.81.0" '
      '"a01beb57-4024-4302-b96a-019c2de2c5e6" "10.2.14.4" "-" - - 10.0.2.42:80 10.0.0.15:38970 - -')
UH = ('[2022-01-20T22:38:26.354Z] "GET / HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 0 - "192.168.0.3" '
      '"curl/7.68.0" "069c37c4-bead-49ae-8ef3-fe9fdca1602b" "app.test.com" "-" '
      'outbound|80||my-app.default.svc.cluster.local - 10.244.0.233:80 192.168.0.3:43900 - my-app')
URX = ('[2026-10-08T21:50:00.000Z] "GET /status/503 HTTP/1.1" 503 URX via_upstream - "-" 0 0 120 119 "10.42.0.1" '
       '"curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f20" "localhost" "10.42.0.9:8080" '
       'outbound|8000||httpbin.default.svc.cluster.local 10.42.0.7:38902 10.42.0.7:8080 10.42.0.1:51761 - -')
UF = ('[2023-01-01T14:47:26.285Z] "GET /hello HTTP/1.1" 503 UF '
      'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111} - '
      '"delayed_connect_error:_111" 0 145 0 - "-" "curl/7.87.0-DEV" "35e82df8-1262-9404-8ad2-303b8613955c" '
      '"helloworld:5000" "10.1.2.31:5000" inbound|5000|| - 10.1.2.31:5000 172.16.9.8:5067 - default')
URX_UF = ('[2026-10-08T23:42:56.440Z] "GET / HTTP/2" 503 URX,UF upstream_reset_before_response_started'
          '{connection_timeout} - "-" 0 114 30036 - "10.244.0.7" "curl/8.11.1" "e17710d6-59ce-43ad-82c2-e645058f63b7" '
          '"partner.outpost.example" "10.96.44.169:80" outbound|80||partner.outpost.example - 10.244.0.6:80 '
          '10.244.0.7:36430 - -')
# The ingress gateway relaying a KServe predict to the local gateway, and the model server's own 404.
KSERVE_OK = ('[2026-08-21T10:15:02.118Z] "POST /v1/models/sklearn-iris:predict HTTP/1.1" 200 - via_upstream - "-" '
             '76 23 9 8 "10.244.0.1" "curl/8.5.0" "trace-abc-123" "sklearn-iris.models.example.com" '
             '"10.244.0.31:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.244.0.30:51224 '
             '10.244.0.30:8080 10.244.0.1:40122 - -')
KSERVE_404 = ('[2026-08-21T10:15:03.007Z] "POST /v1/models/other:predict HTTP/1.1" 404 - via_upstream - "-" 76 48 '
              '4 3 "10.244.0.1" "curl/8.5.0" "trace-abc-124" "sklearn-iris.models.example.com" "10.244.0.31:8081" '
              'outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.244.0.30:51224 10.244.0.30:8080 '
              '10.244.0.1:40124 - -')


def test_a_no_route_404_is_the_proxys_own_answer() -> None:
    record = parse_line(7, NR)
    assert record is not None and record.encoding is LogEncoding.TEXT and record.lineno == 7
    assert record.status == 404 and record.response_flags == ("NR",) and record.has_flag("NR")
    assert record.flag_names == ("NoRouteFound",) and record.response_code_details == "route_not_found"
    assert record.upstream_host is None and record.upstream_cluster is None and record.route_name is None
    assert record.upstream_service_time_ms is None and record.duration_ms == 0
    assert record.authority == "10.2.14.4" and record.request_id == "a01beb57-4024-4302-b96a-019c2de2c5e6"
    assert record.downstream_local_address == "10.0.2.42:80" and record.downstream_remote_address == "10.0.0.15:38970"
    assert record.answered_by_proxy


def test_no_healthy_upstream_names_the_cluster_it_had_no_endpoint_in() -> None:
    record = parse_line(1, UH)
    assert record is not None and record.status == 503 and record.has_flag("UH")
    assert record.upstream_cluster == IstioCluster("outbound", 80, "", "my-app.default.svc.cluster.local")
    assert record.route_name == "my-app" and record.upstream_local_address is None and record.answered_by_proxy


def test_retries_exhausted_on_an_upstream_503() -> None:
    record = parse_line(1, URX)
    assert record is not None and record.response_flags == ("URX",) and record.response_code_details == "via_upstream"
    assert record.duration_ms == 120 and record.upstream_service_time_ms == 119
    assert record.upstream_host == "10.42.0.9:8080" and record.upstream_local_address == "10.42.0.7:38902"
    assert record.access.user_agent == "curl/8.7.1" and record.access.forwarded_for == "10.42.0.1"
    assert not record.answered_by_proxy  # the 503 came from the upstream, Envoy only gave up retrying


@pytest.mark.parametrize("line", [UF, URX_UF])
def test_connect_failures_keep_the_reset_reason(line: str) -> None:
    record = parse_line(1, line)
    assert record is not None and record.status == 503 and record.has_flag("UF") and record.answered_by_proxy
    assert record.response_code_details is not None
    assert record.response_code_details.startswith("upstream_reset_before_response_started{")


def test_the_transport_failure_reason_and_an_inbound_cluster() -> None:
    record = parse_line(1, UF)
    assert record is not None and record.upstream_transport_failure_reason == "delayed_connect_error:_111"
    assert record.upstream_cluster == IstioCluster("inbound", 5000, "", "")
    record = parse_line(1, URX_UF)
    assert record is not None and record.response_flags == ("URX", "UF") and record.duration_ms == 30036


def test_a_kserve_predict_through_the_gateway() -> None:
    ok, missing = parse_line(1, KSERVE_OK), parse_line(2, KSERVE_404)
    assert ok is not None and missing is not None
    assert ok.status == 200 and ok.upstream_service_time_ms == 8 and ok.duration_ms == 9
    assert ok.authority == "sklearn-iris.models.example.com" and ok.request_id == "trace-abc-123"
    cluster = ok.upstream_cluster
    assert cluster is not None and cluster.host == "knative-local-gateway.istio-system.svc.cluster.local"
    assert cluster.port == 80 and cluster.direction == "outbound"
    # A 404 via_upstream is the model server's (a JSON body), not a routing miss.
    assert missing.status == 404 and missing.response_flags == () and not missing.answered_by_proxy


def test_the_json_encoding_of_the_same_fields() -> None:
    document = {
        "start_time": "2026-08-21T10:15:03.007Z", "method": "POST", "path": "/v1/models/sklearn-iris:predict",
        "protocol": "HTTP/1.1", "response_code": 503, "response_flags": "UH", "response_code_details":
        "no_healthy_upstream", "connection_termination_details": None, "upstream_transport_failure_reason": None,
        "bytes_received": 76, "bytes_sent": 19, "duration": 0, "upstream_service_time": None,
        "x_forwarded_for": "10.244.0.1", "user_agent": "curl/8.5.0", "request_id": "trace-abc-125",
        "authority": "sklearn-iris-predictor.models.svc.cluster.local", "upstream_host": None,
        "upstream_cluster": "outbound|80||sklearn-iris-predictor-00001.models.svc.cluster.local",
        "upstream_local_address": None, "downstream_local_address": "10.244.0.30:8081",
        "downstream_remote_address": "10.244.0.1:40126", "requested_server_name": None, "route_name": None,
    }
    record = parse_line(4, json.dumps(document))
    assert record is not None and record.encoding is LogEncoding.JSON
    assert record.status == 503 and record.has_flag("UH") and record.request_id == "trace-abc-125"
    assert record.authority == "sklearn-iris-predictor.models.svc.cluster.local"
    assert record.downstream_local_address == "10.244.0.30:8081" and record.upstream_local_address is None
    cluster = record.upstream_cluster
    assert cluster is not None and cluster.host == "sklearn-iris-predictor-00001.models.svc.cluster.local"
    assert record.answered_by_proxy


def test_a_kubectl_timestamp_prefix_and_other_lines() -> None:
    prefixed = parse_line(1, "2026-08-21T10:15:02.120000000Z " + KSERVE_OK + "\n")
    assert prefixed is not None and prefixed.encoding is LogEncoding.TEXT and prefixed.status == 200
    assert parse_line(2, "2026-08-21T10:15:00.000000Z\tinfo\tEnvoy proxy is ready") is None
    assert parse_line(3, "[2026-08-21 10:15:00.000][15][info][main] starting main dispatch loop") is None
    assert parse_line(4, "") is None
    # Envoy's own default format (no Istio fields): still an access record, without Istio's extras.
    envoy = parse_line(5, '[2026-08-21T10:15:02.118Z] "GET / HTTP/1.1" 200 - 0 12 3 2 "-" "curl/8.5.0" "r-1" "a" "b"')
    assert envoy is not None and envoy.encoding is LogEncoding.ENVOY and envoy.downstream_local_address is None


def test_records_stream_one_line_at_a_time() -> None:
    pulled: list[int] = []

    def lines() -> Iterator[tuple[int, str]]:
        for lineno, line in enumerate([NR, "not an access line", UH, KSERVE_OK], start=1):
            pulled.append(lineno)
            yield lineno, line

    records = iter_records(lines())
    first = next(records)
    assert first.lineno == 1 and pulled == [1]  # nothing read ahead
    assert [r.lineno for r in records] == [3, 4]


def test_cluster_names_and_flag_names() -> None:
    assert parse_cluster("outbound|8080|v2|reviews.default.svc.cluster.local") == IstioCluster(
        "outbound", 8080, "v2", "reviews.default.svc.cluster.local"
    )
    assert parse_cluster("BlackHoleCluster") is None and parse_cluster(None) is None
    assert {flag: RESPONSE_FLAGS[flag] for flag in ("NR", "UH", "URX", "UF", "NC", "UT", "DC")} == {
        "NR": "NoRouteFound", "UH": "NoHealthyUpstream", "URX": "UpstreamRetryLimitExceeded",
        "UF": "UpstreamConnectionFailure", "NC": "NoClusterFound", "UT": "UpstreamRequestTimeout",
        "DC": "DownstreamConnectionTermination",
    }  # fmt: skip
