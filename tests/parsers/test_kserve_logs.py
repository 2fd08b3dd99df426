"""KServe's container log lines (parsers/logs/kserve.py), as kserve 0.21.0 prints them (measured, KSERVE-FACTS §5.1–5.4;
formats in kserve/kserve aaac4e2 python/kserve/kserve/logging.py and python/storage/kserve_storage/logging.py) and as
queue-proxy writes them (knative/serving knative-v1.23.0: pkg/http/handler/timeout.go, vendored
knative.dev/pkg/network/error_handler.go, the zap JSON of config/core/configmaps/logging.yaml)."""

from __future__ import annotations

import json

import pytest

from mlops_trace.parsers.logs.kserve import (
    QueueProxyEvent,
    StorageEventKind,
    access_entry,
    error_handler,
    iter_lines,
    parse_line,
    queue_proxy_line,
    request_timing,
    storage_event,
)

STARTED = ("2026-08-21 10:00:00.512 1 storage.initializer INFO [initializer-entrypoint:<module>():17] Initializing, "
           "args: (src_uri, dest_path): [('s3://models/sklearn/iris', '/mnt/models')]")
COPYING = ("2026-08-21 10:00:00.530 1 storage.initializer INFO [kserve_storage.py:download():331] Copying contents of "
           "s3://models/sklearn/iris to local")
COPIED = ("2026-08-21 10:00:01.904 1 storage.initializer INFO [kserve_storage.py:download():420] Successfully copied "
          "s3://models/sklearn/iris to /mnt/models")
DOWNLOADED = ("2026-08-21 10:00:01.904 1 storage.initializer INFO [kserve_storage.py:download():421] Model downloaded in "
              "1.3741 seconds.")
NO_CREDENTIALS = ("2026-08-21 10:00:01.101 1 storage.initializer ERROR [initializer-entrypoint:<module>():28] Storage "
                  "initialization failed: S3 authentication failed. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use "
                  "awsAnonymousCredential=true.")
S3_ERROR = ("2026-08-21 10:00:01.100 1 storage.initializer ERROR [storage_errors.py:raise_storage_error():42] S3 error "
            "for s3://models/sklearn/iris: Unable to locate credentials")
UNEXPECTED = ("2026-08-21 10:00:01.100 1 storage.initializer ERROR [initializer-entrypoint:<module>():31] Unexpected "
              'error during storage initialization: Could not connect to the endpoint URL: "http://127.0.0.1:1/mybucket"')
EMPTY = ("2026-08-21 10:00:01.100 1 storage.initializer ERROR [initializer-entrypoint:<module>():28] Storage "
         "initialization failed: Failed to fetch model. No model found in s3://models/sklearn/empty.")
OLD_STARTED = ("2023-05-02 10:00:00.512 1 kserve INFO [storage-initializer-entrypoint:<module>():16] Initializing, args: "
               "src_uri [gs://kfserving-examples/models/sklearn/1.0/model] dest_path[ [/mnt/models]")
OLD_TRACEBACK_END = "RuntimeError: Failed to fetch model. No model found in gs://bucket/missing."


@pytest.mark.parametrize(
    ("line", "kind", "uri", "dest"),
    [
        (STARTED, StorageEventKind.STARTED, "s3://models/sklearn/iris", "/mnt/models"),
        (OLD_STARTED, StorageEventKind.STARTED, "gs://kfserving-examples/models/sklearn/1.0/model", "/mnt/models"),
        (COPYING, StorageEventKind.COPYING, "s3://models/sklearn/iris", None),
        (COPIED, StorageEventKind.COPIED, "s3://models/sklearn/iris", "/mnt/models"),
        (S3_ERROR, StorageEventKind.ERROR, "s3://models/sklearn/iris", None),
        (EMPTY, StorageEventKind.FAILED, "s3://models/sklearn/empty", None),
        (OLD_TRACEBACK_END, StorageEventKind.NO_MODEL, "gs://bucket/missing", None),
    ],
)
def test_what_the_storage_initializer_says(line: str, kind: StorageEventKind, uri: str | None, dest: str | None) -> None:
    event = storage_event(3, line)
    assert event is not None and event.kind is kind and event.lineno == 3
    assert (event.uri, event.dest) == (uri, dest)


def test_why_the_download_failed() -> None:
    failed = storage_event(1, NO_CREDENTIALS)
    assert failed is not None and failed.kind is StorageEventKind.FAILED
    assert failed.reason is not None and failed.reason.startswith("S3 authentication failed.")
    unexpected = storage_event(1, UNEXPECTED)
    assert unexpected is not None and unexpected.kind is StorageEventKind.FAILED
    assert unexpected.reason == 'Could not connect to the endpoint URL: "http://127.0.0.1:1/mybucket"'
    s3 = storage_event(1, S3_ERROR)
    assert s3 is not None and s3.reason == "Unable to locate credentials"
    downloaded = storage_event(1, DOWNLOADED)
    assert downloaded is not None and downloaded.kind is StorageEventKind.DOWNLOADED and downloaded.seconds == 1.3741
    assert storage_event(1, "Traceback (most recent call last):") is None
    assert storage_event(1, "") is None


def test_the_kserve_logging_format() -> None:
    line = parse_line(5, "2026-08-21 10:00:05.001 1 kserve INFO [model_server.py:register_model():472] "
                         "Registering model: sklearn-iris\n")
    assert line is not None and line.lineno == 5 and line.pid == 1 and line.logger == "kserve"
    assert line.level == "INFO" and line.where == "model_server.py:register_model():472"
    assert line.function == "register_model" and line.message == "Registering model: sklearn-iris"
    assert line.time is not None and (line.time.hour, line.time.microsecond) == (10, 1000)
    server = parse_line(6, "2026-08-21 10:00:05.210 1 uvicorn.error INFO:     Uvicorn running on "
                           "http://0.0.0.0:8080 (Press CTRL+C to quit)")
    assert server is not None and server.logger == "uvicorn.error" and server.message.startswith("Uvicorn running")
    # A `kubectl logs --timestamps` prefix is allowed; a traceback line and queue-proxy's JSON are not this format.
    assert parse_line(7, "2026-08-21T10:00:05.210Z 2026-08-21 10:00:05.210 1 kserve INFO [a.py:f():1] x") is not None
    assert parse_line(8, "Traceback (most recent call last):") is None
    assert parse_line(9, '{"severity":"INFO","message":"x"}') is None


def test_the_model_servers_requests() -> None:
    access = parse_line(1, '2026-08-21 10:15:02.124 uvicorn.access INFO:     127.0.0.1:43318 6714 - '
                           '"POST /v1/models/sklearn-iris:predict HTTP/1.1" 200 OK')
    assert access is not None and access.pid is None
    entry = access_entry(access)
    assert entry is not None and (entry.method, entry.path, entry.status) == ("POST", "/v1/models/sklearn-iris:predict", 200)
    assert entry.client == "127.0.0.1:43318" and request_timing(access) is None
    trace = parse_line(2, "2026-08-21 10:15:02.123 6714 kserve.trace requestId: trace-abc-123, preprocess_ms: 0.0045, "
                          "explain_ms: 0, predict_ms: 0.356, postprocess_ms: 0.0038")
    assert trace is not None and trace.level is None and access_entry(trace) is None
    timing = request_timing(trace)
    assert timing is not None and timing.request_id == "trace-abc-123" and timing.predict_ms == 0.356
    assert (timing.preprocess_ms, timing.explain_ms, timing.postprocess_ms) == (0.0045, 0.0, 0.0038)
    anonymous = parse_line(3, "2026-08-21 10:15:02.123 6714 kserve.trace requestId: N.A., preprocess_ms: 0.004, "
                              "explain_ms: 0, predict_ms: 0.3, postprocess_ms: 0.003")
    assert anonymous is not None
    timed = request_timing(anonymous)
    assert timed is not None and timed.request_id is None


@pytest.mark.parametrize(
    ("where", "handler", "status"),
    [
        ("errors.py:model_not_found_handler():151", "model_not_found_handler", 404),
        ("errors.py:invalid_input_handler():131", "invalid_input_handler", 400),
        ("errors.py:inference_error_handler():136", "inference_error_handler", 500),
        ("errors.py:generic_exception_handler():143", "generic_exception_handler", 500),
        ("errors.py:not_implemented_error_handler():163", "not_implemented_error_handler", 501),
    ],
)
def test_the_handler_that_answered_an_error(where: str, handler: str, status: int) -> None:
    line = parse_line(1, f"2026-08-21 10:15:03.010 6714 kserve ERROR [{where}] Exception:")
    assert line is not None and error_handler(line) == (handler, status)


def test_an_error_that_no_handler_logged() -> None:
    line = parse_line(1, "2026-08-21 10:00:05.000 1 kserve ERROR [__main__.py:<module>():39] failed to locate model "
                         "file for model sklearn-iris under dir /mnt/models,trying loading from model repository.")
    assert line is not None and error_handler(line) is None and line.function == "<module>"


def _zap(message: str, level: str = "error", **fields: str) -> str:
    document = {"severity": level.upper(), "timestamp": "2026-08-21T10:15:04.201Z", "logger": "queueproxy",
                "caller": "network/error_handler.go:33", "message": message, "commit": "98e5ef9",
                "knative.dev/key": "models/sklearn-iris-predictor-00001",
                "knative.dev/pod": "sklearn-iris-predictor-00001-deployment-7d9c8f6b5-x2x4q", **fields}
    return json.dumps(document)


def test_queue_proxys_failures() -> None:
    refused = queue_proxy_line(1, _zap("error reverse proxying request; sockstat: sockets: used 9\nTCP: inuse 4",
                                       error="dial tcp 127.0.0.1:8080: connect: connection refused"))
    assert refused is not None and refused.event is QueueProxyEvent.PROXY_ERROR
    assert refused.revision == "models/sklearn-iris-predictor-00001"
    assert refused.error == "dial tcp 127.0.0.1:8080: connect: connection refused"
    assert refused.pod is not None and refused.pod.startswith("sklearn-iris-predictor-00001-deployment")
    timeout = queue_proxy_line(2, _zap("Request timeout: 5m0s", level="warn"))
    assert timeout is not None and timeout.event is QueueProxyEvent.REQUEST_TIMEOUT and timeout.error is None
    start = queue_proxy_line(3, _zap("Response start timeout: 30s", level="warn"))
    assert start is not None and start.event is QueueProxyEvent.RESPONSE_START_TIMEOUT
    assert queue_proxy_line(4, _zap("Starting queue-proxy", level="info")) is None


def test_lines_stream_and_other_lines_are_skipped() -> None:
    lines = [(1, STARTED), (2, "Traceback (most recent call last):"), (3, COPYING), (4, "  File x")]
    assert [line.lineno for line in iter_lines(iter(lines))] == [1, 3]
