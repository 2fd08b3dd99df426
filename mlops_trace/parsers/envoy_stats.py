"""Envoy admin `/stats` text (`name: value` per line) as counters, histograms and text readouts.

Counters and gauges are integers. Histogram lines (`cluster.x.upstream_rq_time: P0(nan,0) P25(nan,0) …`, or
`No recorded values`) are kept as text. Other non-numeric values are text readouts (`server.version` style). Lines
that are not `name: value` are skipped, so a truncated or mixed file still yields what it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.errors import InputError
from mlops_trace.limits import DEFAULT_LIMITS

__all__ = ["EnvoyStats", "load_stats", "parse_stats"]

_HISTOGRAM_VALUE = re.compile(r"(?:P\d+(?:\.\d+)?\(|No recorded values)")
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class EnvoyStats:
    counters: Mapping[str, int] = field(default_factory=dict, hash=False)  # counters and gauges
    histograms: Mapping[str, str] = field(default_factory=dict, hash=False)
    text_readouts: Mapping[str, str] = field(default_factory=dict, hash=False)

    def get(self, name: str, default: int = 0) -> int:
        """A counter or gauge; `default` when Envoy did not report it (a stat appears only once it is used)."""
        return self.counters.get(name, default)

    def matching(self, prefix: str) -> dict[str, int]:
        """Counters and gauges whose name starts with `prefix`, e.g. `cluster.iris_1_http.`."""
        return {name: value for name, value in self.counters.items() if name.startswith(prefix)}


def parse_stats(lines: Iterable[str]) -> EnvoyStats:
    """Read `/stats` text line by line. Never raises on a malformed line."""
    counters: dict[str, int] = {}
    histograms: dict[str, str] = {}
    text_readouts: dict[str, str] = {}
    for line in lines:
        text = line.rstrip("\r\n")
        name, separator, value = text.partition(": ")
        if not separator:
            if text.endswith(":") and " " not in text:  # a text readout whose value is empty
                text_readouts[text[:-1]] = ""
            continue
        name = name.strip()
        if not name or " " in name:
            continue
        value = value.strip()
        if _INTEGER.fullmatch(value) and len(value) <= 40:  # a counter is 64-bit; more digits is not one
            counters[name] = int(value)
        elif _HISTOGRAM_VALUE.match(value):
            histograms[name] = value
        else:
            text_readouts[name] = value
    return EnvoyStats(counters=counters, histograms=histograms, text_readouts=text_readouts)


def load_stats(path: Path, max_line_chars: int = DEFAULT_LIMITS.line_chars) -> EnvoyStats:
    """Read a saved `/stats` file, a line at most `max_line_chars` at a time (a longer one is no stat line).
    Raises InputError naming the file when it cannot be read."""
    from mlops_trace.parsers.logs import read_line_pieces

    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return parse_stats(text for _, text in read_line_pieces(handle, max_line_chars))
    except OSError as error:
        raise InputError(f"{path}: cannot read Envoy stats ({error.strerror or error})") from error
