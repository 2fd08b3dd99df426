"""Gates: thresholds on what a `smoke` run measured (`request --count N`), each one a `GateResult`.

- `min-success`: share of requests answered 2xx (gRPC OK), at least `--min-success` (default 0.99);
- `max-p95` / `max-p99`: client-side total latency percentiles, at most `--max-p95` / `--max-p99` ms (only when set);
- `split`: for an Experiment, the observed share of every candidate within `--split-tolerance` of its target share.
  A candidate observed farther off than the tolerance fails the gate: the gate never passes saying "within 5 points"
  of a split 11 points off. The 95 % interval says whether the data prove it (the interval lies wholly outside
  `target ± tolerance`) or whether too few answers were counted to tell it from chance (raise --count, or use
  --until-decided, whose sequential test then decides instead).

A gate that was asked for but cannot be measured (no successful request to time) fails; one that does not apply
(the split of a plain model) is skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis.objectives import DEFAULT_MIN_SUCCESS, DEFAULT_SPLIT_TOLERANCE


class GateStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class GateResult:
    name: str  # `max-p95`, `min-success`, `split`, `baseline hop 6 p95`
    status: GateStatus
    measured: float | None
    threshold: float | None
    detail: str  # one line: what was measured, against what, from where
    unit: str = ""  # "ms", "share", "" (for display)

    @property
    def passed(self) -> bool:
        return self.status is not GateStatus.FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "passed": self.passed,
            "measured": self.measured,
            "threshold": self.threshold,
            "unit": self.unit,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateSettings:
    min_success: float = DEFAULT_MIN_SUCCESS
    max_p95_ms: float | None = None
    max_p99_ms: float | None = None
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    until_decided: bool = False
    split_alpha: float | None = None  # the sequential test's α; None: the request default


def _status(ok: bool) -> GateStatus:
    return GateStatus.PASS if ok else GateStatus.FAIL


def success_gate(summary: Mapping[str, Any], minimum: float) -> GateResult:
    count = int(summary.get("count") or 0)
    succeeded = int(summary.get("succeeded") or 0)
    if count == 0:
        return GateResult("min-success", GateStatus.FAIL, None, minimum, "no request was sent", "share")
    rate = succeeded / count
    return GateResult(
        "min-success",
        _status(rate >= minimum),
        round(rate, 6),
        minimum,
        f"{succeeded} of {count} requests succeeded ({100.0 * rate:.2f}%; objective {100.0 * minimum:.2f}%)",
        "share",
    )


def latency_gate(summary: Mapping[str, Any], percentile: str, maximum: float) -> GateResult:
    name = f"max-{percentile}"
    latency = summary.get("latency_ms")
    value = latency.get(percentile) if isinstance(latency, Mapping) else None
    if not isinstance(value, int | float):
        return GateResult(name, GateStatus.FAIL, None, maximum, "no successful request to time", "ms")
    samples = latency.get("count") if isinstance(latency, Mapping) else None
    return GateResult(
        name,
        _status(float(value) <= maximum),
        float(value),
        maximum,
        f"{percentile.upper()} of the client-side total over {samples} successful requests is {float(value):.1f} ms "
        f"(objective {maximum:g} ms)",
        "ms",
    )


def split_gate(summary: Mapping[str, Any], tolerance: float, until_decided: bool) -> GateResult:
    split = summary.get("split")
    if not isinstance(split, Mapping):
        return GateResult("split", GateStatus.SKIP, None, tolerance, "the target is not an Experiment", "share")
    observed = {str(k): int(v) for k, v in (split.get("observed") or {}).items()}
    reference_name = "Experiment" if split.get("expected") else "Envoy"
    reference = {str(k): float(v) for k, v in (split.get("expected") or split.get("envoy") or {}).items()}
    total = sum(observed.values())
    if not reference:
        return GateResult("split", GateStatus.SKIP, None, tolerance,
                          "the Experiment's weights are unknown (give --bundle, -n/-A or --stack)", "share")
    if total == 0:
        return GateResult("split", GateStatus.FAIL, None, tolerance, "no successful answer named a candidate",
                          "share")
    shares = {key: observed.get(key, 0) / total for key in set(observed) | set(reference)}
    gap_key = max(shares, key=lambda key: abs(shares[key] - reference.get(key, 0.0)))
    gap = abs(shares[gap_key] - reference.get(gap_key, 0.0))
    observed_text = ", ".join(f"{k} {100.0 * v:.1f}%" for k, v in sorted(shares.items()))
    target_text = ", ".join(f"{k} {100.0 * v:.1f}%" for k, v in sorted(reference.items()))
    base = f"{total} answers split {observed_text}; {reference_name} weights {target_text}"
    if until_decided:
        decision = split.get("sequential")
        detail = f"{base}; sequential test: {decision or 'not run'}"
        if decision == "consistent":
            return GateResult("split", GateStatus.PASS, round(gap, 6), tolerance, detail, "share")
        if decision == "continue":
            detail += " (undecided: raise --count)"
        return GateResult("split", GateStatus.FAIL, round(gap, 6), tolerance, detail, "share")
    intervals = split.get("intervals") or {}
    off: list[str] = []
    unproven = False
    for key, target in sorted(reference.items()):
        share = shares.get(key, 0.0)
        low, high = _interval(intervals.get(key), share)
        if abs(share - target) <= tolerance:
            continue
        proven = low > target + tolerance or high < target - tolerance
        unproven = unproven or not proven
        off.append(f"{key} {100.0 * share:.1f}% (95% interval {100.0 * low:.1f}-{100.0 * high:.1f}%) vs "
                   f"{100.0 * target:.1f}% ± {100.0 * tolerance:g}" + ("" if proven else " (not proven)"))
    for key in sorted(set(observed) - set(reference)):
        if observed[key] > 0:
            off.append(f"{key} answered {observed[key]} requests but has no weight")
    if off:
        hint = (f"; {total} answers cannot tell this from chance: raise --count or use --until-decided"
                if unproven else "")
        return GateResult("split", GateStatus.FAIL, round(gap, 6), tolerance,
                          f"{base}; off beyond the tolerance: {'; '.join(off)}{hint}", "share")
    return GateResult("split", GateStatus.PASS, round(gap, 6), tolerance,
                      f"{base}; every candidate's observed share within {100.0 * tolerance:g} points", "share")


def _interval(raw: Any, share: float) -> tuple[float, float]:
    if isinstance(raw, list | tuple) and len(raw) == 2:
        try:
            return float(raw[0]), float(raw[1])
        except (TypeError, ValueError):
            pass
    return share, share


def request_gates(summary: Mapping[str, Any], settings: GateSettings, is_experiment: bool) -> list[GateResult]:
    """The gates of one request run (`RunSummary.to_dict()`)."""
    gates = [success_gate(summary, settings.min_success)]
    if settings.max_p95_ms is not None:
        gates.append(latency_gate(summary, "p95", settings.max_p95_ms))
    if settings.max_p99_ms is not None:
        gates.append(latency_gate(summary, "p99", settings.max_p99_ms))
    if is_experiment:
        gates.append(split_gate(summary, settings.split_tolerance, settings.until_decided))
    return gates
