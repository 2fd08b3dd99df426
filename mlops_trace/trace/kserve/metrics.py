"""Model time from the KServe model server's own metrics: the `request_predict_seconds` histogram (label
`model_name`, served on the HTTP port's `/metrics`; kserve 0.21.0 `kserve/metrics.py`, KSERVE-FACTS §5.2), read
before and after the run. Its `_sum` delta over its `_count` delta is the mean predict time of the run: this
request's own when the run sent one and the count moved by one.
"""

from __future__ import annotations

from mlops_trace.findings import Evidence
from mlops_trace.trace.metrics import DurationTotals, parse_totals
from mlops_trace.trace.record import ModelTime, SourceKind

PREDICT_METRIC = "request_predict_seconds"


def scrape(url: str, timeout: float) -> DurationTotals | None:
    """The histogram's totals at `url` now; None when the endpoint cannot be read."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_totals(response.text, PREDICT_METRIC)


def model_time(before: DurationTotals, after: DurationTotals, url: str, requests: int) -> ModelTime | None:
    delta_sum = sum(after.sums.values()) - sum(before.sums.values())
    delta_count = sum(after.counts.values()) - sum(before.counts.values())
    if delta_count <= 0:
        return None
    inferences = round(delta_count)
    exact = inferences == 1 and requests == 1
    source = (
        f"model server metric {PREDICT_METRIC}_sum delta (this request only)"
        if exact
        else f"model server metric {PREDICT_METRIC}: mean over {inferences} predictions"
    )
    evidence = Evidence(url, f"{PREDICT_METRIC}_sum +{delta_sum:.6f} s, _count +{inferences}")
    return ModelTime(
        round(delta_sum / delta_count * 1000.0, 3), source, SourceKind.METRIC, (evidence,), exact, inferences
    )
