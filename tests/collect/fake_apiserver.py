"""A scriptable Kubernetes API stand-in for collector tests: fixed answers per path, 403s and 404s on demand,
paginated lists, answers trickled a byte at a time, and a real websocket port-forward (the v4.channel.k8s.io framing
the official client speaks) that answers HTTP requests as an Envoy admin would.

Everything it starts ends with `serving`: a trickle stops when the server is stopped (or the client goes away)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def status_body(code: int, message: str) -> bytes:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    ).encode()


@dataclass(frozen=True)
class Trickle:
    """Answer 200 with `body`, one byte every `interval` seconds (the headers too when `headers_too`)."""

    body: bytes
    interval: float
    headers_too: bool = False


@dataclass
class FakeApi:
    """What the fake answers. `routes`: path (no query) -> (status, body, content type)."""

    routes: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)
    trickles: dict[str, Trickle] = field(default_factory=dict)
    default_status: int = 404  # what a path with no route answers (403: a cluster that refuses everything)
    any_log: str | None = None  # when set, every `.../log` path with no route answers this (a server that lies)
    admin_interval: float = 0.0  # > 0: the port-forwarded admin answers one byte per frame, this far apart
    stopped: threading.Event = field(default_factory=threading.Event)
    pages: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)  # path -> pages of items
    admin: dict[str, bytes] = field(default_factory=dict)  # Envoy admin path -> body, over port-forward
    portforward_status: int = 101  # anything else refuses the websocket upgrade with that status
    requests: list[tuple[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # Authorization header of each request
    # (log path, container, previous) -> text: logs told apart by `?container=` and `?previous=true`. A previous run
    # with no entry answers 400 as the API server does when the kubelet holds none.
    container_logs: dict[tuple[str, str, bool], str] = field(default_factory=dict)

    def json(self, path: str, payload: Mapping[str, Any], status: int = 200) -> None:
        self.routes[path] = (status, json.dumps(payload).encode(), "application/json")

    def items(self, path: str, kind: str, items: list[dict[str, Any]]) -> None:
        self.json(path, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {}, "items": items})

    def status(self, path: str, code: int, message: str) -> None:
        self.routes[path] = (code, status_body(code, message), "application/json")

    def text(self, path: str, body: str) -> None:
        self.routes[path] = (200, body.encode(), "text/plain")

    def trickle(self, path: str, body: bytes, interval: float, headers_too: bool = False) -> None:
        self.trickles[path] = Trickle(body, interval, headers_too)

    def log(self, path: str, container: str, body: str, previous: bool = False) -> None:
        self.container_logs[(path, container, previous)] = body


def _named_only(body: bytes, name: str) -> bytes:
    """A List answered to `fieldSelector=metadata.name=<name>`: only the items of that name, as the API server does."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        return body
    document["items"] = [i for i in document["items"] if (i.get("metadata") or {}).get("name") == name]
    return json.dumps(document).encode()


def _handler(api: FakeApi, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            with lock:
                api.requests.append(("GET", self.path))
                api.authorizations.append(self.headers.get("Authorization", ""))
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path.endswith("/portforward") and self.headers.get("Upgrade", "").lower() == "websocket":
                self._portforward(query)
                return
            if url.path in api.pages:
                self._page(url.path, query)
                return
            if url.path in api.trickles:
                self._trickle(api.trickles[url.path])
                return
            if url.path.endswith("/log") and self._container_log(url.path, query):
                return
            if api.any_log is not None and url.path.endswith("/log") and url.path not in api.routes:
                self._send(200, api.any_log.encode(), "text/plain")
                return
            code = api.default_status
            status, body, content_type = api.routes.get(
                url.path, (code, status_body(code, f"{url.path}: answered {code}"), "application/json")
            )
            if status == 200 and query.get("fieldSelector", "").startswith("metadata.name="):
                body = _named_only(body, query["fieldSelector"].partition("=")[2])
            self._send(status, body, content_type)

        def _container_log(self, path: str, query: Mapping[str, str]) -> bool:
            container = query.get("container", "")
            if query.get("previous") == "true":
                body = api.container_logs.get((path, container, True))
                if body is None:
                    pod = path.rsplit("/", 2)[-2]
                    message = f'previous terminated container "{container}" in pod "{pod}" not found'
                    self._send(400, status_body(400, message), "application/json")
                else:
                    self._send(200, body.encode(), "text/plain")
                return True
            current = api.container_logs.get((path, container, False))
            if current is None:
                return False
            self._send(200, current.encode(), "text/plain")
            return True

        def _trickle(self, trickle: Trickle) -> None:
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(trickle.body)}\r\n\r\n"
            ).encode()
            slow = head + trickle.body if trickle.headers_too else trickle.body
            self.close_connection = True
            try:
                if not trickle.headers_too:
                    self.wfile.write(head)
                    self.wfile.flush()
                for index in range(len(slow)):
                    if api.stopped.wait(trickle.interval):
                        return
                    self.wfile.write(slow[index : index + 1])
                    self.wfile.flush()
            except OSError:
                return  # the client gave up: what the tests want

        def _any(self) -> None:
            with lock:
                api.requests.append((self.command, self.path))
            self._send(405, status_body(405, "read-only"), "application/json")

        do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _page(self, path: str, query: Mapping[str, str]) -> None:
            pages = api.pages[path]
            index = int(query.get("continue") or 0)
            token = str(index + 1) if index + 1 < len(pages) else ""
            body = {"kind": "List", "apiVersion": "v1", "metadata": {"continue": token}, "items": pages[index]}
            self._send(200, json.dumps(body).encode(), "application/json")

        def _portforward(self, query: Mapping[str, str]) -> None:
            if api.portforward_status != 101:
                self._send(api.portforward_status, status_body(api.portforward_status, "refused"), "application/json")
                return
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
            self.end_headers()
            self.wfile.flush()
            port = int(query.get("ports", "0"))
            sock = self.connection
            port_bytes = struct.pack("<H", port)
            _send_frame(sock, b"\x00" + port_bytes)
            _send_frame(sock, b"\x01" + port_bytes)
            _serve_admin(sock, api)
            self.close_connection = True

    return Handler


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    header = bytes([0x82])
    if len(payload) < 126:
        header += bytes([len(payload)])
    elif len(payload) < 65536:
        header += bytes([126]) + struct.pack(">H", len(payload))
    else:
        header += bytes([127]) + struct.pack(">Q", len(payload))
    sock.sendall(header + payload)


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _frames(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    while True:
        try:
            first, second = _recv_exact(sock, 2)
        except (ConnectionError, OSError):
            return
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            length = struct.unpack(">H", _recv_exact(sock, 2))[0]
        elif length == 127:
            length = struct.unpack(">Q", _recv_exact(sock, 8))[0]
        mask = _recv_exact(sock, 4) if second & 0x80 else b"\x00\x00\x00\x00"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_recv_exact(sock, length)))
        yield opcode, payload


def _serve_admin(sock: socket.socket, api: FakeApi) -> None:
    """Channel 0 carries raw HTTP: answer each request like Envoy's admin (keep-alive, chunked for big bodies)."""
    admin: Mapping[str, bytes] = api.admin
    buffer = b""
    for opcode, payload in _frames(sock):
        if opcode == 0x8:
            return
        if opcode != 0x2 or not payload or payload[0] != 0:
            continue
        buffer += payload[1:]
        while b"\r\n\r\n" in buffer:
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1].decode()
            body = admin.get(path)
            if body is None:
                response = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
            else:
                chunked = b"".join(
                    f"{len(body[i : i + 1000]):x}\r\n".encode() + body[i : i + 1000] + b"\r\n"
                    for i in range(0, len(body), 1000)
                )
                response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
            if api.admin_interval <= 0:
                _send_frame(sock, b"\x00" + response)
                continue
            for index in range(len(response)):
                if api.stopped.wait(api.admin_interval):
                    return
                try:
                    _send_frame(sock, b"\x00" + response[index : index + 1])
                except OSError:
                    return


@contextmanager
def serving(api: FakeApi) -> Iterator[str]:
    """Serve on 127.0.0.1 (a free port); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api, threading.Lock()))
    server.daemon_threads = True
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        api.stopped.set()
        server.shutdown()
        server.server_close()


def write_kubeconfig(path: Path, server: str, token: str | None = None) -> Path:
    user = f"{{token: {token}}}" if token else "{}"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {server}\n"
        f"users:\n- name: fake\n  user: {user}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
        "current-context: fake\n",
        encoding="utf-8",
    )
    return path
