"""Statistics with answers known from tables and from hand computation."""

from __future__ import annotations

import math
import random

import pytest

from mlops_trace.analysis.stats import (
    Decision,
    LatencyHistogram,
    SplitSprt,
    binomial_two_sided,
    chi_square_sf,
    goodness_of_fit,
    median,
    normal_quantile,
    regularized_gamma_q,
    summarize,
    wilson_interval,
)


def test_normal_quantile_matches_tables() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959963985, abs=1e-8)
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-12)
    assert normal_quantile(0.01) == pytest.approx(-2.326347874, abs=1e-8)
    with pytest.raises(ValueError):
        normal_quantile(1.0)


@pytest.mark.parametrize(
    ("statistic", "dof", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (6.634896601021214, 1, 0.01),
        (0.0, 3, 1.0),
        (30.0, 10, 0.000857),
    ],
)
def test_chi_square_tail(statistic: float, dof: int, p: float) -> None:
    assert chi_square_sf(statistic, dof) == pytest.approx(p, rel=2e-3, abs=1e-9)


def test_regularized_gamma_q_closed_form() -> None:
    # Q(1, x) = e^-x, both below and above the series/continued-fraction switch.
    for x in (0.3, 1.9, 7.5):
        assert regularized_gamma_q(1.0, x) == pytest.approx(math.exp(-x), rel=1e-12)


def test_binomial_two_sided_known_values() -> None:
    # 3 successes in 10 fair trials: P(X<=3)+P(X>=7) = 2*176/1024.
    assert binomial_two_sided(3, 10, 0.5) == pytest.approx(352 / 1024)
    assert binomial_two_sided(5, 10, 0.5) == pytest.approx(1.0)
    # 0 successes in 10 with p=0.3: only outcomes as unlikely as 0.7^10 count (k=0 and k>=7).
    expected = 0.7**10 + sum(math.comb(10, k) * 0.3**k * 0.7 ** (10 - k) for k in range(7, 11))
    assert binomial_two_sided(0, 10, 0.3) == pytest.approx(expected)
    assert binomial_two_sided(1, 5, 0.0) == 0.0


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4)
    assert high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)


def test_goodness_of_fit_picks_the_test() -> None:
    exact = goodness_of_fit({"a": 280, "b": 120}, {"a": 70, "b": 30})
    assert exact.method.startswith("binomial")
    assert exact.p_value == pytest.approx(1.0)
    off = goodness_of_fit({"a": 200, "b": 200}, {"a": 0.7, "b": 0.3})
    assert off.p_value is not None and off.p_value < 1e-15
    three = goodness_of_fit({"a": 10, "b": 20, "c": 30}, {"a": 1, "b": 2, "c": 3})
    assert three.method == "chi-square" and three.degrees_of_freedom == 2
    assert three.statistic == pytest.approx(0.0) and three.p_value == pytest.approx(1.0)
    impossible = goodness_of_fit({"a": 5, "z": 1}, {"a": 1.0})
    assert impossible.method == "impossible" and impossible.p_value == 0.0
    assert goodness_of_fit({}, {"a": 1.0}).p_value is None


def test_hdr_percentiles_of_a_known_series() -> None:
    summary = summarize(float(v) for v in range(1, 101))
    assert summary is not None
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.0, rel=1e-3)
    assert summary.p95 == pytest.approx(95.0, rel=1e-3)
    assert summary.p99 == pytest.approx(99.0, rel=1e-3)
    assert summary.minimum == 1.0 and summary.maximum == 100.0 and summary.mean == pytest.approx(50.5)
    assert summarize([]) is None


def test_histogram_clamps_and_keeps_sub_millisecond_values() -> None:
    histogram = LatencyHistogram()
    for value in (0.25, 0.25, 0.5, -0.1):
        histogram.record(value)
    assert histogram.percentile(50) == pytest.approx(0.25, abs=0.001)
    assert histogram.count == 4


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) is None


def _feed(sprt: SplitSprt, pattern: str, repeats: int) -> Decision:
    decision = Decision.CONTINUE
    for _ in range(repeats):
        for key in pattern:
            decision = sprt.add(key)
            if decision is not Decision.CONTINUE:
                return decision
    return decision


def test_sprt_accepts_a_split_that_holds() -> None:
    sprt = SplitSprt({"a": 70, "b": 30}, tolerance=0.1)
    assert _feed(sprt, "aaaaaaabbb", 200) is Decision.CONSISTENT
    assert 50 < sprt.observations < 2000


def test_sprt_rejects_a_split_that_does_not() -> None:
    sprt = SplitSprt({"a": 70, "b": 30}, tolerance=0.1)
    assert _feed(sprt, "ab", 500) is Decision.INCONSISTENT
    assert sprt.observations < 300
    stray = SplitSprt({"a": 1, "b": 1})
    assert stray.add("z") is Decision.INCONSISTENT


def _false_alarms(alpha: float, runs: int) -> int:
    rng = random.Random(20261123)
    alarms = 0
    for _ in range(runs):
        sprt = SplitSprt({"a": 70, "b": 30}, tolerance=0.15, alpha=alpha)
        decision = Decision.CONTINUE
        while decision is Decision.CONTINUE:
            decision = sprt.add("a" if rng.random() < 0.7 else "b")
        alarms += decision is Decision.INCONSISTENT
    return alarms


def test_sprt_false_alarm_rate_stays_within_alpha() -> None:
    # A split that holds is called inconsistent at most α of the time (Wald's bound): 600 seeded runs each.
    assert _false_alarms(0.01, 600) <= 6 + 6  # expectation ≤ 6; the margin is ~2.5 standard deviations
    assert _false_alarms(0.2, 600) > _false_alarms(0.01, 600)  # α is what sets the rate, not a constant


def test_sprt_rejects_traffic_to_a_zero_weight_candidate() -> None:
    sprt = SplitSprt({"a": 100, "b": 0}, tolerance=0.05)
    assert _feed(sprt, "aaaaaaaaab", 50) is Decision.INCONSISTENT
    with pytest.raises(ValueError):
        SplitSprt({"a": 0})
