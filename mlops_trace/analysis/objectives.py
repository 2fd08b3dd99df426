"""The service-level objectives the MT4xx checks and the smoke gates judge against, with their defaults.

Defaults follow the write-ups the tool was built from (`HighMLInferenceLatency`: P95 above 50 ms; success rate
99 %). The checks take them as keyword options (`run(snap, *, max_p95_ms=...)`); `check_options` passes only the
ones a user set, so each check's own default applies otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_trace.errors import UsageError

DEFAULT_MAX_P95_MS = 50.0
DEFAULT_MIN_SUCCESS = 0.99
DEFAULT_SPLIT_ALPHA = 0.01  # below this p-value an observed split is not chance
DEFAULT_SPLIT_TOLERANCE = 0.05  # and it must also be off by more than this share (5 points) to matter
DEFAULT_MIN_REQUESTS = 20  # MT401/MT402 ignore groups with fewer requests in the window
DEFAULT_MIN_SPLIT_REQUESTS = 100  # MT403 tests no split on fewer
# Envoy's share of a candidate may differ from the Experiment's by this many percentage points (rounding of weights)
# before MT303 calls the split stale.
WEIGHT_TOLERANCE_PP = 1.0


@dataclass(frozen=True)
class Objectives:
    """Thresholds a user set; None means "the check's default"."""

    max_p95_ms: float | None = None
    min_success: float | None = None
    split_alpha: float | None = None
    split_tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.max_p95_ms is not None and self.max_p95_ms <= 0:
            raise UsageError("--max-p95 must be above 0 ms")
        if self.min_success is not None and not 0.0 <= self.min_success <= 1.0:
            raise UsageError("--min-success must be a fraction between 0 and 1 (e.g. 0.99)")
        if self.split_alpha is not None and not 0.0 < self.split_alpha < 1.0:
            raise UsageError("--split-alpha must be between 0 and 1 (e.g. 0.01)")
        if self.split_tolerance is not None and not 0.0 <= self.split_tolerance < 1.0:
            raise UsageError("--split-tolerance must be a share between 0 and 1 (e.g. 0.05)")

    def check_options(self) -> dict[str, Any]:
        """Keyword options for the check engine (`run_checks(..., options)`), only those set."""
        options: dict[str, Any] = {
            "max_p95_ms": self.max_p95_ms,
            "min_success": self.min_success,
            "split_alpha": self.split_alpha,
            "split_tolerance": self.split_tolerance,
        }
        return {key: value for key, value in options.items() if value is not None}

# MT405: an Envoy 503 (UH/UF/URX) this many seconds before the first or after the last scheduler state change of a
# model still counts as during that reschedule (a replica dies before the scheduler logs it; Envoy's STRICT_DNS
# endpoints and the agent's load catch up after it).
DEFAULT_RESCHEDULE_MARGIN_S = 30.0
# MT404: the CPU one MLServer inference worker (one Python process) keeps busy at full load, in cores.
DEFAULT_CORES_PER_MLSERVER_WORKER = 1.0
