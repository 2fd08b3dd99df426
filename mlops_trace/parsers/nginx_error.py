"""nginx error-log lines, as the ingress-nginx controller writes them to stderr, one `NginxErrorRecord` each.

What it is for: when ingress-nginx itself answers 502 or 504, its access line only says `502` and names the upstream
it tried; the error line logged for the same connection says why (the upstream refused the connection, closed it
before answering, or did not answer in time). `status_cause` turns that text into the status it leads to and a short
cause, so that a check or `request` can say "ingress-nginx answered 504 because Envoy did not send response headers
within proxy-read-timeout" instead of "504". Nothing here decides what a cause means for a Seldon stack: that is the
business of the checks.

    2021/03/27 01:58:00 [error] 318#318: *75161 upstream prematurely closed connection while reading response
    header from upstream, client: 10.0.0.1, server: ml.example.com, request: "POST /v2/models/x/infer HTTP/2.0",
    upstream: "http://10.1.2.3:9000/v2/models/x/infer", host: "ml.example.com"

That is `TIME [LEVEL] PID#TID: *CONNECTION MESSAGE, CONTEXT`, where MESSAGE often holds an errno
(`connect() failed (111: Connection refused) while connecting to upstream`) and CONTEXT is nginx's list of
`client: …, server: …, request: "…", upstream: "…", host: "…", referrer: "…"` (the stream module writes
`bytes from/to client:0/0` and has no request). The connection id and the context are optional (start-up lines have
neither). `time` is nginx's local time, without a zone (the controller's containers run in UTC unless TZ is set); a
`kubectl logs --timestamps` prefix, which has a zone and sub-seconds, is used instead when there is one. A
`kubectl logs --prefix`, stern or kubetail prefix and leading blanks are removed. The controller's container log
interleaves these lines with access lines and klog lines: those give None here, as do blank and malformed lines.
Nothing raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mlops_trace.parsers._common import (
    split_http_request,
    split_kubectl_timestamp,
    split_source_prefix,
    strip_ansi,
    strip_line_end,
    tailer_prefix_splits,
)

__all__ = [
    "ERRNO",
    "NginxErrorRecord",
    "ParsedText",
    "StatusCause",
    "iter_records",
    "parse_line",
    "parse_text",
    "status_cause",
]

_HEAD = re.compile(
    r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2}) \[([a-z]+)\] (\d+)#(\d+): (?:\*(\d+) )?",
)
# The first context key: nginx always starts its context with the client, or with the server when there is none.
_CONTEXT_START = re.compile(r",? (?:client|server): ")
# One context item, with the separator before it (`, ` or, in a paste that lost a comma, a space). Read item after item
# with `match`, so the text is scanned once; a quoted value ends at its closing quote (`\"` kept) or at the line end.
_CONTEXT_ITEM = re.compile(
    r",? ?(client|server|request|subrequest|upstream|host|referrer|bytes from/to client|bytes from/to upstream|login)"
    r': ?(?:"([^"\\]*(?:\\.[^"\\]*)*)"?|([^,\s]*))'
)
# `(111: Connection refused)` in a message: the errno and its text.
ERRNO = re.compile(r"\((\d+): ([^)]*)\)")
_LEVELS = frozenset({"debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"})


@dataclass(frozen=True)
class NginxErrorRecord:
    """One error-log line. `message` is the text between the connection id and the context; `errno` and
    `errno_text` come from its `(111: Connection refused)` part. Context values are None when absent."""

    lineno: int
    raw: str
    time: datetime | None
    level: str
    pid: int
    tid: int
    connection: int | None
    message: str
    errno: int | None
    errno_text: str | None
    client: str | None
    server: str | None
    request: str | None
    method: str | None
    path: str | None
    protocol: str | None
    upstream: str | None
    host: str | None
    referrer: str | None
    source: Mapping[str, str] = field(default_factory=dict, hash=False)
    context: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def cause(self) -> StatusCause | None:
        """What this error means for the status ingress-nginx answered, see `status_cause`."""
        return status_cause(self.message)


@dataclass(frozen=True)
class StatusCause:
    """The status ingress-nginx answers when an upstream attempt ends with a given error, and why, in a few words.

    `cause` is a stable slug a check can match on; `summary` is for people."""

    status: int
    cause: str
    summary: str


# (needle in the lower-cased message, status, cause, summary), first match wins; timeouts come first because
# `connect() failed (110: Connection timed out)` is a timeout too.
_CAUSES: tuple[tuple[str, int, str, str], ...] = (
    ("upstream timed out", 504, "upstream-timeout", "the upstream did not answer in time"),
    ("(110: ", 504, "upstream-timeout", "the upstream did not answer in time"),
    (
        "upstream prematurely closed connection",
        502,
        "upstream-closed",
        "the upstream closed the connection before answering (often an idle keepalive connection it had closed)",
    ),
    ("(111: ", 502, "connection-refused", "nothing listens on the upstream address (pod not ready, wrong port)"),
    ("connection refused", 502, "connection-refused", "nothing listens on the upstream address"),
    ("(104: ", 502, "connection-reset", "the upstream reset the connection"),
    ("connection reset by peer", 502, "connection-reset", "the upstream reset the connection"),
    ("(113: ", 502, "no-route", "the upstream address is unreachable (pod gone, network policy)"),
    ("(101: ", 502, "no-route", "the upstream network is unreachable"),
    ("no live upstreams", 502, "no-live-upstreams", "every upstream of the group was marked failed"),
    ("upstream sent too big header", 502, "bad-upstream-header", "the upstream's headers exceed proxy-buffer-size"),
    ("upstream sent invalid", 502, "bad-upstream-header", "the upstream sent an invalid HTTP response"),
    ("upstream sent no valid", 502, "bad-upstream-header", "the upstream sent an invalid HTTP response"),
    ("ssl_do_handshake() failed", 502, "upstream-tls", "the TLS handshake with the upstream failed"),
    ("upstream ssl certificate", 502, "upstream-tls", "the upstream's TLS certificate was refused"),
    ("client intended to send too large body", 413, "body-too-large", "the request body exceeds proxy-body-size"),
)
# The phases (`… while PHASE`) of an upstream attempt in which nginx has not yet sent a status. In any other phase
# (`while reading upstream`, `while sending to client`) the answer was already under way and the error does not
# change its status.
_BEFORE_STATUS = (
    "connecting to upstream",
    "sending request to upstream",
    "reading response header from upstream",
    "ssl handshaking to upstream",
    "requesting certificate status",
)


def status_cause(message: str) -> StatusCause | None:
    """The status ingress-nginx answers when an upstream attempt fails with `message` (an error line's text, with or
    without its context), or None when the error does not decide one (a client closing, an error after the response
    began, a line that is no upstream error).

    upstream timed out → 504; prematurely closed, connection refused, reset, unreachable, no live upstreams, a bad
    header or a failed TLS handshake → 502; a too large body → 413. With retries (`proxy_next_upstream`) each failed
    attempt logs a line; the status answered is that of the last attempt, which the access line's
    `$upstream_status` list shows."""
    lowered = message.lower()
    _, has_phase, phase = lowered.partition(" while ")
    if has_phase and not phase.startswith(_BEFORE_STATUS):
        return None
    for needle, status, cause, summary in _CAUSES:
        if needle in lowered:
            return StatusCause(status=status, cause=cause, summary=summary)
    return None


def _split_context(text: str) -> tuple[str, dict[str, str]]:
    """(message, context items) of the text after the connection id."""
    start = _CONTEXT_START.search(text)
    if start is None:
        return text, {}
    context: dict[str, str] = {}
    position = start.start()
    while position < len(text):
        match = _CONTEXT_ITEM.match(text, position) or _CONTEXT_ITEM.search(text, position)
        if match is None:
            break
        key, quoted, bare = match.groups()
        context.setdefault(key, quoted if quoted is not None else bare)
        position = match.end()
    return text[: start.start()], context


@dataclass(frozen=True)
class ParsedText:
    """The parts of an error line: `text` is all after the connection id, `message` the same without the context."""

    time: datetime | None
    level: str
    pid: int
    tid: int
    connection: int | None
    text: str
    message: str
    context: dict[str, str]


def parse_text(body: str) -> ParsedText | None:
    """The parts of an error line without any prefix, or None. The shared core of `parse_line` and of the container
    log parser (`logs.parse_line`)."""
    head = _HEAD.match(body)
    if head is None or head.group(7) not in _LEVELS:
        return None
    year, month, day, hour, minute, second = map(int, head.group(1, 2, 3, 4, 5, 6))
    try:
        when: datetime | None = datetime(year, month, day, hour, minute, second)
    except ValueError:
        when = None
    connection = head.group(10)
    text = body[head.end() :]
    message, context = _split_context(text)
    return ParsedText(
        time=when,
        level=head.group(7),
        pid=int(head.group(8)),
        tid=int(head.group(9)),
        connection=int(connection) if connection is not None else None,
        text=text,
        message=message,
        context=context,
    )


def _strip_prefixes(raw: str) -> tuple[datetime | None, dict[str, str], str]:
    source, body = split_source_prefix(raw.lstrip())
    prefix_time, body = split_kubectl_timestamp(body)
    if not source:
        source, body = split_source_prefix(body)
    return prefix_time, source, strip_ansi(body).lstrip()


def parse_line(lineno: int, line: str) -> NginxErrorRecord | None:
    """The record for an error-log line, None for anything else (access lines, klog lines, blank lines)."""
    raw = strip_line_end(line)
    try:
        prefix_time, source, body = _strip_prefixes(raw)
        parsed = parse_text(body)
        if parsed is None and not source and body[:1].isalnum():
            for tailer_source, rest in tailer_prefix_splits(body):
                parsed = parse_text(rest)
                if parsed is not None:
                    source = tailer_source
                    break
        if parsed is None:
            return None
    except Exception:  # noqa: BLE001 - one odd line must never end a scan of a whole log
        return None
    message, context = parsed.message, dict(parsed.context)
    errno_match = ERRNO.search(message)
    request = context.pop("request", None)
    method, path, protocol = split_http_request(request) if request is not None else (None, None, None)
    return NginxErrorRecord(
        lineno=lineno,
        raw=raw,
        time=prefix_time if prefix_time is not None else parsed.time,
        level=parsed.level,
        pid=parsed.pid,
        tid=parsed.tid,
        connection=parsed.connection,
        message=message,
        errno=int(errno_match.group(1)) if errno_match is not None else None,
        errno_text=errno_match.group(2) if errno_match is not None else None,
        client=context.pop("client", None) or None,
        server=context.pop("server", None) or None,
        request=request or None,
        method=method,
        path=path,
        protocol=protocol,
        upstream=context.pop("upstream", None) or None,
        host=context.pop("host", None) or None,
        referrer=context.pop("referrer", None) or None,
        source=source,
        context=context,
    )


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[NginxErrorRecord]:
    """Error records for `(lineno, line)` pairs, lazily; lines that are not error-log lines are skipped."""
    for lineno, line in lines:
        record = parse_line(lineno, line)
        if record is not None:
            yield record
