"""Model time from MLServer's own metrics: `model_infer_request_duration` (a Summary, seconds; labels `model`,
`version`) read before and after the run from MLServer's `/metrics`, the difference of `_sum` over the difference
of `_count` per model. With nothing else calling the model, one request's delta is exactly its model time; otherwise
it is the mean over every inference in between, and is labelled so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlops_trace.findings import Evidence
from mlops_trace.trace.record import ModelTime, SourceKind

DURATION_METRIC = "model_infer_request_duration"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class DurationTotals:
    """`_sum` (seconds) and `_count` of the model duration summary, per model label."""

    sums: Mapping[str, float]
    counts: Mapping[str, float]


def parse_totals(text: str, metric: str = DURATION_METRIC) -> DurationTotals:
    """Totals of `<metric>_sum` / `_count` from Prometheus text exposition, summed over labels other than `model`."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(metric):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name = match.group("name")
        if name not in (f"{metric}_sum", f"{metric}_count"):
            continue
        labels = {m.group("key"): m.group("value") for m in _LABEL.finditer(match.group("labels") or "")}
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        model = labels.get("model", "")
        bucket = sums if name.endswith("_sum") else counts
        bucket[model] = bucket.get(model, 0.0) + value
    return DurationTotals(sums, counts)


def scrape(url: str, timeout: float) -> DurationTotals | None:
    """The totals at `url` now; None when the endpoint cannot be read (the model hop then says so)."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_totals(response.text)


def model_time(
    before: DurationTotals, after: DurationTotals, models: Iterable[str], url: str, requests: int
) -> ModelTime | None:
    """Mean model time over the run for `models` (`<m>_<v>` names; all models when empty)."""
    wanted = set(models)
    keys = [key for key in after.counts if not wanted or key in wanted]
    delta_sum = sum(after.sums.get(key, 0.0) - before.sums.get(key, 0.0) for key in keys)
    delta_count = sum(after.counts.get(key, 0.0) - before.counts.get(key, 0.0) for key in keys)
    if delta_count <= 0:
        return None
    mean_ms = round(delta_sum / delta_count * 1000.0, 3)
    inferences = round(delta_count)
    exact = inferences == 1 and requests == 1
    label = ", ".join(sorted(keys)) or "all models"
    if exact:
        source = f"MLServer metric {DURATION_METRIC}_sum delta (this request only)"
    else:
        source = f"MLServer metric {DURATION_METRIC}: mean over {inferences} inferences ({label})"
    evidence = Evidence(
        where=url,
        what=f"{DURATION_METRIC}_sum +{delta_sum:.6f} s, _count +{inferences} ({label})",
    )
    return ModelTime(mean_ms, source, SourceKind.METRIC, (evidence,), per_request=exact, samples=inferences)
