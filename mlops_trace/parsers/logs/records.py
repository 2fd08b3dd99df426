"""A container log line as `kubectl logs` prints it turned into a `LogRecord`: its prefixes removed, then read by
the first format (`formats`) that recognises it.

Lines as people have them: a `kubectl logs --timestamps` prefix is removed first and gives the time when the line
itself has none (klog lines have no year, so they always take the prefix time). A `kubectl logs --prefix` source
(`[pod/NAME/CONTAINER] `, before or after the time) is removed and gives `pod` and `container` fields; so is a stern
(`POD CONTAINER `, `NAMESPACE POD CONTAINER `), pod-name or kubetail (`[POD] `) prefix, but only when the rest of the
line is a recognised format, since such a prefix looks like plain text (a field the line itself has wins over these).
Colour codes and leading blanks are ignored. Anything else becomes a record whose message is the line (without a
source or time prefix) and whose level is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mlops_trace.parsers._common import (
    split_kubectl_timestamp,
    split_source_prefix,
    strip_ansi,
    strip_line_end,
    tailer_prefix_splits,
)
from mlops_trace.parsers.logs.formats import PARSERS, Parsed, parse_body

__all__ = ["LogRecord", "iter_records", "message_contains", "parse_line"]


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
    parsed: Parsed | None = None
    try:
        for parser in PARSERS:
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


def _parse_pasted(body: str, has_source: bool) -> tuple[Parsed | None, dict[str, str], datetime | None]:
    """The second try at a line no format recognised as it is, kept off the common path: without leading blanks, then
    (when there is no kubectl source prefix) behind a stern, kubetail or pod-name prefix, which is kept only when what
    follows it is a known format. Gives (record, the prefix's source fields, a kubectl time after the prefix)."""
    parsed = parse_body(body.lstrip(" \t")) if body[:1] in (" ", "\t") else None
    if parsed is not None or has_source:
        return parsed, {}, None
    for tailer_source, rest in tailer_prefix_splits(body.lstrip()):
        rest_time, rest = split_kubectl_timestamp(rest)
        parsed = parse_body(rest)
        if parsed is not None:
            return parsed, tailer_source, rest_time
    return None, {}, None


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[LogRecord]:
    """Records for `(lineno, line)` pairs, lazily, in order."""
    for lineno, line in lines:
        yield parse_line(lineno, line)


def message_contains(record: LogRecord, needle: str) -> bool:
    """Case-insensitive substring test on the message, or on the raw line when the message is empty."""
    haystack = record.message if record.message else record.raw
    return needle.casefold() in haystack.casefold()
