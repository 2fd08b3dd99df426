"""The HTTP side of `bundle serve`: a threaded server that answers every request, however broken, with a Status.

Whatever arrives gets an answer shaped like the API server's (`kind: Status` JSON) and a line in the request log,
and never a traceback: a malformed request line or header is a 400, a method other than GET and HEAD a 405, a bad
`Content-Length` a 400 (413 when too large), and a fault in the handler a 500 with one line on stderr. A request body
is read only when the API asks for it (`reads_body`: the access review of `kubectl auth can-i`), within the request's
deadline and the body bound; any other body is never read: the answer goes out at once and the connection is closed,
after a bounded drain so the client still reads the answer. Slow clients are bounded too: the request line and headers must arrive within `head_seconds` of
their first byte (a client trickling a byte at a time is cut off), a kept-alive connection may idle `idle_seconds`,
and at most `max_connections` are served at once (more get a 503). The accept backlog is large, so a burst of
clients waits in the kernel's queue instead of being dropped and retried seconds later.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

# --- answers -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json_default(value: Any) -> Any:
    """Values a hand-written bundle's YAML can hold that JSON cannot (an unquoted timestamp, `!!binary`)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")  # how the API server writes a []byte field
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def json_response(status: int, payload: Mapping[str, Any]) -> Response:
    return Response(status, json.dumps(payload, default=_json_default).encode())


# The Status `reason` the API server gives with each code.
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "Timeout",
    413: "RequestEntityTooLarge",
    414: "RequestURITooLong",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
    505: "HTTPVersionNotSupported",
}


def status_response(code: int, message: str, reason: str | None = None) -> Response:
    """A `kind: Status` failure, the body the API server sends with every error."""
    return json_response(
        code,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason or _REASONS.get(code, "Unknown"), "code": code},
    )


class Api(Protocol):
    """What answers a parsed request: `BundleApi`, or a stand-in in tests."""

    def reads_body(self, method: str, raw_path: str) -> bool: ...

    def handle(self, method: str, raw_path: str, accept: str = "", body: bytes = b"") -> Response: ...


Record = Callable[[str, str], None]


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what one client can make the server hold: time, connections, bytes."""

    idle_seconds: float = 30.0  # a kept-alive connection waiting for its next request
    head_seconds: float = 10.0  # request line and headers, from their first byte
    write_seconds: float = 30.0  # sending one answer to a client that reads slowly
    max_connections: int = 512  # connections served at once; each holds a thread
    max_body_bytes: int = 1024 * 1024  # a larger announced body is refused with 413 (no body is ever read)
    linger_seconds: float = 2.0  # draining an unread body before closing, so the client reads the answer
    backlog: int = 1024  # the kernel caps it at net.core.somaxconn


MAX_REQUEST_LINE = 65536
MAX_LOGGED_CHARS = 8192
_LENGTH = re.compile(r"[0-9]+")


def printable(text: str) -> str:
    """`text` with anything but printable ASCII percent-encoded, so a request log line stays one line of text."""
    escaped = "".join(c if "!" <= c <= "~" else f"%{ord(c):02X}" if ord(c) < 256 else f"%u{ord(c):04X}" for c in text)
    if len(escaped) > MAX_LOGGED_CHARS:
        return f"{escaped[:MAX_LOGGED_CHARS]}...({len(escaped) - MAX_LOGGED_CHARS} more)"
    return escaped


def log_line(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    sys.stderr.write("mlops-trace: bundle serve: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# --- reading a request within its deadline -----------------------------------------------------------------------


class _DeadlineReader(io.RawIOBase):
    """The connection's input, where a request's head must arrive by a deadline set at its first byte.

    A socket timeout alone bounds each pause, so a client sending one byte every 2 s would hold a thread forever;
    here every read waits only until the deadline, whatever arrived before.
    """

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self._idle = 0.0
        self._head = 0.0
        self._deadline: float | None = None
        self.started = False  # some byte of the current request has arrived

    def readable(self) -> bool:
        return True

    def new_request(self, limits: ServeLimits) -> None:
        self._idle, self._head = limits.idle_seconds, limits.head_seconds
        self._deadline = None
        self.started = False

    def readinto(self, buffer: Any) -> int:
        if self._deadline is None:
            timeout = self._idle
        else:
            timeout = self._deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("the request head did not arrive in time")
        self._connection.settimeout(timeout)
        count = self._connection.recv_into(buffer)
        if count and self._deadline is None:
            self._deadline = time.monotonic() + self._head
            self.started = True
        return count


# --- the handler -------------------------------------------------------------------------------------------------


class BundleRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlops-trace-bundle-serve"
    # Small answers on a kept-alive connection otherwise wait ~40 ms for Nagle to meet the client's delayed ACK.
    disable_nagle_algorithm = True
    server: BundleHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._recorded = False
        self._answered = False
        self._linger = False

    def handle_one_request(self) -> None:
        self._recorded = self._answered = False
        self._reader.new_request(self.server.limits)
        self.command, self.path, self.requestline = "", "", ""
        self.request_version = "HTTP/1.1"  # until parsed: an error must still go out with a status line
        try:
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if line in (b"\r\n", b"\n"):
                line = self.rfile.readline(MAX_REQUEST_LINE + 1)  # one empty line before a request is allowed
            if not line:
                self.close_connection = True
                return
            self.raw_requestline = line
            if len(line) > MAX_REQUEST_LINE:
                self.requestline = str(line[:200], "iso-8859-1")
                self._refuse(414, f"the request line is longer than {MAX_REQUEST_LINE} bytes")
                return
            if not self.parse_request():
                if not self._answered:  # a line of only whitespace: parse_request sends nothing for it
                    self._refuse(400, "bad request syntax")
                return
            if self.request_version == "HTTP/0.9":
                self.request_version = "HTTP/1.1"
                self._refuse(400, "HTTP/0.9 requests are not supported")
                return
            self._answer()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if self._reader.started and not self._answered:
                self._best_effort(lambda: self._refuse(408, "the request did not arrive in time"))
        except ConnectionError:
            self.close_connection = True  # the client went away: nobody to answer
        except Exception as exc:  # a fault of ours outside the API: still one line, and an answer if possible
            self.close_connection = True
            log_line(f"error reading {printable(self.command or '-')} {printable(self.path)}: {_describe(exc)}")
            if not self._answered:
                self._best_effort(lambda: self._refuse(500, "internal error while reading the request"))

    def _best_effort(self, send: Callable[[], None]) -> None:
        try:
            send()
            self.wfile.flush()
        except OSError:
            pass

    def _record(self) -> None:
        if not self._recorded:
            self._recorded = True
            if self.command:
                self.server.record(printable(self.command), printable(self.path))
            else:
                self.server.record("-", printable(self.requestline))

    def _answer(self) -> None:
        self._record()
        closing = self.close_connection
        refusal = self._check_body_framing()
        if refusal is not None:
            self._send(refusal, close=True)
            return
        body = b""
        if self.server.api.reads_body(self.command, self.path) and not self.headers.get_all("Transfer-Encoding"):
            length = int((self.headers.get("Content-Length") or "0").strip())
            body = self.rfile.read(length)  # bounded by the framing check; the head's deadline covers it
            if len(body) < length:
                self.close_connection = True
                return  # the client went away mid-body: nobody to answer
            self.close_connection = closing  # the whole body is read: the connection can serve the next request
        try:
            response = self.server.api.handle(self.command, self.path, self.headers.get("Accept", ""), body)
        except Exception as exc:
            log_line(f"500 for {printable(self.command)} {printable(self.path)}: {_describe(exc)}")
            response = status_response(500, "internal error while serving this request (see the server's log)")
        self._send(response)

    def _check_body_framing(self) -> Response | None:
        """A refusal for a body we cannot frame; otherwise None, and a connection that will close when a body was
        announced, since the body is never read and must not be taken for the next request."""
        lengths = [value.strip() for value in self.headers.get_all("Content-Length") or []]
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings:
            self.close_connection = True
            if lengths:
                return status_response(400, "both Transfer-Encoding and Content-Length: the body cannot be framed")
            return None
        if not lengths:
            return None
        if len(set(lengths)) > 1:
            return status_response(400, f"conflicting Content-Length values: {', '.join(printable(v) for v in lengths)}")
        value = lengths[0]
        if not _LENGTH.fullmatch(value):
            return status_response(400, f"invalid Content-Length {printable(value)!r}: not a non-negative integer")
        limit = self.server.limits.max_body_bytes
        if len(value) > 18 or int(value) > limit:
            return status_response(413, f"request body of {printable(value)} bytes is larger than {limit}")
        if int(value) > 0:
            self.close_connection = True
        return None

    def handle_expect_100(self) -> bool:
        # No "100 Continue": the body is never read, so the client should not send it; the final answer follows.
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's errors (bad request line, header too long, ...) as a Status instead of an HTML page."""
        self._refuse(code, message or HTTPStatus(code).phrase)

    def _refuse(self, code: int, message: str) -> None:
        self._record()
        if self.request_version == "HTTP/0.9" or not self.request_version:
            self.request_version = "HTTP/1.1"
        self._send(status_response(code, message), close=True)

    def _send(self, response: Response, *, close: bool = False) -> None:
        self._answered = True
        if close:
            self.close_connection = True
        self.connection.settimeout(self.server.limits.write_seconds)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if response.status == 405:
            self.send_header("Allow", "GET, HEAD")
        if self.close_connection:
            self.send_header("Connection", "close")
            self._linger = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._linger:
                _drain(self.connection, self.server.limits)

    def log_message(self, format: str, *args: Any) -> None:
        return  # requests go to the request log, faults to `log_line`


def _drain(connection: socket.socket, limits: ServeLimits) -> None:
    """Half-close, then read and discard what the client still sends (an unread body) until it closes, within
    bounds: closing with unread input makes the kernel send a reset, which can destroy the answer in flight."""
    deadline = time.monotonic() + limits.linger_seconds
    budget = limits.max_body_bytes
    sink = bytearray(16384)
    try:
        connection.shutdown(socket.SHUT_WR)
        while budget > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            connection.settimeout(remaining)
            count = connection.recv_into(sink, min(len(sink), budget))
            if not count:
                return
            budget -= count
    except OSError:
        return


# --- the server --------------------------------------------------------------------------------------------------


class _NoApi:
    def reads_body(self, method: str, raw_path: str) -> bool:
        return False

    def handle(self, method: str, raw_path: str, accept: str = "", body: bytes = b"") -> Response:
        return status_response(503, "the server is starting")


class BundleHTTPServer(ThreadingHTTPServer):
    """A thread per connection, bounded in number, on 127.0.0.1; `api` answers the requests it parses."""

    daemon_threads = True
    block_on_close = False  # stopping never waits on a slow client; open connections are shut instead

    def __init__(self, port: int, record: Record, limits: ServeLimits | None = None) -> None:
        self.limits = limits or ServeLimits()
        self.request_queue_size = self.limits.backlog
        self.api: Api = _NoApi()
        self.record = record
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), BundleRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(request)
        self._slots.release()

    def _refuse_busy(self, request: socket.socket) -> None:
        """Too many connections: a 503 written without waiting (it fits the socket buffer), then closed."""
        body = status_response(503, f"too many connections (more than {self.limits.max_connections})").body
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
        try:
            request.setblocking(False)
            request.send(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, (ConnectionError, TimeoutError)):
            return  # a client that went away or stalled: nothing to report
        log_line(f"error on a connection from {client_address[0]}:{client_address[1]}: {_describe(exc)}")

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it
            except OSError:
                pass


@contextmanager
def serving(server: BundleHTTPServer) -> Iterator[BundleHTTPServer]:
    """Run `server` on a thread for the duration of the block; afterwards it is stopped and every connection shut."""
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    worker.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        worker.join(timeout=5)
