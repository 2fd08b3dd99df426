"""The shapes a container log line's body can have, each read by one function into a `Parsed` (time, level,
message, logger, fields), or None when the body is not in that shape.

Tried in this order (`PARSERS`): JSON objects (zap, logrus, Python JSON loggers, ECS `log.level`); logfmt as logrus'
text formatter writes it (`time="…" level=info msg="…" source=SeldonXDSCache`, the logger under `source`, `Source`,
`Name` or `logger`); klog (`I0712 18:30:09.123456  7 f.go:1] …`); zap's development console format (tab-separated
time, level, logger, caller, message, JSON tail); Python logging as MLServer configures it
(`2025-07-12 18:30:09,123 [mlserver.rest] INFO - …`); uvicorn's default (`INFO:     …`); nginx error-log lines as the
ingress-nginx controller writes them between its access lines (`2021/03/27 01:58:00 [error] 318#318: *75161 …`, see
`nginx_error`: the message is the text after the connection id, context included, and `client`, `upstream`, `errno`…
become fields; access lines stay unrecognised text here, `nginx_access` reads them); last, zap's console format whose
tabs a terminal, k9s or a GitHub paste turned into runs of spaces (columns are then told apart by two or more spaces,
or by a dotted or camelCase logger name before one space). Access lines of uvicorn also yield `method`, `path` and
`status` fields. Typographic double quotes (“ ”) from a paste count as `"` in JSON, logfmt and klog lines; a stray
quote after a bare logfmt value (`Name=Agent"`) or before the first key is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_trace.parsers import nginx_error
from mlops_trace.parsers._common import (
    has_typographic_quotes,
    parse_epoch,
    parse_timestamp,
    read_go_quoted,
    read_logfmt_pairs,
    split_http_request,
    straighten_quotes,
    stringify,
    unquote_stray,
)

__all__ = ["PARSERS", "Parsed", "parse_body"]


@dataclass(frozen=True)
class Parsed:
    """What a format read from a line's body (its prefixes already removed); `records` makes it a LogRecord."""

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


def _parse_json(body: str) -> Parsed | None:
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
    return Parsed(
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


def _parse_logfmt(body: str) -> Parsed | None:
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
    return Parsed(
        time=when,
        level=_normalise_level(data[level_key]) if level_key is not None else None,
        message=data.get("msg", ""),
        logger=data[logger_key] if logger_key is not None else None,
        fields={key: value for key, value in data.items() if key not in consumed},
    )


def _parse_klog(body: str) -> Parsed | None:
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
    return Parsed(time=None, level=_KLOG_LEVELS[severity], message=message, logger=None, fields=fields)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _parse_zap_console(body: str) -> Parsed | None:
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
    return Parsed(
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


def _parse_python_logging(body: str) -> Parsed | None:
    match = _PYTHON_LOGGING.match(body)
    if match is None:
        return None
    stamp, logger, level, message = match.groups()
    return Parsed(
        time=parse_timestamp(stamp),
        level=_normalise_level(level),
        message=message,
        logger=logger,
        fields=_access_fields(message),
    )


def _parse_uvicorn(body: str) -> Parsed | None:
    match = _UVICORN.match(body)
    if match is None:
        return None
    level, message = match.groups()
    return Parsed(
        time=None, level=_normalise_level(level), message=message, logger=None, fields=_access_fields(message)
    )


def _parse_zap_spaced(body: str) -> Parsed | None:
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
    return Parsed(time=when, level=_normalise_level(level), message=rest, logger=logger, fields=fields)


def _parse_nginx_error(body: str) -> Parsed | None:
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
    return Parsed(
        time=parsed.time, level=_normalise_level(parsed.level), message=parsed.text, logger=None, fields=fields
    )


# Tried in this order; the first that recognises a body wins.
PARSERS: tuple[Callable[[str], Parsed | None], ...] = (
    _parse_json,
    _parse_logfmt,
    _parse_klog,
    _parse_zap_console,
    _parse_python_logging,
    _parse_uvicorn,
    _parse_nginx_error,
    _parse_zap_spaced,
)


def parse_body(body: str) -> Parsed | None:
    """The first format that recognises `body`, a line without its prefixes."""
    for parser in PARSERS:
        parsed = parser(body)
        if parsed is not None:
            return parsed
    return None
