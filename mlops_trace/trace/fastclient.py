"""A lean HTTP/1.1 keep-alive client for runs of many REST requests (`request --count`).

httpx spends about a millisecond of CPU per request, which on a small machine makes the prober the bottleneck of
what it measures. This client does the one thing a run needs: POST the same body to the same URL again and again,
each time with its own X-Request-ID and traceparent. The request bytes are built once per run; per request only the
two ids are joined in. Responses are parsed by an `asyncio.Protocol` (status line, headers lower-cased with repeats
joined by ", " as httpx does, bodies framed by Content-Length, chunked transfer coding or the connection's close).

Connections are kept alive and reused; one the server closed (or answered `Connection: close` on) is dropped and a
new one opened. A request sent on a reused connection that the server closed before answering a single byte (the
keep-alive race) is sent once more on a fresh connection. TLS goes through an `ssl.SSLContext` that verifies the
certificate unless --insecure, with SNI from the URL's host and ALPN offering only http/1.1.

Failures come back as an `Exchange` with the same kinds the httpx path gives: connect (refused, unreachable, DNS,
reset), tls, timeout (connecting, or no complete answer within the timeout after sending) and protocol (a response
that breaks HTTP/1.1 framing, or a close before any answer).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from mlops_trace.trace.record import ClientPhases, ErrorKind, Exchange
from mlops_trace.trace.rest import BODY_LIMIT, TlsOptions

_ID_MARK = "\x00mlops-trace-request-id\x00"
_TP_MARK = "\x00mlops-trace-traceparent\x00"
_MAX_HEAD = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class HttpFailure(Exception):
    """A request that got no usable answer: its ErrorKind and one line naming what happened."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Stale(Exception):
    """A reused connection closed by the server before any byte of the answer: safe to send again."""


def supports(url: str, *, http2: bool) -> bool:
    """Whether the lean client can carry requests to `url` (HTTP/1.1 over http or https)."""
    if http2:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """The TLS settings of the httpx path: the CA file, else certifi's bundle (httpx's default), else the system's;
    no verification only with --insecure."""
    if tls.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.cacert is not None:
        context = ssl.create_default_context(cafile=str(tls.cacert))
    else:
        try:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        except ImportError:
            context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class Response:
    """A parsed answer."""

    __slots__ = ("body", "done_at", "headers", "headers_at", "status", "version")

    def __init__(self, status: int, version: str, headers: dict[str, str], body: bytes, headers_at: float) -> None:
        self.status = status
        self.version = version
        self.headers = headers
        self.body = body
        self.headers_at = headers_at
        self.done_at = headers_at


def parse_head(head: bytes) -> tuple[str, int, dict[str, str]]:
    """(HTTP version, status, headers) of a response head without its final blank line; names lower-cased, repeated
    headers joined with ", "."""
    try:
        text = head.decode()
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise HttpFailure(ErrorKind.PROTOCOL, f"malformed status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            raise HttpFailure(ErrorKind.PROTOCOL, f"malformed header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        previous = headers.get(key)
        headers[key] = value if previous is None else f"{previous}, {value}"
    return version, int(code), headers


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._received = False
        self._response: Response | None = None
        self._mode = ""  # "", "length", "chunked", "close": how the body of the current response ends
        self._remaining = 0
        self._body = bytearray()
        self._chunk_left = -1  # -1: a chunk-size line is next; -2: trailers are next
        self._arrived_at = 0.0

    # --- asyncio.Protocol ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self.reusable = False  # bytes nobody asked for: this connection is out of step
            self._close()
            return
        self._received = True
        self._arrived_at = time.perf_counter()  # when these bytes reached us, before the parsing of them
        self._buffer += data
        try:
            self._advance()
        except HttpFailure as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost settles what was in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._response is not None and self._mode == "close":
            self._arrived_at = time.perf_counter()  # the close is what ended this body
            self._finish()
            return
        if not self._received and self._reused_request:
            waiter.set_exception(_Stale())
        elif isinstance(exc, OSError):
            waiter.set_exception(HttpFailure(ErrorKind.CONNECT, str(exc) or type(exc).__name__))
        elif isinstance(exc, ssl.SSLError):
            waiter.set_exception(HttpFailure(ErrorKind.TLS, str(exc)))
        elif not self._received:
            waiter.set_exception(HttpFailure(ErrorKind.PROTOCOL, "Server disconnected without sending a response."))
        else:
            waiter.set_exception(HttpFailure(ErrorKind.PROTOCOL, "Server disconnected before the response ended."))
        self._waiter = None

    # --- requests --------------------------------------------------------------------------------------------

    _reused_request = False

    def start(self, data: bytes, reused: bool) -> asyncio.Future[Response]:
        """Send one request; the future holds its response."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        self._received = False
        self._reused_request = reused
        self._response = None
        self._mode = ""
        self._buffer.clear()
        self._body.clear()
        self._chunk_left = -1
        self.transport.write(data)
        return waiter

    def timed_out(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpFailure(ErrorKind.TIMEOUT, "timed out waiting for the response"))
        self._waiter = None
        self.reusable = False
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _fail(self, exc: HttpFailure) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._waiter = None
        self.reusable = False
        self._close()

    def _finish(self) -> None:
        response = self._response
        waiter = self._waiter
        assert response is not None and waiter is not None
        response.done_at = self._arrived_at if self._received else time.perf_counter()
        response.body = bytes(self._body)
        self._waiter = None
        self._response = None
        if self._buffer:
            self.reusable = False  # more bytes than the response framed
        if not self.reusable:
            self._close()
        if not waiter.done():
            waiter.set_result(response)

    def _advance(self) -> None:
        buffer = self._buffer
        while self._response is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise HttpFailure(ErrorKind.PROTOCOL, "response head larger than 64 KiB")
                return
            version, status, headers = parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._response = Response(status, version, headers, b"", self._arrived_at)
            connection = headers.get("connection", "").lower()
            if "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection):
                self.reusable = False
            if status in _NO_BODY_STATUSES:
                self._mode = "length"
                self._remaining = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._mode = "chunked"
            elif "content-length" in headers:
                try:
                    self._remaining = int(headers["content-length"].split(",")[0])
                except ValueError:
                    raise HttpFailure(
                        ErrorKind.PROTOCOL, f"malformed Content-Length {headers['content-length']!r}"
                    ) from None
                if self._remaining < 0:
                    raise HttpFailure(ErrorKind.PROTOCOL, "negative Content-Length")
                self._mode = "length"
            else:
                self._mode = "close"
                self.reusable = False
        if self._mode == "length":
            if len(buffer) >= self._remaining:
                self._body += buffer[: self._remaining]
                del buffer[: self._remaining]
                self._finish()
        elif self._mode == "chunked":
            self._chunks()
        else:
            self._body += buffer
            buffer.clear()

    def _chunks(self) -> None:
        buffer = self._buffer
        while True:
            if self._chunk_left == -1:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1024:
                        raise HttpFailure(ErrorKind.PROTOCOL, "chunk-size line too long")
                    return
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpFailure(ErrorKind.PROTOCOL, f"malformed chunk size {size_text[:20]!r}") from None
                del buffer[: end + 2]
                self._chunk_left = -2 if size == 0 else size
            elif self._chunk_left == -2:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:  # the blank line after the trailers
                    self._finish()
                    return
            else:
                if len(buffer) < self._chunk_left + 2:
                    return
                if buffer[self._chunk_left : self._chunk_left + 2] != b"\r\n":
                    raise HttpFailure(ErrorKind.PROTOCOL, "chunk not followed by CRLF")
                self._body += buffer[: self._chunk_left]
                del buffer[: self._chunk_left + 2]
                self._chunk_left = -1


class FastClient:
    """POSTs one body to one URL with per-request ids, over a pool of keep-alive connections."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        tls: TlsOptions,
        timeout: float,
        entry: str = "ingress",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.entry = entry
        self.timeout = timeout
        self._host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        self._port = parts.port or default_port
        self._ssl = ssl_context(tls) if parts.scheme == "https" else None
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._parts = self._template(parts.netloc, parts.port, default_port, parts.path, parts.query, headers, body)

    @staticmethod
    def _template(
        netloc: str,
        port: int | None,
        default_port: int,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[bytes, bytes, bytes, bool]:
        """The request's bytes around the two ids: (before the first, between, after, request id comes first)."""
        authority = netloc.rpartition("@")[2]
        if port == default_port:
            authority = authority.rpartition(":")[0]
        target = (path or "/") + (f"?{query}" if query else "")
        fields: dict[str, str] = {"host": authority}
        for name, value in headers.items():
            fields[name.lower()] = value
        fields.setdefault("accept", "*/*")
        fields.setdefault("user-agent", "mlops-trace")
        fields["x-request-id"] = _ID_MARK
        fields["traceparent"] = _TP_MARK
        fields["content-length"] = str(len(body))
        fields.pop("transfer-encoding", None)
        fields.pop("connection", None)
        lines = [f"POST {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in fields.items()]
        text = "\r\n".join(lines) + "\r\n\r\n"
        id_first = text.index(_ID_MARK) < text.index(_TP_MARK)
        first, second = (_ID_MARK, _TP_MARK) if id_first else (_TP_MARK, _ID_MARK)
        head, _, rest = text.partition(first)
        middle, _, tail = rest.partition(second)
        return head.encode(), middle.encode(), tail.encode() + body, id_first

    def request_bytes(self, request_id: str, traceparent: str) -> bytes:
        head, middle, tail, id_first = self._parts
        first, second = (request_id, traceparent) if id_first else (traceparent, request_id)
        return b"".join((head, first.encode(), middle, second.encode(), tail))

    async def _connect(self) -> tuple[_Connection, float, float | None]:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                transport, conn = await loop.create_connection(_Connection, self._host, self._port)
        except TimeoutError:
            raise HttpFailure(ErrorKind.TIMEOUT, "timed out connecting") from None
        except OSError as exc:
            raise HttpFailure(ErrorKind.CONNECT, str(exc) or type(exc).__name__) from None
        connected = time.perf_counter()
        connect_ms = round((connected - start) * 1000.0, 3)
        if self._ssl is None:
            self._open.add(conn)
            return conn, connect_ms, None
        try:
            async with asyncio.timeout(self.timeout):
                secure = await loop.start_tls(transport, conn, self._ssl, server_hostname=self._host)
        except TimeoutError:
            transport.close()
            raise HttpFailure(ErrorKind.TIMEOUT, "timed out connecting") from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            transport.close()
            raise HttpFailure(ErrorKind.TLS, str(exc)) from None
        except OSError as exc:
            transport.close()
            raise HttpFailure(ErrorKind.CONNECT, str(exc) or type(exc).__name__) from None
        if secure is None:
            transport.close()
            raise HttpFailure(ErrorKind.TLS, "TLS handshake did not complete")
        assert isinstance(secure, asyncio.Transport)
        conn.transport = secure
        self._open.add(conn)
        return conn, connect_ms, round((time.perf_counter() - connected) * 1000.0, 3)

    async def _attempt(self, data: bytes, allow_reuse: bool) -> tuple[Response, ClientPhases, _Connection, float]:
        """One try: the response, its phases, the connection and when the try began (before connect or send)."""
        began = time.perf_counter()
        conn: _Connection | None = None
        while allow_reuse and self._idle:
            candidate = self._idle.pop()
            if not candidate.closed and candidate.reusable:
                conn = candidate
                break
            self._open.discard(candidate)
        connect_ms: float | None = None
        tls_ms: float | None = None
        reused = conn is not None
        if conn is None:
            conn, connect_ms, tls_ms = await self._connect()
        loop = asyncio.get_running_loop()
        sent_start = time.perf_counter()
        waiter = conn.start(data, reused)
        sent = time.perf_counter()
        timer = loop.call_at(loop.time() + self.timeout, conn.timed_out)
        try:
            response = await waiter
        finally:
            timer.cancel()
        phases = ClientPhases(
            connect_ms=connect_ms,
            tls_ms=tls_ms,
            send_ms=round((sent - sent_start) * 1000.0, 3),
            wait_ms=round((response.headers_at - sent) * 1000.0, 3),
            receive_ms=round((response.done_at - response.headers_at) * 1000.0, 3),
            reused_connection=reused,
        )
        return response, phases, conn, began

    async def send(self, request_id: str, traceparent: str, *, keep_body: bool = False) -> Exchange:
        """One request, as an Exchange. The body is kept only when asked or on a status other than 2xx."""
        data = self.request_bytes(request_id, traceparent)
        started_at = time.time()
        start = time.perf_counter()
        try:
            try:
                response, phases, conn, began = await self._attempt(data, True)
            except _Stale:
                response, phases, conn, _ = await self._attempt(data, False)
                began = start  # the try on the stale connection is part of what this request cost
        except (HttpFailure, _Stale) as exc:
            kind, message = (
                (exc.kind, exc.message)
                if isinstance(exc, HttpFailure)
                else (ErrorKind.PROTOCOL, "Server disconnected without sending a response.")
            )
            return Exchange.failed(
                entry=self.entry,
                url=self.url,
                request_id=request_id,
                traceparent=traceparent,
                started_at=started_at,
                total_ms=round((time.perf_counter() - start) * 1000.0, 3),
                phases=ClientPhases(),
                kind=kind,
                message=message,
            )
        # Up to the answer's last byte as the protocol parsed it, not to when this coroutine was resumed: the event
        # loop's turn in between is the prober's cost, not the server's (wrk stops its clock the same way).
        total = round((response.done_at - began) * 1000.0, 3)
        if conn.reusable and not conn.closed:
            self._idle.append(conn)
        else:
            self._open.discard(conn)
        status = response.status
        body = response.body[:BODY_LIMIT] if keep_body or not 200 <= status < 300 else b""
        return Exchange(
            entry=self.entry,
            url=self.url,
            request_id=request_id,
            traceparent=traceparent,
            started_at=started_at,
            status=status,
            headers=response.headers,
            body=body,
            total_ms=total,
            phases=phases,
            http_version=response.version,
        )

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in self._open:
            conn._close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks
