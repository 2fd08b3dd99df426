"""Container log lines as `kubectl logs` prints them, turned into `LogRecord`s one line at a time.

Recognised shapes, tried in this order: JSON objects (zap, logrus, Python JSON loggers, ECS `log.level`); logfmt as
logrus' text formatter writes it (`time="…" level=info msg="…" source=SeldonXDSCache`, the logger under `source`,
`Source`, `Name` or `logger`); klog (`I0712 18:30:09.123456  7 f.go:1] …`); zap's development console format
(tab-separated time, level, logger, caller, message, JSON tail); Python logging as MLServer configures it
(`2025-07-12 18:30:09,123 [mlserver.rest] INFO - …`); uvicorn's default (`INFO:     …`); nginx error-log lines as the
ingress-nginx controller writes them between its access lines (`2021/03/27 01:58:00 [error] 318#318: *75161 …`, see
`nginx_error`: the message is the text after the connection id, context included, and `client`, `upstream`, `errno`…
become fields; access lines stay unrecognised text here, `nginx_access` reads them); last, zap's console format whose
tabs a terminal, k9s or a GitHub paste turned into runs of spaces (columns are then told apart by two or more spaces,
or by a dotted or camelCase logger name before one space). Access lines of uvicorn also yield `method`, `path` and
`status` fields.

Lines as people have them: a `kubectl logs --timestamps` prefix is removed first and gives the time when the line
itself has none (klog lines have no year, so they always take the prefix time). A `kubectl logs --prefix` source
(`[pod/NAME/CONTAINER] `, before or after the time) is removed and gives `pod` and `container` fields; so is a stern
(`POD CONTAINER `, `NAMESPACE POD CONTAINER `), pod-name or kubetail (`[POD] `) prefix, but only when the rest of the
line is a recognised format, since such a prefix looks like plain text (a field the line itself has wins over these).
Colour codes and leading blanks are ignored. Typographic double quotes (“ ”) from a paste count as `"` in JSON, logfmt
and klog lines; a stray quote after a bare logfmt value (`Name=Agent"`) or before the first key is dropped.
Anything else becomes a record whose message is the line (without a source or time prefix) and whose level is None.

Reading: `read_line_pieces` gives the lines of a file in pieces of bounded length (a log line may be hundreds of
megabytes), and `lines_mentioning` gives, in the same pieces, the few lines of a large log a check needs.
"""

from __future__ import annotations

import codecs
import heapq
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from mlops_trace.limits import DEFAULT_LIMITS
from mlops_trace.parsers import nginx_error
from mlops_trace.parsers._common import (
    has_typographic_quotes,
    parse_epoch,
    parse_timestamp,
    read_go_quoted,
    read_logfmt_pairs,
    split_http_request,
    split_kubectl_timestamp,
    split_source_prefix,
    straighten_quotes,
    stringify,
    strip_ansi,
    strip_line_end,
    tailer_prefix_splits,
    unquote_stray,
)

__all__ = [
    "LogRecord",
    "Needles",
    "iter_records",
    "lines_mentioning",
    "message_contains",
    "parse_line",
    "read_line_pieces",
]


@dataclass(frozen=True)
class LogRecord:
    """One log line. `raw` is the line as read (prefix included); `message` is the line without a kubectl prefix when
    no format is recognised."""

    lineno: int
    raw: str
    time: datetime | None
    level: str | None
    message: str
    logger: str | None
    fields: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class _Parsed:
    time: datetime | None
    level: str | None
    message: str
    logger: str | None
    fields: dict[str, str]


_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "information": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "err": "error",
    "critical": "fatal",
    "crit": "fatal",
    "alert": "fatal",
    "emerg": "fatal",
    "fatal": "fatal",
    "dpanic": "panic",
    "panic": "panic",
}
_ZAP_CONSOLE_LEVELS = frozenset({"debug", "info", "warn", "warning", "error", "dpanic", "panic", "fatal"})
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}

_JSON_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "asctime")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "log.level")
_JSON_MESSAGE_KEYS = ("msg", "message")
# Lower-case `name` is left alone on purpose: Seldon components log model names under it.
_JSON_LOGGER_KEYS = ("logger", "source", "Source", "Name", "logger_name", "log.logger")
_LOGFMT_TIME_KEYS = ("time", "ts", "t")
_LOGFMT_LEVEL_KEYS = ("level", "lvl")
_LOGFMT_LOGGER_KEYS = ("source", "Source", "Name", "logger")

_LOGFMT_START = re.compile(r"(?:time|ts|t|level|lvl)=")
# One logfmt token: a bare word, or `key=` with a quoted (escape-free) or bare value.
_LOGFMT_TOKEN = re.compile(r'[ \t]*([^ \t=]*)(?:=(?:"([^"]*)"?|([^ \t]*)))?')
_KLOG = re.compile(r"([IWEF])(\d{4} \d{2}:\d{2}:\d{2}\.\d+)\s+(\d+) ([^\s\]]+)\] ?(.*)", re.DOTALL)
_GO_CALLER = re.compile(r"[\w./-]+\.go:\d+")
_EPOCH = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
# zap's console line after its tabs became spaces: a time (RFC 3339 or epoch seconds, `1.689946554e+09` included),
# then the level. Without a time (a `kubectl --timestamps`-looking time was taken as the prefix) the level must be
# followed by two spaces, so that a message that merely starts with `error ` is not read as a level.
_ZAP_SPACED_HEAD = re.compile(
    r"(?:(\d{4}-\d{2}-\d{2}T[\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?|\d{9,}(?:\.\d+)?(?:[eE]\+?\d+)?|\d\.\d+[eE]\+?\d+) +)?"
    r"(DEBUG|INFO|WARN|WARNING|ERROR|DPANIC|PANIC|FATAL|debug|info|warn|warning|error|dpanic|panic|fatal)( +)(?=\S)"
)
_ZAP_SPACED_FIRST = frozenset("0123456789DIWEPFdiwepf")
_SPACE_RUN = re.compile(r" {2,}")
# A zap logger name followed by one space (a tab that reached the next tab stop after one column): dotted
# (`controller-runtime.metrics`) or camelCase (`schedulerClient`), which the first word of a message rarely is.
_LOGGER_WORD = re.compile(r"(?:[A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*)+|[a-z]+[A-Z][\w-]*(?:\.[A-Za-z][\w-]*)*) (?=\S)")
_PYTHON_LOGGING = re.compile(
    r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?) \[([^\]]+)\] ([A-Za-z]+) - ?(.*)", re.DOTALL
)
_UVICORN = re.compile(r"(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+(.*)", re.DOTALL)
_HTTP_ACCESS = re.compile(
    r'(?P<client>\S+) - "(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>HTTP/[\d.]+)" (?P<status>\d{3})\b'
)


def _normalise_level(text: str) -> str:
    """`WARN`, `warning`, `Warning` → `warning` and so on; an unknown level comes back lower-cased."""
    lowered = text.strip().lower()
    return _LEVELS.get(lowered, lowered)


def parse_line(lineno: int, line: str) -> LogRecord:
    """Parse one line (trailing newline allowed). Never raises: an unrecognised line keeps its text as the message."""
    raw = strip_line_end(line)
    source: dict[str, str] | None = None
    body = raw
    if raw[:1] == "[":
        source, body = split_source_prefix(raw)
    prefix_time, body = split_kubectl_timestamp(body)
    if body[:1] == "[" and not source:  # `kubectl logs --prefix --timestamps` puts the time first
        source, body = split_source_prefix(body)
    body = strip_ansi(body)
    parsed: _Parsed | None = None
    try:
        for parser in _PARSERS:
            parsed = parser(body)
            if parsed is not None:
                break
        else:
            parsed, tailer_source, tailer_time = _parse_pasted(body, bool(source))
            if tailer_source:
                source = tailer_source
                prefix_time = tailer_time if tailer_time is not None else prefix_time
    except Exception:  # noqa: BLE001 - one odd line must never end a scan of a whole log
        parsed = None
    if parsed is None:
        return LogRecord(
            lineno=lineno, raw=raw, time=prefix_time, level=None, message=body, logger=None, fields=source or {}
        )
    fields = parsed.fields
    if source:
        for key, value in source.items():
            fields.setdefault(key, value)
    return LogRecord(
        lineno=lineno,
        raw=raw,
        time=parsed.time if parsed.time is not None else prefix_time,
        level=parsed.level,
        message=parsed.message,
        logger=parsed.logger,
        fields=fields,
    )


def _parse_pasted(body: str, has_source: bool) -> tuple[_Parsed | None, dict[str, str], datetime | None]:
    """The second try at a line no format recognised as it is, kept off the common path: without leading blanks, then
    (when there is no kubectl source prefix) behind a stern, kubetail or pod-name prefix, which is kept only when what
    follows it is a known format. Gives (record, the prefix's source fields, a kubectl time after the prefix)."""
    parsed = _parse_body(body.lstrip(" \t")) if body[:1] in (" ", "\t") else None
    if parsed is not None or has_source:
        return parsed, {}, None
    for tailer_source, rest in tailer_prefix_splits(body.lstrip()):
        rest_time, rest = split_kubectl_timestamp(rest)
        parsed = _parse_body(rest)
        if parsed is not None:
            return parsed, tailer_source, rest_time
    return None, {}, None


def _parse_body(body: str) -> _Parsed | None:
    """The first format that recognises `body`, a line without its prefixes."""
    for parser in _PARSERS:
        parsed = parser(body)
        if parsed is not None:
            return parsed
    return None


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[LogRecord]:
    """Records for `(lineno, line)` pairs, lazily, in order."""
    for lineno, line in lines:
        yield parse_line(lineno, line)


def message_contains(record: LogRecord, needle: str) -> bool:
    """Case-insensitive substring test on the message, or on the raw line when the message is empty."""
    haystack = record.message if record.message else record.raw
    return needle.casefold() in haystack.casefold()


def _time_from_value(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return parse_epoch(value)
    if isinstance(value, str):
        parsed = parse_timestamp(value)
        return parsed if parsed is not None else parse_epoch(value)
    return None


def _take(data: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in data:
            return key, data[key]
    return None, None


def _parse_json(body: str) -> _Parsed | None:
    if not body.startswith("{"):
        return None
    if not body.isascii() and has_typographic_quotes(body):
        body = straighten_quotes(body)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    data: dict[str, Any] = document
    consumed: set[str] = set()
    time_key, time_value = _take(data, _JSON_TIME_KEYS)
    when = _time_from_value(time_value) if time_key is not None else None
    if when is not None and time_key is not None:
        consumed.add(time_key)
    level_key, level_value = _take(data, _JSON_LEVEL_KEYS)
    level = _normalise_level(stringify(level_value)) if level_key is not None else None
    message_key, message_value = _take(data, _JSON_MESSAGE_KEYS)
    logger_key, logger_value = _take(data, _JSON_LOGGER_KEYS)
    consumed.update(key for key in (level_key, message_key, logger_key) if key is not None)
    return _Parsed(
        time=when,
        level=level,
        message=stringify(message_value) if message_key is not None else "",
        logger=stringify(logger_value) if logger_key is not None else None,
        fields={key: stringify(value) for key, value in data.items() if key not in consumed},
    )


def _logfmt_pairs(body: str) -> list[tuple[str, str]]:
    """`read_logfmt_pairs(body)`, by one regex when there is no backslash: without escapes a quoted value is the
    text up to the next quote (or the end), and the character loop is the slow part of reading a large log."""
    if "\\" in body:
        return read_logfmt_pairs(body)
    pairs: list[tuple[str, str]] = []
    for match in _LOGFMT_TOKEN.finditer(body):
        key, quoted, bare = match.groups()
        if key and (quoted is not None or bare is not None):
            if quoted is not None:
                pairs.append((key, quoted))
            else:
                pairs.append((key, bare if bare[-1:] != '"' else unquote_stray(bare)))
    return pairs


def _parse_logfmt(body: str) -> _Parsed | None:
    body = body.removeprefix('"')  # a stray quote before the first key
    if _LOGFMT_START.match(body) is None:
        return None
    if not body.isascii() and has_typographic_quotes(body):
        body = straighten_quotes(body)
    data = dict(_logfmt_pairs(body))
    level_key = next((key for key in _LOGFMT_LEVEL_KEYS if key in data), None)
    if level_key is None and "msg" not in data:
        return None
    consumed = {key for key in (level_key, "msg") if key is not None}
    when = None
    for key in _LOGFMT_TIME_KEYS:
        if key in data:
            when = _time_from_value(data[key])
            if when is not None:
                consumed.add(key)
                break
    logger_key = next((key for key in _LOGFMT_LOGGER_KEYS if key in data), None)
    if logger_key is not None:
        consumed.add(logger_key)
    return _Parsed(
        time=when,
        level=_normalise_level(data[level_key]) if level_key is not None else None,
        message=data.get("msg", ""),
        logger=data[logger_key] if logger_key is not None else None,
        fields={key: value for key, value in data.items() if key not in consumed},
    )


def _parse_klog(body: str) -> _Parsed | None:
    match = _KLOG.match(body)
    if match is None:
        return None
    severity, stamp, thread, caller, rest = match.groups()
    fields = {"klog_time": stamp, "thread": thread, "caller": caller}
    if not rest.isascii() and has_typographic_quotes(rest):
        rest = straighten_quotes(rest)
    if rest.startswith('"'):
        message, end = read_go_quoted(rest, 0)
        for key, value in read_logfmt_pairs(rest, end):
            fields.setdefault(key, value)
    else:
        message = rest
    # klog stamps carry no year: the kubectl prefix (applied by the caller) is the only full time.
    return _Parsed(time=None, level=_KLOG_LEVELS[severity], message=message, logger=None, fields=fields)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _parse_zap_console(body: str) -> _Parsed | None:
    if "\t" not in body:
        return None
    columns = body.split("\t")
    if len(columns) < 3 or columns[1].strip().lower() not in _ZAP_CONSOLE_LEVELS:
        return None
    when = parse_timestamp(columns[0])
    if when is None:
        when = parse_epoch(columns[0]) if _EPOCH.fullmatch(columns[0]) is not None else None
        if when is None:
            return None
    rest = columns[2:]
    fields: dict[str, str] = {}
    if len(rest) >= 2 and rest[-1].lstrip().startswith("{"):
        tail = _json_object(rest[-1])
        if tail is not None:
            rest = rest[:-1]
            fields.update((key, stringify(value)) for key, value in tail.items())
    logger = None
    # Column order is time, level, logger, caller, message; logger and caller are each optional.
    if len(rest) >= 2 and _GO_CALLER.fullmatch(rest[0]) is None and " " not in rest[0]:
        logger = rest.pop(0)
    if len(rest) >= 2 and _GO_CALLER.fullmatch(rest[0]) is not None:
        fields.setdefault("caller", rest.pop(0))
    return _Parsed(
        time=when,
        level=_normalise_level(columns[1]),
        message="\t".join(rest),
        logger=logger or None,
        fields=fields,
    )


def _access_fields(message: str) -> dict[str, str]:
    match = _HTTP_ACCESS.match(message)
    if match is None:
        return {}
    return {name: value for name, value in match.groupdict().items() if value is not None}


def _parse_python_logging(body: str) -> _Parsed | None:
    match = _PYTHON_LOGGING.match(body)
    if match is None:
        return None
    stamp, logger, level, message = match.groups()
    return _Parsed(
        time=parse_timestamp(stamp),
        level=_normalise_level(level),
        message=message,
        logger=logger,
        fields=_access_fields(message),
    )


def _parse_uvicorn(body: str) -> _Parsed | None:
    match = _UVICORN.match(body)
    if match is None:
        return None
    level, message = match.groups()
    return _Parsed(
        time=None, level=_normalise_level(level), message=message, logger=None, fields=_access_fields(message)
    )


def _parse_zap_spaced(body: str) -> _Parsed | None:
    """zap's console format after its tabs became runs of spaces. Columns are split at two or more spaces (a tab
    stop may leave one, and then the logger stays in the message); the JSON tail is found even after one space."""
    if body[:1] not in _ZAP_SPACED_FIRST:
        return None
    head = _ZAP_SPACED_HEAD.match(body)
    if head is None:
        return None
    stamp, level, gap = head.groups()
    when: datetime | None = None
    if stamp is not None:
        when = parse_timestamp(stamp) if "-" in stamp else parse_epoch(stamp)
        if when is None:
            return None
    elif len(gap) < 2:
        return None
    rest = body[head.end() :].rstrip()
    fields: dict[str, str] = {}
    if rest.endswith("}"):
        brace = rest.find(" {")
        while brace >= 0:
            tail = _json_object(rest[brace + 1 :])
            if tail is not None:
                fields.update((key, stringify(value)) for key, value in tail.items())
                rest = rest[:brace].rstrip()
                break
            brace = rest.find(" {", brace + 2)
    logger = None
    caller = None
    # Column order is logger, caller, message, as in the tab-separated form; each of the first two is optional.
    first = _SPACE_RUN.search(rest)
    if first is not None and " " not in rest[: first.start()] and _GO_CALLER.fullmatch(rest[: first.start()]) is None:
        logger, rest = rest[: first.start()], rest[first.end() :]
        first = _SPACE_RUN.search(rest)
    if first is not None and _GO_CALLER.fullmatch(rest[: first.start()]) is not None:
        caller, rest = rest[: first.start()], rest[first.end() :]
    if logger is None and caller is None and (word := _LOGGER_WORD.match(rest)) is not None:
        logger, rest = word.group()[:-1], rest[word.end() :]
    if caller is not None:
        fields.setdefault("caller", caller)
    return _Parsed(time=when, level=_normalise_level(level), message=rest, logger=logger, fields=fields)


def _parse_nginx_error(body: str) -> _Parsed | None:
    if body[4:5] != "/":  # `2021/03/27 …`
        return None
    parsed = nginx_error.parse_text(body)
    if parsed is None:
        return None
    fields = {"pid": str(parsed.pid), "tid": str(parsed.tid)}
    if parsed.connection is not None:
        fields["connection"] = str(parsed.connection)
    errno = nginx_error.ERRNO.search(parsed.message)
    if errno is not None:
        fields["errno"], fields["errno_text"] = errno.groups()
    fields.update(parsed.context)
    request = parsed.context.get("request")
    if request is not None:
        method, path, protocol = split_http_request(request)
        if method is not None and path is not None and protocol is not None:
            fields.update(method=method, path=path, protocol=protocol)
    # The message keeps the context: needles such as an upstream address are then found in it too.
    return _Parsed(
        time=parsed.time, level=_normalise_level(parsed.level), message=parsed.text, logger=None, fields=fields
    )


_PARSERS = (
    _parse_json,
    _parse_logfmt,
    _parse_klog,
    _parse_zap_console,
    _parse_python_logging,
    _parse_uvicorn,
    _parse_nginx_error,
    _parse_zap_spaced,
)


# ---- reading lines of any length ----------------------------------------------------------------------------------


def read_line_pieces(
    handle: TextIO,
    max_chars: int,
    *,
    first_lineno: int = 1,
    on_long_line: Callable[[int], None] | None = None,
    partial_last: bool = True,
) -> Iterator[tuple[int, str]]:
    """`(line number, text)` for each line of the text `handle`, without its line end; a line longer than
    `max_chars` characters comes as pieces of `max_chars` (the last one shorter), in order, all with its number, so
    that joining them gives the line back and no more than about one piece is ever held.

    `on_long_line` is called with the number of the first such line (once). A trailing `\\r` is removed too, for
    handles opened with `newline="\\n"`. With `partial_last` False, a last line without a line end (still being
    written) is left out, but pieces of it read before its end was seen have already been returned.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive (got {max_chars})")
    lineno = first_lineno - 1
    held: str | None = None  # a full-size piece: whether its line goes on is known only from the next read
    noted = False
    for chunk in iter(partial(handle.readline, max_chars), ""):
        ended = chunk[-1] == "\n"
        if held is None:
            lineno += 1
            if ended:
                yield lineno, chunk.rstrip("\r\n")
                continue
        else:
            text = chunk.rstrip("\r\n") if ended else chunk
            if ended and not text:  # the line ended right after the held piece: it was not too long
                yield lineno, held.rstrip("\r")
                held = None
                continue
            if on_long_line is not None and not noted:
                noted = True
                on_long_line(lineno)
            yield lineno, held
            held = None
            if ended:
                yield lineno, text
                continue
        if len(chunk) >= max_chars:
            held = chunk
        elif partial_last:  # the last line, without a line end
            yield lineno, chunk
    if held is not None and partial_last:
        yield lineno, held


# ---- finding the few lines a check needs in a large log ------------------------------------------------------------

_SCAN_BLOCK = 1 << 22
# Bytes that may make a line's parsed message hold a needle its raw bytes do not: non-ASCII (Unicode case folding,
# as re.IGNORECASE applies it), escapes that can spell letters (Go's hex, unicode and octal escapes, JSON's unicode
# escape: a backslash before one of _LETTER_ESCAPES) and terminal colour codes (stripped before parsing).
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_LETTER_ESCAPES = frozenset(b"xuU01234567")
_LF = ord("\n")
_CR = ord("\r")


class Needles:
    """The needles of a `lines_mentioning` scan, which may grow while it runs: a needle added after a line was
    returned is searched for from the next line on. A check that only cares about lines naming things it has already
    seen (a model that failed) adds their names as it meets them, instead of asking for every routine line."""

    def __init__(self, needles: Iterable[str] = ()) -> None:
        self.items: list[bytes] = []
        for needle in needles:
            self.add(needle)

    def add(self, needle: str) -> None:
        """Look for `needle` too (ASCII without line breaks; case-insensitive like the others)."""
        encoded = needle.lower().encode("ascii")
        if encoded and encoded not in self.items:
            self.items.append(encoded)

    def __len__(self) -> int:
        return len(self.items)


def lines_mentioning(
    path: Path,
    needles: Iterable[str] | Needles,
    *,
    max_line_chars: int = DEFAULT_LIMITS.line_chars,
    on_long_line: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, str]]:
    """The `(line number, line)` pairs of `path` that may mention one of `needles`, numbered, decoded and cut into
    pieces exactly as `LogSource.lines()` gives them (UTF-8 with replacement, universal newlines, line end stripped;
    a line longer than `max_line_chars` characters in pieces of that many, each with the line's number).

    Every line (or piece) whose parsed message or raw text contains a needle case-insensitively is returned, so a
    check that only acts on such lines sees the same lines through this as through `lines()`; a few more may come
    back (lines with non-ASCII bytes, letter escapes or colour codes are always returned, as their parsed text may
    differ from their bytes, and so is every piece that a needle running across pieces touches). The file is read
    in large binary blocks and searched with `bytes.find`, so a scan costs about what `grep -c -i` costs whatever
    the line lengths, and only the returned lines are decoded. `on_long_line` is called once, with the number of
    the first line longer than `max_line_chars`. Needles must be ASCII without line breaks; given as a `Needles`,
    they may be added to between lines (a long line's pieces already cut are not searched again).
    """
    wanted = needles if isinstance(needles, Needles) else Needles(needles)
    limit = max_line_chars
    noted = False

    def note(lineno: int) -> None:
        nonlocal noted
        if on_long_line is not None and not noted:
            noted = True
            on_long_line(lineno)

    if limit < 1:
        raise ValueError(f"max_line_chars must be positive (got {limit})")
    # Every complete line of a block then lies within one read, except its first (which began in an earlier read
    # and is checked), so no line longer than `limit` bytes ever reaches `_block_candidates`.
    read_size = min(_SCAN_BLOCK, limit)
    lineno = 0  # lines before `carry`, or before the long line being read
    # The start of a line that began in earlier reads, in parts joined once its end is read: never longer than
    # `limit` + 1 bytes, nor holding a line end but maybe a CR at its very end.
    carry: list[bytes] = []
    carry_size = 0
    long_line: _LongLine | None = None
    after_cr = False  # the last read ended a line with a CR: a LF opening this one is the rest of that line end
    with path.open("rb") as handle:
        while True:
            data = handle.read(read_size)
            if after_cr:
                after_cr = False
                if data[:1] == b"\n":
                    data = data[1:]
                    if not data:
                        continue
            if long_line is not None:
                stop = _line_end(data, 0, len(data))
                if stop < 0:
                    yield from long_line.feed(data, final=not data)
                    if not data:
                        return
                    continue
                yield from long_line.feed(data[:stop], final=True)
                long_line = None
                lineno += 1
                data, after_cr = _past_line_end(data, stop)
                if not data:
                    continue
            if (
                carry
                and data
                and carry_size + len(data) <= limit
                and not carry[-1].endswith(b"\r")
                and _line_end(data, 0, len(data)) < 0
            ):
                carry.append(data)
                carry_size += len(data)
                continue
            block = b"".join([*carry, data]) if carry else data
            carry = []
            if not block:
                return
            if len(block) > limit and _line_end(block, 0, limit + 1) < 0:
                long_line = _LongLine(lineno + 1, limit, wanted, note)
                stop = _line_end(block, limit + 1, len(block))
                if stop < 0:
                    yield from long_line.feed(block, final=not data)
                    if not data:
                        return
                    continue
                yield from long_line.feed(block[:stop], final=True)
                long_line = None
                lineno += 1
                block, after_cr = _past_line_end(block, stop)
                if not block:
                    continue
            carriage = b"\r" in block
            end = _last_line_end(block) + 1 if data else len(block)
            if end <= 0:
                carry, carry_size = [block], len(block)  # no complete line yet
                continue
            yield from _block_candidates(block, end, lineno, wanted, carriage)
            if not data:
                return
            lineno += _count_line_ends(block, 0, end, carriage)
            if end < len(block):
                carry, carry_size = [block[end:]], len(block) - end


def _line_end(data: bytes, start: int, end: int) -> int:
    """Index of the first LF or CR in `data[start:end]`, or -1."""
    newline = data.find(b"\n", start, end)
    carriage = data.find(b"\r", start, newline if newline >= 0 else end)
    return carriage if carriage >= 0 else newline


def _past_line_end(data: bytes, stop: int) -> tuple[bytes, bool]:
    """What follows the line end at `data[stop]` (CRLF counting as one), and whether `data` ends in that line end's
    CR, so that a LF opening the next read still belongs to it."""
    after = stop + 1
    if data[stop] == _CR:
        if after == len(data):
            return b"", True
        if data[after] == _LF:
            after += 1
    return data[after:], False


def _last_line_end(block: bytes) -> int:
    """Index of the last byte that surely ends a line (a CR at the very end may be half of a CRLF)."""
    newline = block.rfind(b"\n")
    carriage = block.rfind(b"\r", 0, len(block) - 1)
    return max(newline, carriage)


def _count_line_ends(block: bytes, start: int, end: int, carriage: bool) -> int:
    count = block.count(b"\n", start, end)
    if carriage:
        count += block.count(b"\r", start, end) - block.count(b"\r\n", start, end)
    return count


def _next_letter_escape(data: bytes, start: int, end: int) -> int:
    """Index of the first backslash in `data[start:end]` that opens an escape which may spell a letter, or -1."""
    position = data.find(b"\\", start, end)
    while position >= 0 and not (position + 1 < end and data[position + 1] in _LETTER_ESCAPES):
        position = data.find(b"\\", position + 1, end)
    return position


def _unsure_finders(block: bytes) -> list[Callable[[int, int], int]]:
    """Functions `(start, end)` giving the next place in `block[start:end]` of a byte that may make a line's parsed
    text differ from its bytes (see _NON_ASCII), or -1."""

    def next_escape(start: int, end: int) -> int:
        return _next_letter_escape(block, start, end)

    def next_non_ascii(start: int, end: int) -> int:
        match = _NON_ASCII.search(block, start, end)
        return match.start() if match is not None else -1

    finders: list[Callable[[int, int], int]] = [partial(block.find, b"\x1b"), next_escape]
    return finders if block.isascii() else [*finders, next_non_ascii]


def _block_candidates(
    block: bytes, end: int, lineno: int, needles: Needles, carriage: bool
) -> Iterator[tuple[int, str]]:
    """Candidate lines among the complete lines `block[:end]`, the first of which is line `lineno + 1`.

    Each kind of hit (a needle, a colour code, ...) has a cursor, kept in a heap by its next place and moved on only
    past the line last returned, so the hits inside one line are not visited one by one and every byte is searched
    about once per needle, however long the line."""
    lowered = block.lower()
    finders: list[Callable[[int, int], int]] = [partial(lowered.find, needle) for needle in needles.items]
    finders += _unsure_finders(block)
    searched = len(needles)
    cursors = [(hit, index) for index, find in enumerate(finders) if (hit := find(0, end)) >= 0]
    heapq.heapify(cursors)
    counted_to = 0
    while cursors:
        position = cursors[0][0]
        # The previous line returned ended before `position`, and `counted_to` is its start.
        start = block.rfind(b"\n", counted_to, position) + 1
        if carriage:
            start = max(start, block.rfind(b"\r", counted_to, position) + 1)
        stop = block.find(b"\n", position, end)
        stop = end if stop < 0 else stop
        if carriage:
            cr = block.find(b"\r", position, stop)
            stop = cr if cr >= 0 else stop
        lineno += _count_line_ends(block, counted_to, start, carriage)
        counted_to = start
        yield lineno + 1, block[start:stop].decode("utf-8", errors="replace")
        if len(needles) > searched:  # the caller added needles: find them in the rest of the block too
            for needle in needles.items[searched:]:
                finders.append(partial(lowered.find, needle))
                hit = finders[-1](stop, end)
                if hit >= 0:
                    heapq.heappush(cursors, (hit, len(finders) - 1))
            searched = len(needles)
        while cursors and cursors[0][0] < stop:
            index = cursors[0][1]
            hit = finders[index](stop, end)
            if hit >= 0:
                heapq.heapreplace(cursors, (hit, index))
            else:
                heapq.heappop(cursors)


class _LongLine:
    """A line of `lines_mentioning` longer than its limit in bytes, fed in byte chunks as the scan reads it and cut,
    as `read_line_pieces` cuts it, into pieces of `limit` characters; `feed` yields the pieces that may mention a
    needle. Holds one piece and a needle's length of what follows it, which is needed to see a needle run across
    the end of a piece (every piece it touches is then returned)."""

    def __init__(self, lineno: int, limit: int, needles: Needles, on_long_line: Callable[[int], None]) -> None:
        self.lineno = lineno
        self.limit = limit
        self.needles = needles
        self.on_long_line = on_long_line
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # decoded and not yet cut
        self.spill = 0  # characters after the last piece cut that a needle begun in it (or before) still covers

    def feed(self, chunk: bytes, final: bool) -> Iterator[tuple[int, str]]:
        # Decoded at most `limit` bytes at a time, so `text` never holds much more than a piece.
        for begin in range(0, len(chunk), self.limit):
            self.text += self.decoder.decode(chunk[begin : begin + self.limit])
            yield from self._cut(final=False)
        if final:
            self.text += self.decoder.decode(b"", final=True)
            yield from self._cut(final=True)

    def _cut(self, final: bool) -> Iterator[tuple[int, str]]:
        while True:
            reach = max((len(needle) for needle in self.needles.items), default=1) - 1
            more = len(self.text) > self.limit  # the line goes on after a piece
            if more and (final or len(self.text) >= self.limit + reach):
                self.on_long_line(self.lineno)
                piece_end = self.limit
            elif final and self.text:
                piece_end = len(self.text)
            else:
                return
            piece = self.text[:piece_end]
            if self._wanted(piece, self.text[piece_end : piece_end + reach]):
                yield self.lineno, piece
            self.text = self.text[piece_end:]

    def _wanted(self, piece: str, after: str) -> bool:
        """Whether `piece` (followed in the line by `after`) may mention a needle; notes how far a needle runs on."""
        # One byte per character, so that positions in `window` are positions in the text.
        window = (piece + after).encode("ascii", "replace").lower()
        size = len(piece)
        wanted = self.spill > 0 or not piece.isascii()
        spill = self.spill - size
        for needle in self.needles.items:
            reach = size + len(needle) - 1
            crossing = window.rfind(needle, max(0, size - len(needle) + 1), reach) if after else -1
            if crossing >= 0:
                wanted = True
                spill = max(spill, crossing + len(needle) - size)
            elif not wanted and window.find(needle, 0, reach) >= 0:
                wanted = True
        self.spill = max(spill, 0)
        return wanted or window.find(b"\x1b", 0, size) >= 0 or _next_letter_escape(window, 0, size) >= 0
