"""The A/B split report `request --count` prints: observed counts, intervals and the test against Envoy's weights.
Whether a split is a finding is MT303's and MT403's to say (fixtures/checks/MT303, MT403)."""

from __future__ import annotations

from mlops_trace.analysis.routing import candidate_of_route
from mlops_trace.trace.split import Weights, build_report

EXPERIMENT = Weights({"a": 0.7, "b": 0.3}, "kube/experiments.yaml#0 Experiment/ab .spec.candidates")
STALE = Weights({"a": 0.5, "b": 0.5}, "config_dump route ab.experiment_http")


def test_observed_split_consistent_with_envoy() -> None:
    report = build_report({":a_1:": 281, ":b_1:": 119}, EXPERIMENT, EXPERIMENT)
    assert report.observed == {"a": 281, "b": 119}
    assert report.consistent is True and report.p_value is not None and report.p_value > 0.5
    assert report.envoy_matches_experiment is True
    low, high = report.intervals["a"]
    assert low < 281 / 400 < high


def test_stale_envoy_weights_are_the_reference_and_the_observations_follow_them() -> None:
    report = build_report({":a_1:": 204, ":b_1:": 196}, EXPERIMENT, STALE)
    assert report.reference == "envoy" and report.consistent is True
    assert report.envoy_matches_experiment is False


def test_observed_split_off_envoy_weights_is_inconsistent() -> None:
    report = build_report({":a_1:": 200, ":b_1:": 200}, EXPERIMENT, EXPERIMENT)
    assert report.consistent is False and report.p_value is not None and report.p_value < 1e-6


def test_without_envoy_weights_the_experiment_is_the_reference() -> None:
    report = build_report({":a_1:": 70, ":b_1:": 30}, EXPERIMENT, None)
    assert report.reference == "experiment" and report.consistent is True
    assert report.envoy_matches_experiment is None
    assert candidate_of_route(":txn-baseline_12:") == "txn-baseline"
    assert candidate_of_route("odd") == "odd"
