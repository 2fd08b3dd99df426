"""Comparing the times of log lines from different components: a line's time may carry a zone or not (klog, a
logrus line without one), so every time is read as UTC when it has none, the zone Kubernetes containers log in
unless TZ is set; and a set of event times becomes the windows around them that a check matches other lines to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC time; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """From `start` to `end` (aware UTC, both included): events `first`..`last` widened by a margin on each side."""

    start: datetime
    end: datetime
    first: datetime
    last: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= as_utc(moment) <= self.end


def windows_around(moments: Iterable[datetime], margin: timedelta) -> list[Window]:
    """The windows of `moments`, each widened by `margin` before its first and after its last event; events closer
    than two margins apart share one window. Sorted by start."""
    ordered = sorted(as_utc(moment) for moment in moments)
    windows: list[Window] = []
    for moment in ordered:
        if windows and moment - margin <= windows[-1].end:
            last = windows[-1]
            windows[-1] = Window(last.start, moment + margin, last.first, moment)
        else:
            windows.append(Window(moment - margin, moment + margin, moment, moment))
    return windows
