"""Container log lines as `kubectl logs` prints them, turned into `LogRecord`s one line at a time.

Recognised shapes, tried in this order: JSON objects (zap, logrus, Python JSON loggers); logfmt as logrus' text
formatter writes it (`time="…" level=info msg="…" source=SeldonXDSCache`); klog (`I0712 18:30:09.123456  7 f.go:1] …`);
zap's development console format (tab-separated time, level, logger, caller, message, JSON tail); Python logging as
MLServer configures it (`2025-07-12 18:30:09,123 [mlserver.rest] INFO - …`); uvicorn's default (`INFO:     …`). Access
lines of uvicorn also yield `method`, `path` and `status` fields. A `kubectl logs --timestamps` prefix is removed first
and gives the time when the line itself has none (klog lines have no year, so they always take the prefix time).
Anything else becomes a record whose message is the line and whose level is None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_trace.parsers._common import (
    parse_epoch,
    parse_timestamp,
    read_go_quoted,
    read_logfmt_pairs,
    split_kubectl_timestamp,
    stringify,
    strip_ansi,
    strip_line_end,
)

__all__ = ["LogRecord", "iter_records", "lines_mentioning", "message_contains", "parse_line"]


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
    "fatal": "fatal",
    "dpanic": "panic",
    "panic": "panic",
}
_ZAP_CONSOLE_LEVELS = frozenset({"debug", "info", "warn", "warning", "error", "dpanic", "panic", "fatal"})
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}

_JSON_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "asctime")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "levelname")
_JSON_MESSAGE_KEYS = ("msg", "message")
# Lower-case `name` is left alone on purpose: Seldon components log model names under it.
_JSON_LOGGER_KEYS = ("logger", "source", "Name", "logger_name")
_LOGFMT_TIME_KEYS = ("time", "ts", "t")
_LOGFMT_LEVEL_KEYS = ("level", "lvl")
_LOGFMT_LOGGER_KEYS = ("source", "Name", "logger")

_LOGFMT_START = re.compile(r"(?:time|ts|t|level|lvl)=")
# One logfmt token: a bare word, or `key=` with a quoted (escape-free) or bare value.
_LOGFMT_TOKEN = re.compile(r'[ \t]*([^ \t=]*)(?:=(?:"([^"]*)"?|([^ \t]*)))?')
_KLOG = re.compile(r"([IWEF])(\d{4} \d{2}:\d{2}:\d{2}\.\d+)\s+(\d+) ([^\s\]]+)\] ?(.*)", re.DOTALL)
_GO_CALLER = re.compile(r"[\w./-]+\.go:\d+")
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
    prefix_time, body = split_kubectl_timestamp(raw)
    body = strip_ansi(body)
    parsed: _Parsed | None = None
    try:
        for parser in _PARSERS:
            parsed = parser(body)
            if parsed is not None:
                break
    except Exception:  # noqa: BLE001 - one odd line must never end a scan of a whole log
        parsed = None
    if parsed is None:
        return LogRecord(lineno=lineno, raw=raw, time=prefix_time, level=None, message=body, logger=None, fields={})
    return LogRecord(
        lineno=lineno,
        raw=raw,
        time=parsed.time if parsed.time is not None else prefix_time,
        level=parsed.level,
        message=parsed.message,
        logger=parsed.logger,
        fields=parsed.fields,
    )


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
            pairs.append((key, quoted if quoted is not None else bare))
    return pairs


def _parse_logfmt(body: str) -> _Parsed | None:
    if _LOGFMT_START.match(body) is None:
        return None
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
        when = parse_epoch(columns[0]) if columns[0].replace(".", "", 1).isdecimal() else None
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


_PARSERS = (_parse_json, _parse_logfmt, _parse_klog, _parse_zap_console, _parse_python_logging, _parse_uvicorn)


# ---- finding the few lines a check needs in a large log ------------------------------------------------------------

_SCAN_BLOCK = 1 << 22
# Bytes that may make a line's parsed message hold a needle its raw bytes do not: non-ASCII (Unicode case folding,
# as re.IGNORECASE applies it), escapes that can spell letters (Go's hex, unicode and octal escapes, JSON's unicode
# escape: a backslash before one of _LETTER_ESCAPES) and terminal colour codes (stripped before parsing).
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_LETTER_ESCAPES = frozenset(b"xuU01234567")


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


def lines_mentioning(path: Path, needles: Iterable[str] | Needles) -> Iterator[tuple[int, str]]:
    """The `(line number, line)` pairs of `path` that may mention one of `needles`, numbered and decoded exactly as
    `LogSource.lines()` gives them (UTF-8 with replacement, universal newlines, line end stripped).

    Every line whose parsed message or raw text contains a needle case-insensitively is returned, so a check that
    only acts on such lines sees the same lines through this as through `lines()`; a few more may come back (lines
    with non-ASCII bytes, letter escapes or colour codes are always returned, as their parsed text may differ from
    their bytes). The file is read in large binary blocks and searched with `bytes.find`, so a scan costs about what
    `grep -c -i` costs, and only the returned lines are decoded. Needles must be ASCII without line breaks; given as
    a `Needles`, they may be added to between lines.
    """
    wanted = needles if isinstance(needles, Needles) else Needles(needles)
    lineno = 0  # lines before the current block
    carry = b""
    with path.open("rb") as handle:
        while True:
            data = handle.read(_SCAN_BLOCK)
            block = carry + data if carry else data
            if not block:
                return
            end = _last_line_end(block) + 1 if data else len(block)
            if end <= 0:
                carry = block  # no complete line yet
                continue
            carriage = b"\r" in block
            yield from _block_candidates(block, end, lineno, wanted, carriage)
            if not data:
                return
            lineno += _count_line_ends(block, 0, end, carriage)
            carry = block[end:]


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


def _positions(lowered: bytes, needles: Iterable[bytes], start: int, end: int) -> list[int]:
    found: list[int] = []
    for needle in needles:
        position = lowered.find(needle, start, end)
        while position >= 0:
            found.append(position)
            position = lowered.find(needle, position + len(needle), end)
    return found


def _unsure_positions(block: bytes, end: int) -> Iterator[int]:
    """Where `block[:end]` holds a byte that may make a line's parsed text differ from its bytes."""
    if not block.isascii():
        yield from (match.start() for match in _NON_ASCII.finditer(block, 0, end))
    for byte in (b"\\", b"\x1b"):
        position = block.find(byte, 0, end)
        while position >= 0:
            if byte == b"\x1b" or (position + 1 < end and block[position + 1] in _LETTER_ESCAPES):
                yield position
            position = block.find(byte, position + 1, end)


def _block_candidates(
    block: bytes, end: int, lineno: int, needles: Needles, carriage: bool
) -> Iterator[tuple[int, str]]:
    """Candidate lines among the complete lines `block[:end]`, the first of which is line `lineno + 1`."""
    lowered = block.lower()
    searched = len(needles)
    hits = _positions(lowered, needles.items, 0, end)
    hits.extend(_unsure_positions(block, end))
    if not hits:
        return
    hits.sort()
    counted_to = 0
    last_start = -1
    index = 0
    while index < len(hits):
        position = hits[index]
        index += 1
        start = block.rfind(b"\n", 0, position) + 1
        if carriage:
            start = max(start, block.rfind(b"\r", 0, position) + 1)
        if start == last_start:
            continue
        last_start = start
        stop = block.find(b"\n", position, end)
        stop = end if stop < 0 else stop
        if carriage:
            cr = block.find(b"\r", position, stop)
            stop = cr if cr >= 0 else stop
        lineno += _count_line_ends(block, counted_to, start, carriage)
        counted_to = start
        yield lineno + 1, block[start:stop].decode("utf-8", errors="replace")
        if len(needles) > searched:  # the caller added needles: find them in the rest of the block too
            added = _positions(lowered, needles.items[searched:], stop, end)
            searched = len(needles)
            if added:
                hits = sorted(hits[index:] + added)
                index = 0
