"""REST over httpx (HTTP/1.1 or h2) with per-phase timing from httpx's `trace` extension.

The trace callback only stores `perf_counter()` per event name, so timing costs a dict write per event and the
prober stays far from being the bottleneck. Phases: connect (`connect_tcp`, which includes the resolver call httpcore
makes), TLS (`start_tls`), send (request headers and body), wait (until the response headers are in), receive (the
body). DNS is timed apart with `getaddrinfo` before the first request, since httpcore does not report it. A reused
connection has no connect or TLS phase.

Transport failures never raise: they come back as an `Exchange` with `error_kind` set, so a run of many requests
counts them and one request explains them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_trace.trace.record import ClientPhases, ErrorKind, Exchange

if TYPE_CHECKING:
    import httpx

BODY_LIMIT = 4096


@dataclass(frozen=True)
class TlsOptions:
    insecure: bool = False  # verification stays on unless the user says so
    cacert: Path | None = None

    def verify(self) -> Any:
        """The `verify` argument of httpx: an SSL context with the CA file, True, or False for --insecure."""
        if self.insecure:
            return False
        if self.cacert is not None:
            import ssl

            return ssl.create_default_context(cafile=str(self.cacert))
        return True


def _span(events: Mapping[str, float], start: str, end: str) -> float | None:
    begin, finish = events.get(start), events.get(end)
    if begin is None or finish is None:
        return None
    return round((finish - begin) * 1000.0, 3)


def phases_from_events(events: Mapping[str, float], dns_ms: float | None = None) -> ClientPhases:
    """Client phases from trace events keyed `<name>.<started|complete>` (the http11/http2/connection prefix is
    dropped by the recorder)."""
    send_end = (
        "send_request_body.complete" if "send_request_body.complete" in events else "send_request_headers.complete"
    )
    return ClientPhases(
        dns_ms=dns_ms,
        connect_ms=_span(events, "connect_tcp.started", "connect_tcp.complete"),
        tls_ms=_span(events, "start_tls.started", "start_tls.complete"),
        send_ms=_span(events, "send_request_headers.started", send_end),
        wait_ms=_span(events, send_end, "receive_response_headers.complete"),
        receive_ms=_span(events, "receive_response_headers.complete", "receive_response_body.complete"),
        # No connect event while the request itself was traced: the pool handed out an open connection.
        reused_connection=bool(events) and "connect_tcp.started" not in events,
    )


def _recorder() -> tuple[dict[str, float], Callable[[str, dict[str, Any]], None]]:
    events: dict[str, float] = {}

    def record(name: str, info: dict[str, Any]) -> None:
        events[name.partition(".")[2]] = time.perf_counter()

    return events, record


def _async_recorder() -> tuple[dict[str, float], Callable[[str, dict[str, Any]], Any]]:
    events: dict[str, float] = {}

    async def record(name: str, info: dict[str, Any]) -> None:
        events[name.partition(".")[2]] = time.perf_counter()

    return events, record


def classify_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """An httpx exception as an ErrorKind and one line naming what happened."""
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the response",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "")
        return ErrorKind.TIMEOUT, f"timed out {phase}".strip()
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            return ErrorKind.TLS, text
        return ErrorKind.CONNECT, text
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.LocalProtocolError)):
        return ErrorKind.PROTOCOL, text
    return ErrorKind.CONNECT, text


def resolve_ms(host: str, port: int) -> float | None:
    """Time of one `getaddrinfo` for the URL's host (0 work for an IP literal, which the resolver answers itself)."""
    start = time.perf_counter()
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    return round((time.perf_counter() - start) * 1000.0, 3)


def make_client(*, http2: bool, tls: TlsOptions, timeout: float, connections: int = 1) -> httpx.Client:
    import httpx

    # With --http2 only h2 is offered: ALPN over TLS, prior knowledge (h2c) over plain http.
    return httpx.Client(
        http1=not http2,
        http2=http2,
        verify=tls.verify(),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


def make_async_client(*, http2: bool, tls: TlsOptions, timeout: float, connections: int) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        http1=not http2,
        http2=http2,
        verify=tls.verify(),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


def _exchange(
    entry: str,
    url: str,
    request_id: str,
    traceparent: str,
    started_at: float,
    response: httpx.Response | None,
    body: bytes,
    total_ms: float | None,
    phases: ClientPhases,
    error: BaseException | None,
) -> Exchange:
    if error is not None:
        kind, message = classify_error(error)
        return Exchange.failed(
            entry=entry,
            url=url,
            request_id=request_id,
            traceparent=traceparent,
            started_at=started_at,
            total_ms=total_ms,
            phases=phases,
            kind=kind,
            message=message,
        )
    assert response is not None
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Exchange(
        entry=entry,
        url=url,
        request_id=request_id,
        traceparent=traceparent,
        started_at=started_at,
        status=response.status_code,
        headers=headers,
        body=body[:BODY_LIMIT],
        total_ms=total_ms,
        phases=phases,
        http_version=response.http_version,
    )


def send(
    client: httpx.Client,
    *,
    entry: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    request_id: str,
    traceparent: str,
    dns_ms: float | None = None,
) -> Exchange:
    """One request on a sync client, timed phase by phase."""
    import httpx

    events, record = _recorder()
    request = client.build_request(method, url, headers=dict(headers), content=body, extensions={"trace": record})
    started_at = time.time()
    start = time.perf_counter()
    response: httpx.Response | None = None
    content = b""
    error: BaseException | None = None
    try:
        response = client.send(request)
        content = response.content
    except httpx.HTTPError as exc:
        error = exc
    total = round((time.perf_counter() - start) * 1000.0, 3)
    phases = phases_from_events(events, dns_ms)
    return _exchange(entry, url, request_id, traceparent, started_at, response, content, total, phases, error)


async def send_async(
    client: httpx.AsyncClient,
    *,
    entry: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    request_id: str,
    traceparent: str,
    keep_body: bool = False,
) -> Exchange:
    """One request on an async client. The body is kept only when asked (or on an error status): a run of many
    reads headers for the route and the timing, and nothing else."""
    import httpx

    events, record = _async_recorder()
    request = client.build_request(method, url, headers=dict(headers), content=body, extensions={"trace": record})
    started_at = time.time()
    start = time.perf_counter()
    response: httpx.Response | None = None
    content = b""
    error: BaseException | None = None
    try:
        response = await client.send(request)
        content = response.content
    except httpx.HTTPError as exc:
        error = exc
    total = round((time.perf_counter() - start) * 1000.0, 3)
    if response is not None and not keep_body and response.is_success:
        content = b""
    phases = phases_from_events(events)
    return _exchange(entry, url, request_id, traceparent, started_at, response, content, total, phases, error)
