"""Statistics of a run: latency percentiles (HDR histogram), proportions with confidence intervals, goodness-of-fit
p-values for an A/B split, and Wald's sequential test for `--until-decided`.

Only the standard library is used for the tests, so the numbers can be checked by hand: the chi-square tail comes
from the regularised incomplete gamma function, the binomial test sums exact probabilities. The HDR histogram
(`hdrhistogram` from PyPI) keeps percentiles exact to three significant digits in constant memory whatever the
request count, which a prober that may run for hours needs; it is imported when the first histogram is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Latencies are recorded in microseconds between 1 µs and 1 h, three significant digits.
_HDR_LOWEST_US = 1
_HDR_HIGHEST_US = 3_600_000_000
_HDR_DIGITS = 3


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one series of durations, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    minimum: float
    maximum: float
    mean: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
        }


class LatencyHistogram:
    """Durations in ms recorded into an HDR histogram (µs resolution); negative values are clamped to 0."""

    def __init__(self) -> None:
        from hdrh.histogram import HdrHistogram

        self._histogram: Any = HdrHistogram(_HDR_LOWEST_US, _HDR_HIGHEST_US, _HDR_DIGITS)
        self._count = 0
        self._sum_ms = 0.0
        self._min_ms = math.inf
        self._max_ms = -math.inf

    def record(self, value_ms: float) -> None:
        micros = min(max(round(value_ms * 1000.0), 0), _HDR_HIGHEST_US - 1)
        # HDR histograms hold positive integers: values are stored one µs up, so 0 (a log's ms resolution) survives.
        self._histogram.record_value(micros + 1)
        self._count += 1
        self._sum_ms += value_ms
        self._min_ms = min(self._min_ms, value_ms)
        self._max_ms = max(self._max_ms, value_ms)

    @property
    def count(self) -> int:
        return self._count

    def percentile(self, percent: float) -> float:
        """The value at `percent` (0–100) in ms: the lowest value of its bucket, so a value recorded exactly reads back
        unchanged and none reads back higher than it was."""
        if self._count == 0:
            return math.nan
        value = self._histogram.get_value_at_percentile(percent)
        return float(self._histogram.get_lowest_equivalent_value(value) - 1) / 1000.0

    def summary(self) -> LatencySummary | None:
        if self._count == 0:
            return None
        return LatencySummary(
            count=self._count,
            p50=round(self.percentile(50.0), 3),
            p95=round(self.percentile(95.0), 3),
            p99=round(self.percentile(99.0), 3),
            minimum=round(self._min_ms, 3),
            maximum=round(self._max_ms, 3),
            mean=round(self._sum_ms / self._count, 3),
        )


def summarize(values_ms: Iterable[float]) -> LatencySummary | None:
    """Percentiles of a finite series through an HDR histogram."""
    histogram = LatencyHistogram()
    for value in values_ms:
        histogram.record(value)
    return histogram.summary()


def median(values: Sequence[float]) -> float | None:
    """The median (mean of the two middle values for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


# --- proportions -------------------------------------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = normal_quantile(0.5 + confidence / 2.0)
    share = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (share + z * z / (2.0 * trials)) / denominator
    half = z * math.sqrt(share * (1.0 - share) / trials + z * z / (4.0 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_quantile(probability: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9)."""
    if not 0.0 < probability < 1.0:
        raise ValueError("probability must be in (0, 1)")
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -7.784894002430293e-03,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if probability < low:
        q = math.sqrt(-2.0 * math.log(probability))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    if probability > 1.0 - low:
        return -normal_quantile(1.0 - probability)
    q = probability - 0.5
    r = q * q
    return (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    )


# --- goodness of fit -----------------------------------------------------------------------------------------------


def regularized_gamma_q(shape: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a): the series below x < a + 1, the continued fraction (modified Lentz) above."""
    if x < 0.0 or shape <= 0.0:
        raise ValueError("regularized_gamma_q needs x >= 0 and a > 0")
    if x == 0.0:
        return 1.0
    log_prefactor = shape * math.log(x) - x - math.lgamma(shape)
    if x < shape + 1.0:
        term = total = 1.0 / shape
        denominator = shape
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    tiny = 1e-300
    b = x + 1.0 - shape
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for index in range(1, 10_000):
        an = -index * (index - shape)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefactor) * fraction)


def chi_square_sf(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for a chi-square distribution."""
    if degrees_of_freedom <= 0:
        raise ValueError("degrees of freedom must be positive")
    if statistic <= 0.0:
        return 1.0
    return regularized_gamma_q(degrees_of_freedom / 2.0, statistic / 2.0)


@dataclass(frozen=True)
class FitTest:
    """A goodness-of-fit test of observed counts against expected shares."""

    method: str  # "binomial (exact, two-sided)" | "chi-square" | "impossible" | "none"
    statistic: float | None
    degrees_of_freedom: int | None
    p_value: float | None


def binomial_two_sided(successes: int, trials: int, probability: float) -> float:
    """Exact two-sided binomial test: the total probability of outcomes no more likely than the one observed."""
    if trials == 0:
        return 1.0
    if probability <= 0.0:
        return 1.0 if successes == 0 else 0.0
    if probability >= 1.0:
        return 1.0 if successes == trials else 0.0
    log_p, log_q = math.log(probability), math.log1p(-probability)
    log_n = math.lgamma(trials + 1)

    def log_pmf(k: int) -> float:
        return log_n - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p + (trials - k) * log_q

    observed = log_pmf(successes)
    # A relative slack as R's binom.test uses, so outcomes equally likely up to rounding count as "as extreme".
    limit = observed + 1e-7
    total = sum(math.exp(value) for value in (log_pmf(k) for k in range(trials + 1)) if value <= limit)
    return min(1.0, total)


def goodness_of_fit(observed: Mapping[str, int], expected_shares: Mapping[str, float]) -> FitTest:
    """Observed counts per key against expected shares (normalised here). Two keys: exact binomial test; more: the
    chi-square test. A count on a key whose expected share is 0 makes the expectation impossible (p = 0)."""
    keys = sorted(set(observed) | set(expected_shares))
    total_share = sum(max(0.0, expected_shares.get(key, 0.0)) for key in keys)
    trials = sum(observed.get(key, 0) for key in keys)
    if trials == 0 or total_share <= 0.0:
        return FitTest("none", None, None, None)
    shares = {key: max(0.0, expected_shares.get(key, 0.0)) / total_share for key in keys}
    if any(shares[key] == 0.0 and observed.get(key, 0) > 0 for key in keys):
        return FitTest("impossible", None, None, 0.0)
    live = [key for key in keys if shares[key] > 0.0]
    if len(live) <= 1:
        return FitTest("none", None, None, 1.0)
    if len(live) == 2:
        first = live[0]
        p_value = binomial_two_sided(observed.get(first, 0), trials, shares[first])
        return FitTest("binomial (exact, two-sided)", None, 1, p_value)
    statistic = 0.0
    for key in live:
        expected = trials * shares[key]
        statistic += (observed.get(key, 0) - expected) ** 2 / expected
    dof = len(live) - 1
    return FitTest("chi-square", statistic, dof, chi_square_sf(statistic, dof))


# --- sequential test -----------------------------------------------------------------------------------------------


class Decision(StrEnum):
    CONTINUE = "continue"
    CONSISTENT = "consistent"  # every candidate's share is within the tolerance of its expected share
    INCONSISTENT = "inconsistent"  # some candidate's share is off by at least the tolerance


@dataclass
class _BinarySprt:
    """Wald's SPRT of one candidate's share: H0 p = p0 against H1 p = p1 (one direction)."""

    p0: float
    p1: float
    llr: float = 0.0

    def add(self, hit: bool) -> None:
        if hit:
            self.llr += _log_ratio(self.p1, self.p0)
        else:
            self.llr += _log_ratio(1.0 - self.p1, 1.0 - self.p0)


def _log_ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0.0:
        return math.inf if numerator > 0.0 else 0.0
    if numerator <= 0.0:
        return -math.inf
    return math.log(numerator / denominator)


class SplitSprt:
    """Sequential test of an A/B split for `--until-decided`.

    For each candidate, two one-sided SPRTs test p = p0 against p = p0 ± tolerance (clamped to [0, 1]). The split is
    consistent once every test accepts H0, inconsistent as soon as one accepts its H1. The error rates α and β are
    split over the tests (Bonferroni), so the whole decision keeps them.
    """

    def __init__(
        self, expected_shares: Mapping[str, float], tolerance: float = 0.05, alpha: float = 0.05, beta: float = 0.05
    ) -> None:
        total = sum(max(0.0, share) for share in expected_shares.values())
        if total <= 0.0:
            raise ValueError("expected shares must add up to more than 0")
        if not 0.0 < tolerance < 1.0:
            raise ValueError("tolerance must be in (0, 1)")
        self.shares = {key: max(0.0, share) / total for key, share in expected_shares.items()}
        self.tolerance = tolerance
        tests: dict[str, list[_BinarySprt]] = {}
        for key, p0 in self.shares.items():
            alternatives = [p for p in (p0 + tolerance, p0 - tolerance) if 0.0 <= p <= 1.0]
            tests[key] = [_BinarySprt(p0, p1) for p1 in alternatives]
        count = max(1, sum(len(items) for items in tests.values()))
        self._tests = tests
        self.upper = math.log((1.0 - beta / count) / (alpha / count))
        self.lower = math.log((beta / count) / (1.0 - alpha / count))
        self.observations = 0
        self.decision = Decision.CONTINUE

    def add(self, key: str) -> Decision:
        """Record one observation (the candidate that answered) and return the decision so far."""
        if self.decision is not Decision.CONTINUE:
            return self.decision
        self.observations += 1
        if key not in self._tests:
            self.decision = Decision.INCONSISTENT  # traffic reached something the split does not have
            return self.decision
        for candidate, tests in self._tests.items():
            for test in tests:
                test.add(candidate == key)
        if any(test.llr >= self.upper for tests in self._tests.values() for test in tests):
            self.decision = Decision.INCONSISTENT
        elif all(test.llr <= self.lower for tests in self._tests.values() for test in tests):
            self.decision = Decision.CONSISTENT
        return self.decision
