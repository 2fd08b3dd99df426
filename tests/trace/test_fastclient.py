"""The lean HTTP/1.1 client of `request --count`, against small servers on 127.0.0.1 started and stopped per test."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Self

from mlops_trace.trace.fastclient import FastClient, parse_head, supports
from mlops_trace.trace.record import ErrorKind, Exchange
from mlops_trace.trace.rest import TlsOptions

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"inputs": []}'
ANSWER = b'{"model_name":"m","outputs":[]}'


class Server:
    """A TCP server whose handler answers each connection; it counts connections and keeps the request heads."""

    def __init__(self, handler: Callable[[Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(self, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/models/m/infer"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and Content-Length body); None at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await reader.readexactly(length)


def _client(server: Server, timeout: float = 2.0, headers: dict[str, str] | None = None) -> FastClient:
    return FastClient(
        server.url, headers or {"content-type": "application/json"}, BODY, tls=TlsOptions(), timeout=timeout
    )


def _ok(extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n%s"
        % (
            len(ANSWER),
            ANSWER,
        )
    )


async def _serve_ok(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await server.read_request(reader) is not None:
        writer.write(
            _ok(b"X-Seldon-Route: :txn-baseline_1:\r\nX-Envoy-Upstream-Service-Time: 3\r\nVia: a\r\nVIA: b\r\n")
        )
        await writer.drain()


def _run(handler: Any, body: Callable[[Server], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Server(handler) as server:
            return await body(server)

    return asyncio.run(main())


def test_content_length_body_headers_case_insensitive_and_ids_per_request() -> None:
    async def body(server: Server) -> tuple[Exchange, Exchange, list[bytes]]:
        client = _client(server, headers={"content-type": "application/json", "host": "ml-api.example", "a": "b"})
        try:
            first = await client.send("mt-x-000001", "00-" + "a" * 32 + "-" + "b" * 16 + "-01", keep_body=True)
            second = await client.send("mt-x-000002", "00-" + "c" * 32 + "-" + "d" * 16 + "-01")
            return first, second, list(server.heads)
        finally:
            await client.aclose()

    first, second, server_heads = _run(_serve_ok, body)
    assert first.ok and first.status == 200 and first.http_version == "HTTP/1.1"
    assert first.route == ":txn-baseline_1:" and first.upstream_service_time_ms == 3.0
    assert first.headers["via"] == "a, b" and first.headers["content-type"] == "application/json"
    assert first.body == ANSWER and second.body == b""  # kept only when asked on a success
    assert first.total_ms is not None and first.phases.wait_ms is not None
    heads = [head.decode().lower() for head in server_heads]
    assert "host: ml-api.example\r\n" in heads[0] and "a: b\r\n" in heads[0]
    assert "x-request-id: mt-x-000001\r\n" in heads[0] and "x-request-id: mt-x-000002\r\n" in heads[1]
    assert "traceparent: 00-" + "c" * 32 in heads[1]
    assert f"content-length: {len(BODY)}\r\n" in heads[0]


def test_host_header_defaults_to_the_url_authority() -> None:
    client = FastClient("http://example.test:8080/p", {}, b"", tls=TlsOptions(), timeout=1.0)
    assert b"\r\nhost: example.test:8080\r\n" in client.request_bytes("r", "t")
    client = FastClient("https://example.test:443/p", {}, b"", tls=TlsOptions(insecure=True), timeout=1.0)
    assert b"\r\nhost: example.test\r\n" in client.request_bytes("r", "t")
    assert client.request_bytes("r1", "t1").startswith(b"POST /p HTTP/1.1\r\n")


def test_chunked_body_split_across_writes_with_extensions_and_trailers() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\na;ext=1\r\nno he")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"althy\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"8\r\n upstrea\r\n2\r\nm!\r\n0\r\nX-Trailer: 1\r\n\r\n")
            await writer.drain()

    async def body(server: Server) -> tuple[Exchange, Exchange, int]:
        client = _client(server)
        try:
            first = await client.send("r1", "t1")
            second = await client.send("r2", "t2")
            return first, second, server.connections
        finally:
            await client.aclose()

    first, second, connections = _run(handler, body)
    assert first.status == 503 and not first.ok and first.error_kind is None
    assert first.body == b"no healthy upstream!"  # an error status keeps the body for the explanation
    assert second.body == first.body and second.phases.reused_connection and connections == 1


def test_keep_alive_reuses_one_connection_per_worker() -> None:
    async def body(server: Server) -> tuple[list[Exchange], int]:
        client = _client(server)
        try:

            async def worker() -> list[Exchange]:
                return [await client.send(f"r{i}", "t") for i in range(20)]

            results = await asyncio.gather(worker(), worker())
            return results[0] + results[1], server.connections
        finally:
            await client.aclose()

    exchanges, connections = _run(_serve_ok, body)
    assert all(ex.ok for ex in exchanges) and connections == 2
    assert sum(ex.phases.reused_connection for ex in exchanges) == 38
    assert sum(ex.phases.connect_ms is not None for ex in exchanges) == 2


def test_connection_close_answers_and_idle_closes_lead_to_new_connections() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        if server.connections % 2:
            writer.write(_ok(b"Connection: close\r\n"))  # says so, then closes
        else:
            writer.write(_ok())  # keeps it open in words, then closes it anyway (idle timeout)
        await writer.drain()

    async def body(server: Server) -> tuple[list[Exchange], int]:
        client = _client(server)
        try:
            results = []
            for index in range(6):
                results.append(await client.send(f"r{index}", "t"))
                await asyncio.sleep(0.02)
            return results, server.connections
        finally:
            await client.aclose()

    exchanges, connections = _run(handler, body)
    assert all(ex.ok for ex in exchanges), [ex.error for ex in exchanges]
    assert connections == 6


def test_stale_keep_alive_connection_is_retried_once() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(_ok())
        await writer.drain()
        if server.connections == 1:
            await server.read_request(reader)  # the second request arrives, and the server closes unanswered
            return
        await _serve_ok(server, reader, writer)

    async def body(server: Server) -> list[Exchange]:
        client = _client(server)
        try:
            return [await client.send("r1", "t"), await client.send("r2", "t")]
        finally:
            await client.aclose()

    first, second = _run(handler, body)
    assert first.ok and second.ok and not second.phases.reused_connection


def test_close_without_answer_on_a_new_connection_is_a_protocol_error() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)

    async def body(server: Server) -> Exchange:
        client = _client(server)
        try:
            return await client.send("r1", "t")
        finally:
            await client.aclose()

    exchange = _run(handler, body)
    assert exchange.error_kind is ErrorKind.PROTOCOL and exchange.status is None and not exchange.ok


def test_malformed_response_is_a_protocol_error() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()

    async def body(server: Server) -> Exchange:
        client = _client(server)
        try:
            return await client.send("r1", "t")
        finally:
            await client.aclose()

    exchange = _run(handler, body)
    assert exchange.error_kind is ErrorKind.PROTOCOL and "status line" in (exchange.error or "")


def test_reset_is_a_connect_error() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def body(server: Server) -> Exchange:
        client = _client(server)
        try:
            return await client.send("r1", "t")
        finally:
            await client.aclose()

    exchange = _run(handler, body)
    assert exchange.error_kind in (ErrorKind.CONNECT, ErrorKind.PROTOCOL) and not exchange.ok


def test_no_answer_times_out() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(2)

    async def body(server: Server) -> Exchange:
        client = _client(server, timeout=0.2)
        try:
            return await client.send("r1", "t")
        finally:
            await client.aclose()

    exchange = _run(handler, body)
    assert exchange.error_kind is ErrorKind.TIMEOUT and exchange.error == "timed out waiting for the response"
    assert exchange.total_ms is not None and 150 <= exchange.total_ms < 1500


def test_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> Exchange:
        client = FastClient(f"http://127.0.0.1:{port}/x", {}, BODY, tls=TlsOptions(), timeout=1.0)
        return await client.send("r1", "t")

    exchange = asyncio.run(main())
    assert exchange.error_kind is ErrorKind.CONNECT and exchange.url == f"http://127.0.0.1:{port}/x"


def test_parse_head_and_supports() -> None:
    version, status, headers = parse_head(b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nx-a: 2\r\nContent-Length:0")
    assert (version, status, headers) == ("HTTP/1.1", 404, {"x-a": "1, 2", "content-length": "0"})
    assert supports("https://h:1", http2=False) and not supports("https://h:1", http2=True)
    assert not supports("ftp://h", http2=False)


def test_total_covers_the_servers_delay_and_ends_at_the_last_byte() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            await asyncio.sleep(0.05)
            head, _, rest = _ok().partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.03)  # the body comes later: receive time is part of the total
            writer.write(rest)
            await writer.drain()

    async def body(server: Server) -> list[Exchange]:
        client = _client(server)
        try:
            return [await client.send(f"mt-x-{n}", "00-" + "a" * 32 + "-" + "b" * 16 + "-01") for n in range(2)]
        finally:
            await client.aclose()

    first, second = _run(handler, body)
    for exchange in (first, second):
        phases = exchange.phases
        assert exchange.ok and exchange.total_ms is not None
        assert phases.wait_ms is not None and phases.receive_ms is not None and phases.send_ms is not None
        assert 80.0 <= exchange.total_ms < 1000.0
        assert phases.wait_ms >= 50.0 and phases.receive_ms >= 30.0
        parts = (phases.connect_ms or 0.0) + phases.send_ms + phases.wait_ms + phases.receive_ms
        assert abs(exchange.total_ms - parts) < 2.0  # the total is its phases, with no scheduling time after them
    assert first.phases.connect_ms is not None and second.phases.reused_connection
