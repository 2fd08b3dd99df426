"""The REST client: answers, transport failures and phase arithmetic, with respx standing in for the network."""

from __future__ import annotations

import httpx
import pytest
import respx

from mlops_trace.trace.record import ErrorKind
from mlops_trace.trace.rest import TlsOptions, classify_error, make_client, phases_from_events, send

URL = "http://10.0.0.1/v2/models/ab/infer"


def _send(client: httpx.Client) -> object:
    return send(
        client,
        entry="ingress",
        method="POST",
        url=URL,
        headers={"x-request-id": "mt-1"},
        body=b"{}",
        request_id="mt-1",
        traceparent="tp",
    )


@respx.mock
def test_success_keeps_headers_and_body() -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, headers={"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "7"}, json={"model_name": "a_1"}
        )
    )
    with make_client(http2=False, tls=TlsOptions(), timeout=2) as client:
        exchange = send(
            client,
            entry="ingress",
            method="POST",
            url=URL,
            headers={"x-request-id": "mt-1"},
            body=b"{}",
            request_id="mt-1",
            traceparent="tp",
            dns_ms=0.1,
        )
    assert route.calls.last.request.headers["x-request-id"] == "mt-1"
    assert exchange.ok and exchange.status == 200
    assert exchange.route == ":a_1:"
    assert exchange.upstream_service_time_ms == 7.0
    assert b"a_1" in exchange.body
    assert exchange.total_ms is not None and exchange.total_ms >= 0
    assert exchange.phases.dns_ms == 0.1


@respx.mock
@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ReadTimeout("slow"), ErrorKind.TIMEOUT),
        (httpx.ConnectTimeout("slow"), ErrorKind.TIMEOUT),
        (httpx.ConnectError("refused"), ErrorKind.CONNECT),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"), ErrorKind.TLS),
        (httpx.RemoteProtocolError("bad frame"), ErrorKind.PROTOCOL),
    ],
)
def test_transport_failures_become_exchanges(error: Exception, kind: ErrorKind) -> None:
    respx.post(URL).mock(side_effect=error)
    with make_client(http2=False, tls=TlsOptions(), timeout=2) as client:
        exchange = _send(client)
    assert exchange.error_kind is kind  # type: ignore[attr-defined]
    assert not exchange.ok  # type: ignore[attr-defined]
    assert exchange.status is None  # type: ignore[attr-defined]


def test_timeout_messages_name_the_phase() -> None:
    assert classify_error(httpx.ReadTimeout("x")) == (ErrorKind.TIMEOUT, "timed out waiting for the response")
    assert classify_error(httpx.ConnectTimeout("x"))[1] == "timed out connecting"


def test_phases_from_trace_events() -> None:
    events = {
        "connect_tcp.started": 1.000,
        "connect_tcp.complete": 1.002,
        "start_tls.started": 1.002,
        "start_tls.complete": 1.005,
        "send_request_headers.started": 1.005,
        "send_request_body.complete": 1.0055,
        "receive_response_headers.complete": 1.0155,
        "receive_response_body.complete": 1.016,
    }
    phases = phases_from_events(events)
    assert phases.connect_ms == pytest.approx(2.0)
    assert phases.tls_ms == pytest.approx(3.0)
    assert phases.send_ms == pytest.approx(0.5)
    assert phases.wait_ms == pytest.approx(10.0)
    assert phases.receive_ms == pytest.approx(0.5)
    assert not phases.reused_connection
    reused = phases_from_events({"send_request_headers.started": 2.0, "send_request_headers.complete": 2.001})
    assert reused.reused_connection and reused.connect_ms is None


def test_tls_verification_stays_on_unless_asked(tmp_path: object) -> None:
    assert TlsOptions().verify() is True
    assert TlsOptions(insecure=True).verify() is False
