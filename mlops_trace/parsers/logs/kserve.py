"""The log lines of a KServe pod's containers, one at a time, into what the checks ask of them: the storage
initializer's download (started, copied, failed and why), the model server's requests (uvicorn's access line, the
`kserve.trace` latencies, the exception handler that answered), and queue-proxy's proxy errors and timeouts.

Formats are KServe's own (kserve/kserve aaac4e2, after v0.20.0; measured with kserve 0.21.0):
`python/kserve/kserve/logging.py` and `python/storage/kserve_storage/logging.py` print

    %(asctime)s.%(msecs)03d %(process)s %(name)s %(levelname)s [%(filename)s:%(funcName)s():%(lineno)s] %(message)s

with the date as `%Y-%m-%d %H:%M:%S`; `kserve.trace` drops the level and the location; uvicorn's lines carry its
`levelprefix` (`INFO:     `), the access one without the process first. queue-proxy writes Knative's zap JSON
(knative/serving config/core/configmaps/logging.yaml), which `records.parse_line` reads; this module names its
events (knative/serving pkg/http/handler/timeout.go, vendored knative.dev/pkg/network/error_handler.go).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mlops_trace.parsers._common import parse_timestamp, split_kubectl_timestamp, strip_line_end, to_float
from mlops_trace.parsers.logs.records import LogRecord
from mlops_trace.parsers.logs.records import parse_line as parse_record

__all__ = [
    "ERROR_HANDLER_STATUS",
    "KServeLine",
    "ModelServerAccess",
    "QueueProxyEvent",
    "QueueProxyLine",
    "RequestTiming",
    "StorageEvent",
    "StorageEventKind",
    "access_entry",
    "error_handler",
    "iter_lines",
    "parse_line",
    "queue_proxy_line",
    "request_timing",
    "storage_event",
]

_STAMP = r"(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3})"
_LEVEL = r"DEBUG|INFO|WARNING|ERROR|CRITICAL"
# The logging formats KServe configures, in the order tried: its own (with a location), `kserve.trace`, uvicorn's
# server lines (a process, then the levelprefix) and uvicorn's access lines (the levelprefix, then client and process).
_FORMATS = (
    re.compile(rf"{_STAMP} (?P<pid>\d+) (?P<logger>[\w.-]+) (?P<level>{_LEVEL}) \[(?P<where>[^\]]*)\] ?(?P<msg>.*)"),
    re.compile(rf"{_STAMP} (?P<pid>\d+) (?P<logger>[\w.-]*\btrace) (?P<msg>.*)"),
    re.compile(rf"{_STAMP} (?P<pid>\d+) (?P<logger>uvicorn[\w.]*) (?P<level>{_LEVEL}):\s+(?P<msg>.*)"),
    re.compile(rf"{_STAMP} (?P<logger>uvicorn[\w.]*) (?P<level>{_LEVEL}):\s+(?P<msg>.*)"),
)


@dataclass(frozen=True)
class KServeLine:
    """One line in a KServe logging format. `where` is `<file>:<function>():<line>` (None for the trace and uvicorn
    lines); `pid` is None for uvicorn's access lines, which print it after the client."""

    lineno: int
    raw: str
    time: datetime | None
    pid: int | None
    logger: str
    level: str | None  # DEBUG … CRITICAL as printed; None for `kserve.trace`
    where: str | None
    message: str

    @property
    def function(self) -> str | None:
        """The function that logged (`model_not_found_handler`), from `where`."""
        if self.where is None:
            return None
        match = re.search(r":([\w<>]+)\(\)", self.where)
        return match.group(1) if match else None


def parse_line(lineno: int, line: str) -> KServeLine | None:
    """The line when it is in one of KServe's logging formats (a `kubectl logs --timestamps` prefix allowed), else
    None. Never raises."""
    raw = strip_line_end(line)
    _, body = split_kubectl_timestamp(raw)
    for pattern in _FORMATS:
        match = pattern.fullmatch(body)
        if match is None:
            continue
        groups = match.groupdict()
        pid = groups.get("pid")
        return KServeLine(
            lineno=lineno,
            raw=raw,
            time=parse_timestamp(groups["time"]),
            pid=int(pid) if pid else None,
            logger=groups["logger"],
            level=groups.get("level"),
            where=groups.get("where"),
            message=groups["msg"],
        )
    return None


def iter_lines(lines: Iterable[tuple[int, str]]) -> Iterator[KServeLine]:
    """KServe-format lines of `(lineno, line)` pairs, lazily; others (tracebacks, other formats) are skipped."""
    for lineno, line in lines:
        parsed = parse_line(lineno, line)
        if parsed is not None:
            yield parsed


# --- storage-initializer ---------------------------------------------------------------------------------------


class StorageEventKind(StrEnum):
    STARTED = "started"  # `Initializing, args: …`
    COPYING = "copying"  # `Copying contents of <uri> to local`
    COPIED = "copied"  # `Successfully copied <uri> to <dir>`
    DOWNLOADED = "downloaded"  # `Model downloaded in <s> seconds.`
    NO_MODEL = "no-model"  # `Failed to fetch model. No model found in <uri>.`
    FAILED = "failed"  # `Storage initialization failed: …` / `Unexpected error during storage initialization: …`
    ERROR = "error"  # any other ERROR line of the initializer (`S3 error for <uri>: …`)


@dataclass(frozen=True)
class StorageEvent:
    kind: StorageEventKind
    lineno: int
    message: str
    uri: str | None = None
    dest: str | None = None
    reason: str | None = None  # what failed, as the initializer put it
    seconds: float | None = None


# python/storage-initializer/scripts/initializer-entrypoint and python/storage/kserve_storage/kserve_storage.py;
# `Initializing, args: src_uri [<uri>] dest_path[ [<path>]` is the first line up to v0.15.
_STARTED = re.compile(r"Initializing, args: \(src_uri, dest_path\): \[\('(?P<uri>[^']*)', '(?P<dest>[^']*)'\)")
_STARTED_OLD = re.compile(r"Initializing, args: src_uri \[(?P<uri>[^\]]*)\] dest_path\[ \[(?P<dest>[^\]]*)\]")
_COPYING = re.compile(r"Copying contents of (?P<uri>\S+) to local")
_COPIED = re.compile(r"Successfully copied (?P<uri>\S+) to (?P<dest>\S+)")
_DOWNLOADED = re.compile(r"Model downloaded in (?P<seconds>[\d.]+) seconds\.")
_NO_MODEL = re.compile(r"Failed to fetch model\. No model found in (?P<uri>\S+?)\.?$")
_FAILED = re.compile(r"(?:Storage initialization failed|Unexpected error during storage initialization): (?P<reason>.*)")
_S3_ERROR = re.compile(r"S3 error for (?P<uri>\S+): (?P<reason>.*)")


def storage_event(lineno: int, line: str) -> StorageEvent | None:
    """What a storage-initializer line says about the download, None for a line that says nothing of it. A line in
    KServe's format is read by its message; a bare one (a traceback's last line before v0.17 printed them) by its
    text."""
    parsed = parse_line(lineno, line)
    text = parsed.message if parsed is not None else split_kubectl_timestamp(strip_line_end(line))[1].strip()
    failed = _FAILED.match(text)
    if failed:
        reason = failed.group("reason")
        no_model = _NO_MODEL.search(reason)
        uri = no_model.group("uri") if no_model else None
        return StorageEvent(StorageEventKind.FAILED, lineno, text, uri=uri, reason=reason)
    no_model = _NO_MODEL.search(text)
    if no_model:
        return StorageEvent(StorageEventKind.NO_MODEL, lineno, text, uri=no_model.group("uri"), reason=text)
    for pattern in (_STARTED, _STARTED_OLD):
        started = pattern.search(text)
        if started:
            return StorageEvent(StorageEventKind.STARTED, lineno, text, uri=started["uri"], dest=started["dest"])
    copying = _COPYING.search(text)
    if copying:
        return StorageEvent(StorageEventKind.COPYING, lineno, text, uri=copying.group("uri"))
    copied = _COPIED.search(text)
    if copied:
        return StorageEvent(StorageEventKind.COPIED, lineno, text, uri=copied.group("uri"), dest=copied.group("dest"))
    downloaded = _DOWNLOADED.search(text)
    if downloaded:
        return StorageEvent(StorageEventKind.DOWNLOADED, lineno, text, seconds=to_float(downloaded.group("seconds")))
    if parsed is not None and parsed.level in ("ERROR", "CRITICAL"):
        s3 = _S3_ERROR.match(text)
        uri, reason = (s3.group("uri"), s3.group("reason")) if s3 else (None, text)
        return StorageEvent(StorageEventKind.ERROR, lineno, text, uri=uri, reason=reason)
    return None


# --- the model server ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelServerAccess:
    """uvicorn's access line: `127.0.0.1:43318 6714 - "POST /v1/models/m:predict HTTP/1.1" 200 OK`."""

    line: KServeLine
    client: str
    method: str
    path: str
    protocol: str
    status: int


_ACCESS = re.compile(
    r'(?P<client>\S+) (?:(?P<pid>\d+) )?- "(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>HTTP/[\d.]+)" (?P<status>\d{3})'
)


def access_entry(line: KServeLine) -> ModelServerAccess | None:
    if not line.logger.startswith("uvicorn.access"):
        return None
    match = _ACCESS.match(line.message)
    if match is None:
        return None
    return ModelServerAccess(line, match["client"], match["method"], match["path"], match["protocol"],
                             int(match["status"]))


@dataclass(frozen=True)
class RequestTiming:
    """`kserve.trace`'s per-request latencies (python/kserve/kserve/model.py), in milliseconds. `request_id` is the
    request's `x-request-id`, None when it came without one (`N.A.`)."""

    line: KServeLine
    request_id: str | None
    preprocess_ms: float | None
    explain_ms: float | None
    predict_ms: float | None
    postprocess_ms: float | None


_TIMING = re.compile(
    r"requestId: (?P<id>.*?), preprocess_ms: (?P<pre>[\d.eE+-]+), explain_ms: (?P<explain>[\d.eE+-]+), "
    r"predict_ms: (?P<predict>[\d.eE+-]+), postprocess_ms: (?P<post>[\d.eE+-]+)"
)


def request_timing(line: KServeLine) -> RequestTiming | None:
    match = _TIMING.match(line.message) if line.logger.endswith("trace") else None
    if match is None:
        return None
    request_id = match["id"] if match["id"] not in ("N.A.", "") else None
    return RequestTiming(line, request_id, to_float(match["pre"]), to_float(match["explain"]),
                         to_float(match["predict"]), to_float(match["post"]))


# python/kserve/kserve/errors.py: the handler that logged `Exception:` and the status it answered.
ERROR_HANDLER_STATUS = {
    "exception_handler": 500,
    "invalid_input_handler": 400,
    "inference_error_handler": 500,
    "generic_exception_handler": 500,
    "model_not_found_handler": 404,
    "model_not_ready_handler": 503,
    "not_implemented_error_handler": 501,
    "unsupported_protocol_error_handler": 501,
    "server_not_ready_handler": 503,
    "server_not_live_handler": 503,
}


def error_handler(line: KServeLine) -> tuple[str, int] | None:
    """(handler, status) for the model server's `kserve ERROR [errors.py:<handler>():N] Exception:` line."""
    function = line.function
    if line.level != "ERROR" or function not in ERROR_HANDLER_STATUS or not (line.where or "").startswith("errors.py"):
        return None
    return function, ERROR_HANDLER_STATUS[function]


# --- queue-proxy ------------------------------------------------------------------------------------------------


class QueueProxyEvent(StrEnum):
    PROXY_ERROR = "proxy-error"  # `error reverse proxying request; sockstat: …` (the container refused: 502)
    REQUEST_TIMEOUT = "request-timeout"  # `Request timeout: <d>` (504)
    RESPONSE_START_TIMEOUT = "response-start-timeout"  # `Response start timeout: <d>` (504)
    IDLE_TIMEOUT = "idle-timeout"  # `Idle timeout: <d>` (504)


_QUEUE_PROXY_EVENTS = (
    ("error reverse proxying request", QueueProxyEvent.PROXY_ERROR),
    ("Request timeout: ", QueueProxyEvent.REQUEST_TIMEOUT),
    ("Response start timeout: ", QueueProxyEvent.RESPONSE_START_TIMEOUT),
    ("Idle timeout: ", QueueProxyEvent.IDLE_TIMEOUT),
)


@dataclass(frozen=True)
class QueueProxyLine:
    """A queue-proxy line that names one of its failures; `revision` is `<namespace>/<revision>` (`knative.dev/key`)
    and `error` the Go error zap attached (`dial tcp 127.0.0.1:8080: connect: connection refused`)."""

    record: LogRecord
    event: QueueProxyEvent
    revision: str | None
    pod: str | None
    error: str | None


def queue_proxy_line(lineno: int, line: str) -> QueueProxyLine | None:
    record = parse_record(lineno, line)
    for needle, event in _QUEUE_PROXY_EVENTS:
        if record.message.startswith(needle):
            fields = record.fields
            return QueueProxyLine(record, event, fields.get("knative.dev/key"), fields.get("knative.dev/pod"),
                                  fields.get("error"))
    return None
