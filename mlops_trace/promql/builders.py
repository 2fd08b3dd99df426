"""PromQL builders: selectors with safely quoted matchers, quantiles over histograms, counts over a window, the
metric probe. Pure text; the same builders serve the checks (through `plan`) and the alert rules (`alerts`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlops_trace.errors import UsageError

# Prometheus durations: one or more <number><unit> parts, largest unit first (`5m`, `1h30m`, `90s`).
_DURATION = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")
_UNIT_SECONDS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# RE2 metacharacters; a name is matched literally by escaping these.
_REGEX_META = re.compile(r"([.+*?()|\[\]{}^$\\])")


def check_window(window: str) -> str:
    """`window` if it is a Prometheus duration (`5m`, `1h30m`), else UsageError."""
    text = window.strip()
    if not text or not _DURATION.fullmatch(text) or window_seconds(text) <= 0:
        raise UsageError(f"--window must be a Prometheus duration such as 5m, 30s or 1h (got {window!r})")
    return text


def window_seconds(window: str) -> float:
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in re.findall(r"(\d+)(ms|[ywdhms])", window))


def quote(value: str) -> str:
    """A PromQL string literal (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def literal_regex(names: Iterable[str]) -> str:
    """A regular expression matching exactly one of `names` (escaped), e.g. `a\\.b|c`."""
    return "|".join(_REGEX_META.sub(r"\\\1", name) for name in names)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def __post_init__(self) -> None:
        if not _LABEL_NAME.match(self.label) or self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"bad matcher {self.label}{self.op}{self.value!r}")

    def text(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"


def eq(label: str, value: str) -> Matcher:
    return Matcher(label, "=", value)


def regex(label: str, value: str) -> Matcher:
    return Matcher(label, "=~", value)


def not_regex(label: str, value: str) -> Matcher:
    return Matcher(label, "!~", value)


def selector(metric: str | Sequence[str], matchers: Sequence[Matcher] = ()) -> str:
    """`metric{a="b"}`; several metric names become one `{__name__=~"x|y", ...}` selector."""
    if isinstance(metric, str):
        inner = ", ".join(m.text() for m in matchers)
        return f"{metric}{{{inner}}}" if inner else metric
    names = [regex("__name__", literal_regex(metric)), *matchers]
    return "{" + ", ".join(m.text() for m in names) + "}"


def _by(labels: Sequence[str]) -> str:
    return f"sum by ({', '.join(labels)}) " if labels else "sum "


def histogram_quantile(
    quantile: float, bucket_metric: str, by: Sequence[str], matchers: Sequence[Matcher], window: str
) -> str:
    """`histogram_quantile(q, sum by (<by>, le) (rate(<bucket>{...}[w])))`: one quantile per group."""
    groups = [*by, "le"]
    rate = f"rate({selector(bucket_metric, matchers)}[{window}])"
    return f"histogram_quantile({quantile:g}, {_by(groups)}({rate}))"


def increase_sum(metric: str | Sequence[str], by: Sequence[str], matchers: Sequence[Matcher], window: str) -> str:
    """`sum by (<by>) (increase(<metric>{...}[w]))`: how many events each group had over the window."""
    return f"{_by(by)}(increase({selector(metric, matchers)}[{window}]))"


def rate_sum(metric: str | Sequence[str], by: Sequence[str], matchers: Sequence[Matcher], window: str) -> str:
    return f"{_by(by)}(rate({selector(metric, matchers)}[{window}]))"


def probe(names: Iterable[str]) -> str:
    """`count by (__name__) ({__name__=~"a|b"})`: which of `names` Prometheus holds series for right now."""
    return f"count by (__name__) ({selector(list(names))})"


def freshest_common_sample(names: Iterable[str]) -> str:
    """`min(timestamp({__name__=~"a|b"}))`: the time of the oldest latest sample among those series, i.e. when the
    slowest of their targets was last scraped."""
    return f"min(timestamp({selector(list(names))}))"
