"""OTLP export against a real collector stand-in: a stdlib HTTP server on 127.0.0.1 that decodes every POST with
opentelemetry-proto (gunzipping when Content-Encoding says so), as an OpenTelemetry Collector's otlphttp receiver
would. `request --count N` exports every request in batches; sampling, headers, endpoint rules, gzip, JSON and the
collector's failures are checked on what arrives, and the request's exit code never depends on the export.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from mlops_trace.trace.attribution import attribute
from mlops_trace.trace.otlp.config import Compression, OtlpConfig, OtlpProtocol, resolve
from mlops_trace.trace.otlp.encode import Batch
from mlops_trace.trace.otlp.exporter import BatchExporter
from mlops_trace.trace.otlp.sampling import sampled, threshold
from mlops_trace.trace.otlp.transport import ExportError, HttpTransport
from mlops_trace.trace.record import Protocol, TraceResult
from tests.trace.helpers import exchange

SECRET = "sekrit-token-4f9a2c"


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    request: ExportTraceServiceRequest

    @property
    def spans(self) -> list[Span]:
        return [span for rs in self.request.resource_spans for ss in rs.scope_spans for span in ss.spans]


@dataclass
class Collector:
    """What the stand-in collector received, and how it answers (a queue of statuses, then 200)."""

    url: str
    posts: list[Post] = field(default_factory=list)
    answers: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def spans(self) -> list[Span]:
        return [span for post in self.posts for span in post.spans]

    def trace_ids(self) -> set[str]:
        return {span.trace_id.hex() for span in self.spans}


def _decode(body: bytes, headers: dict[str, str]) -> ExportTraceServiceRequest:
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if headers.get("content-type") == "application/json":
        document = json.loads(body)
        for rs in document.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in span:  # OTLP/JSON ids are hex; the proto3 JSON mapping wants base64
                            span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
        return ParseDict(document, ExportTraceServiceRequest())
    assert headers.get("content-type") == "application/x-protobuf"
    return ExportTraceServiceRequest.FromString(body)


def _handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            time.sleep(collector.delay_s)
            with collector.lock:
                status, reply, extra = collector.answers.pop(0) if collector.answers else (200, b"", {})
                if status == 200:
                    collector.posts.append(Post(self.path, headers, _decode(body, headers)))
            if status == 200 and not reply:
                reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            for key, value in {"content-type": "application/x-protobuf", **extra}.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Handler


@pytest.fixture()
def collector() -> Iterator[Collector]:
    placeholder = Collector(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(placeholder))
    placeholder.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield placeholder
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA, server certificate for 127.0.0.1, its key), made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test CA")
    ca_key, ca, key, csr, cert = (directory / name for name in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1"]
        + ["-subj", "/CN=mlops-trace test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1"]
        + ["-extfile", extensions],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


@pytest.fixture()
def tls_collector(tmp_path: Path) -> Iterator[tuple[Collector, Path]]:
    ca, cert, key = _certificates(tmp_path)
    placeholder = Collector(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(placeholder))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    placeholder.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield placeholder, ca
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


# --- a small V2 model server for the CLI runs ---------------------------------------------------------------------


class _Model(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        metadata = {"name": "iris_1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4]}]}
        self._reply(200, json.dumps(metadata).encode(), {"content-type": "application/json"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {"x-seldon-route": ":iris_1:", "x-envoy-upstream-service-time": "2"}
        self._reply(200, b'{"model_name":"iris_1","outputs":[]}', headers)


@pytest.fixture(scope="module")
def model() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _request(model: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "request", "--no-stack", "--probes", "0", "--log-wait", "0"]
        + ["--url", model, "--model", "iris", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, **(env or {})},
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def _otlp_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "OTLP" in line or "exported" in line]


# --- encoding ------------------------------------------------------------------------------------------------------


def _result(trace_id: str = "a" * 32, status: int = 200) -> TraceResult:
    answer = exchange(status, {"x-seldon-route": ":a_1:", "x-envoy-upstream-service-time": "4"}, total_ms=10.0)
    answer = type(answer)(**{**answer.__dict__, "traceparent": f"00-{trace_id}-{'b' * 16}-01"})
    attribution = attribute(answer, path=None, nginx=None, envoy=None, model=None)
    return TraceResult(
        answer,
        Protocol.REST,
        "experiment ab",
        "a_1",
        attribution.total_ms,
        attribution.unexplained_ms,
        attribution.unexplained_source,
        attribution.hops,
        None,
        (),
        None,
    )


def _batch(*results: TraceResult, resource: tuple[tuple[str, str], ...] = ()) -> ExportTraceServiceRequest:
    batch = Batch(resource)
    for result in results:
        batch.add(result)
    return batch.request


def test_spans_are_a_client_span_and_one_child_per_hop_under_our_traceparent() -> None:
    request = ExportTraceServiceRequest.FromString(
        _batch(_result(), resource=(("service.name", "probe"),)).SerializeToString()
    )
    (resource_spans,) = request.resource_spans
    assert [(kv.key, kv.value.string_value) for kv in resource_spans.resource.attributes] == [("service.name", "probe")]
    spans = resource_spans.scope_spans[0].spans
    assert len(spans) == 8
    client, hops = spans[0], spans[1:]
    assert client.trace_id.hex() == "a" * 32 and client.span_id.hex() == "b" * 16
    assert client.kind == Span.SpanKind.SPAN_KIND_CLIENT and client.status.code == Status.StatusCode.STATUS_CODE_OK
    assert all(span.parent_span_id == client.span_id and span.trace_id == client.trace_id for span in hops)
    assert len({span.span_id for span in spans}) == 8
    assert [span.name.split()[1] for span in hops] == ["1", "2", "3", "4", "5", "6", "7"]
    for span in hops:
        assert span.end_time_unix_nano >= span.start_time_unix_nano >= client.start_time_unix_nano
        assert "mlops_trace.source" in {kv.key for kv in span.attributes}
    codes = {kv.key: kv.value.int_value for kv in client.attributes}
    assert codes["http.response.status_code"] == 200


def test_a_failed_request_is_an_error_span() -> None:
    request = _batch(_result(), _result("c" * 32, status=503))
    spans = request.resource_spans[0].scope_spans[0].spans
    assert len(request.resource_spans) == 1 and len(spans) == 16
    assert spans[0].status.code == Status.StatusCode.STATUS_CODE_OK
    assert spans[8].trace_id.hex() == "c" * 32 and spans[8].status.code == Status.StatusCode.STATUS_CODE_ERROR


# --- request --count N against the collector -----------------------------------------------------------------------


def test_every_request_of_a_count_run_is_exported_in_bounded_batches(model: str, collector: Collector) -> None:
    proc = _request(
        model,
        "--count",
        "60",
        "--concurrency",
        "4",
        "--otlp",
        collector.url,
        env={"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["count"] == 60
    assert len(collector.trace_ids()) == 60 and len(collector.spans) == 60 * 8
    # 100 spans a batch hold 12 whole requests (96 spans): 5 POSTs, each within the bound, none per request
    assert [len(post.spans) for post in collector.posts] == [96, 96, 96, 96, 96]
    assert {post.path for post in collector.posts} == {"/v1/traces"}
    assert all(len(post.request.resource_spans) == 1 for post in collector.posts)
    (line,) = _otlp_lines(proc)
    assert line.startswith("mlops-trace: exported 480 spans of 60 requests to " + collector.url + "/v1/traces")


def test_sample_keeps_the_requests_whose_trace_id_falls_above_the_threshold(model: str, collector: Collector) -> None:
    proc = _request(model, "--count", "200", "--concurrency", "4", "--otlp", collector.url, "--otlp-sample", "1/4")
    assert proc.returncode == 0, proc.stderr
    kept = collector.trace_ids()
    assert all(sampled(trace_id, threshold(0.25)) for trace_id in kept)
    assert 20 <= len(kept) <= 85  # binomial(200, 0.25): mean 50, sd 6.1
    assert len(collector.spans) == 8 * len(kept)
    (line,) = _otlp_lines(proc)
    assert f"(sampled {len(kept)} of 200)" in line


def test_a_single_request_is_exported_too(model: str, collector: Collector) -> None:
    proc = _request(model, env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url + "/base/"})
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(proc.stdout)
    assert [post.path for post in collector.posts] == ["/base/v1/traces"]
    assert collector.trace_ids() == {trace["traceparent"].split("-")[1]}


def test_environment_headers_gzip_resource_and_signal_endpoint(model: str, collector: Collector) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/never-used",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.url + "/custom/traces",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-ignored=general",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization=Bearer%20{SECRET}, x-tenant = team%2Ca",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,service.name=overridden",
        "OTEL_SERVICE_NAME": "probe-ci",
    }
    proc = _request(model, "--count", "3", env=env)
    assert proc.returncode == 0, proc.stderr
    (post,) = collector.posts
    assert post.path == "/custom/traces"
    assert post.headers["authorization"] == f"Bearer {SECRET}" and post.headers["x-tenant"] == "team,a"
    assert "x-ignored" not in post.headers
    assert post.headers["content-encoding"] == "gzip"
    resource = {kv.key: kv.value.string_value for kv in post.request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "probe-ci" and resource["deployment.environment"] == "ci"
    assert len(post.spans) == 24
    assert SECRET not in proc.stderr + proc.stdout


def test_the_flag_beats_the_environment_endpoint(model: str, collector: Collector) -> None:
    proc = _request(model, "--otlp", collector.url, env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/"})
    assert proc.returncode == 0, proc.stderr
    assert [post.path for post in collector.posts] == ["/v1/traces"]


def test_http_json_sends_otlp_json_with_hex_ids(model: str, collector: Collector) -> None:
    proc = _request(model, "--count", "2", "--otlp", collector.url, env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert proc.returncode == 0, proc.stderr
    (post,) = collector.posts
    assert post.headers["content-type"] == "application/json"
    assert len(collector.trace_ids()) == 2 and len(post.spans) == 16


def test_collector_refusal_is_one_warning_without_the_secret_and_the_exit_code_stays(
    model: str, collector: Collector
) -> None:
    echo = f"denied: authorization Bearer {SECRET} is not valid".encode()
    collector.answers = [(401, echo, {"content-type": "text/plain"})]
    proc = _request(
        model,
        "--count",
        "5",
        "--otlp",
        collector.url,
        env={"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {SECRET}"},
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = _otlp_lines(proc)
    assert "OTLP export failed: HTTP 401 denied" in line and "dropped 5 requests" in line
    assert SECRET not in proc.stderr + proc.stdout
    assert collector.posts == []


def test_unreachable_collector_and_timeout_are_warnings(model: str, collector: Collector) -> None:
    proc = _request(model, "--otlp", "http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    (line,) = _otlp_lines(proc)
    assert line.startswith("mlops-trace: OTLP export failed: ConnectError") and "127.0.0.1:9/v1/traces" in line
    collector.delay_s = 1.0
    proc = _request(model, "--otlp", collector.url, env={"OTEL_EXPORTER_OTLP_TIMEOUT": "200"})
    assert proc.returncode == 0, proc.stderr
    (line,) = _otlp_lines(proc)
    assert "OTLP export failed: ReadTimeout" in line


def test_bad_flags_exit_2_in_one_line(model: str, collector: Collector) -> None:
    for args, message in (
        (("--otlp", collector.url, "--otlp-sample", "2"), "--otlp-sample '2'"),
        (("--otlp-sample", "0.5"), "--otlp-sample limits the OTLP export"),
        (("--otlp", "collector:4318"), "--otlp collector:4318: expected an http"),
    ):
        proc = _request(model, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert collector.posts == []


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        return ExportTraceServiceResponse()


@pytest.fixture()
def grpc_collector() -> Iterator[tuple[str, _TraceService]]:
    import grpc

    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", service
    server.stop(grace=None).wait(5)


def test_grpc_export_with_metadata_and_gzip(model: str, grpc_collector: tuple[str, _TraceService]) -> None:
    address, service = grpc_collector
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": address,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {SECRET}",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
    }
    proc = _request(model, "--count", "20", env=env)
    assert proc.returncode == 0, proc.stderr
    spans = [span for request in service.requests for span in request.resource_spans[0].scope_spans[0].spans]
    assert len(spans) == 160 and len({span.trace_id for span in spans}) == 20
    assert len(service.requests) == 3  # 64 spans a batch: 8 + 8 + 4 requests
    assert all(metadata["authorization"] == f"Bearer {SECRET}" for metadata in service.metadata)
    assert SECRET not in proc.stderr
    unreachable = _request(model, env={**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9"})
    assert unreachable.returncode == 0
    (line,) = _otlp_lines(unreachable)
    assert "OTLP export failed: gRPC UNAVAILABLE" in line


# --- transport edge cases ------------------------------------------------------------------------------------------


def _config(url: str, **kwargs: Any) -> OtlpConfig:
    return OtlpConfig(url=url + "/v1/traces", endpoint_from="--otlp", **kwargs)


def test_transient_answers_are_retried_and_partial_success_is_reported(collector: Collector) -> None:
    partial = ExportTraceServiceResponse()
    partial.partial_success.rejected_spans = 3
    partial.partial_success.error_message = "span too old"
    collector.answers = [(503, b"", {"retry-after": "0"}), (200, partial.SerializeToString(), {})]
    exporter = BatchExporter(_config(collector.url, compression=Compression.GZIP))
    exporter.add(_result())
    report = exporter.close()
    assert report.exported_spans == 8 and report.batches == 1 and report.error is None
    assert report.rejected_spans == 3 and "rejected 3 spans: span too old" in report.line()
    assert len(collector.posts) == 1


def test_a_4xx_is_not_retried(collector: Collector) -> None:
    collector.answers = [(400, b"bad", {"content-type": "text/plain"}), (400, b"bad", {"content-type": "text/plain"})]
    transport = HttpTransport(_config(collector.url))
    with pytest.raises(ExportError, match="HTTP 400 bad$"):
        transport.send(_batch(_result()))
    transport.close()
    assert len(collector.answers) == 1


def test_tls_verifies_the_collector_with_the_configured_ca_and_never_without(
    tls_collector: tuple[Collector, Path],
) -> None:
    collector, ca = tls_collector
    resolved = resolve(collector.url, None, {"OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca)})
    assert resolved.config is not None and resolved.config.certificate == ca
    exporter = BatchExporter(resolved.config)
    exporter.add(_result())
    report = exporter.close()
    assert report.error is None and report.exported_spans == 8 and len(collector.spans) == 8
    unverified = resolve(collector.url, None, {}).config
    assert unverified is not None
    exporter = BatchExporter(unverified)
    exporter.add(_result())
    report = exporter.close()
    assert report.error is not None and "CERTIFICATE_VERIFY_FAILED" in report.error
    assert report.dropped_requests == 1 and len(collector.spans) == 8


@respx.mock
def test_retries_stop_after_three_attempts_and_an_http_date_retry_after_falls_back() -> None:
    route = respx.post("http://collector:4318/v1/traces").mock(
        return_value=httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    transport = HttpTransport(_config("http://collector:4318", protocol=OtlpProtocol.HTTP_PROTOBUF))
    with pytest.raises(ExportError, match=r"HTTP 503 \(after 3 attempts\)"):
        transport.send(_batch(_result()))
    assert route.call_count == 3


@respx.mock
def test_a_2xx_without_a_response_message_counts_as_taken() -> None:
    respx.post("http://collector:4318/v1/traces").mock(return_value=httpx.Response(200, content=b"\xff\xfe not proto"))
    delivered = HttpTransport(_config("http://collector:4318")).send(_batch(_result()))
    assert delivered.rejected_spans == 0
