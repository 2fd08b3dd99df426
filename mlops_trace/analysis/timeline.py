"""Log timestamps on one clock: the time of a container log line as an aware UTC datetime, so lines of different
components (ingress-nginx access lines, Envoy's application log, MLServer, the scheduler) can be put in order, and
the windows around a set of events that a check matches other lines to.

Envoy's application log (`[2025-03-04 08:15:02.117][1][info][config] [source/…] …`, its default format
`[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v`) is read here, since the generic log parser leaves it as plain text. A
time without a zone is taken as UTC: Seldon's and ingress-nginx's containers log in UTC unless TZ is set. A
`kubectl logs --timestamps` prefix (which carries a zone) wins over the line's own time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlops_trace.parsers.logs import LogRecord, parse_line

__all__ = ["as_utc", "envoy_app_time", "line_time", "record_time"]

_ENVOY_APP_TIME = re.compile(r"\[(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\]\[")


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive time is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_utc(when: datetime | None) -> datetime | None:
    """`utc(when)`, and None for None."""
    return None if when is None else utc(when)


@dataclass(frozen=True)
class Window:
    """From `start` to `end` (aware UTC, both included): events `first`..`last` widened by a margin on each side."""

    start: datetime
    end: datetime
    first: datetime
    last: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= utc(moment) <= self.end


def windows_around(moments: Iterable[datetime], margin: timedelta) -> list[Window]:
    """The windows of `moments`, each widened by `margin` before its first and after its last event; events closer
    than two margins apart share one window. Sorted by start."""
    ordered = sorted(utc(moment) for moment in moments)
    windows: list[Window] = []
    for moment in ordered:
        if windows and moment - margin <= windows[-1].end:
            last = windows[-1]
            windows[-1] = Window(last.start, moment + margin, last.first, moment)
        else:
            windows.append(Window(moment - margin, moment + margin, moment, moment))
    return windows


def envoy_app_time(text: str) -> datetime | None:
    """The time of an Envoy application-log line (`[2025-03-04 08:15:02.117][…`), searched anywhere in `text` so a
    source prefix before it does not matter; None when there is none or it is not a date."""
    found = _ENVOY_APP_TIME.search(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)
    except ValueError:
        return None


def record_time(record: LogRecord) -> datetime | None:
    """A parsed log line's time in UTC: the parser's (kubectl prefix or the format's own), else Envoy's."""
    if record.time is not None:
        return as_utc(record.time)
    return envoy_app_time(record.message)


def line_time(lineno: int, line: str) -> datetime | None:
    """The time of one raw log line, in UTC (None when the line carries none)."""
    return record_time(parse_line(lineno, line))
