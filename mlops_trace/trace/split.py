"""The A/B split of a `request --count` run, three ways, for the user to read: the Experiment's weights, the weights
of the Envoy route that served the requests, and the counts of `x-seldon-route` in the answers — with a confidence
interval per candidate and a goodness-of-fit test of the observations against what Envoy was told to do. Whether the
split is a problem is the checks' to say, from the recorded requests (split imbalance) and Envoy's config (stale
weights), with the same objectives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops_trace.analysis.objectives import DEFAULT_SPLIT_ALPHA, WEIGHT_TOLERANCE_PP
from mlops_trace.analysis.routing import candidate_of_cluster, candidate_of_route
from mlops_trace.analysis.seldon import iter_weighted_candidates
from mlops_trace.analysis.stats import goodness_of_fit, wilson_interval
from mlops_trace.parsers.envoy_config import Route
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.trace.record import SplitReport


@dataclass(frozen=True)
class Weights:
    shares: Mapping[str, float]  # candidate → share in [0, 1]
    source: str


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(max(0.0, value) for value in weights.values())
    if total <= 0:
        return {key: 0.0 for key in weights}
    return {key: round(max(0.0, value) / total, 6) for key, value in weights.items()}


def experiment_weights(experiment: KubeObject) -> Weights:
    weights = {name: float(weight) for name, weight in iter_weighted_candidates(experiment)}
    return Weights(normalise(weights), experiment.field_where(".spec.candidates"))


def route_weights(route: Route, where: str) -> Weights:
    weights: dict[str, float] = {}
    for cluster in route.clusters:
        candidate = candidate_of_cluster(cluster)
        weights[candidate] = weights.get(candidate, 0.0) + cluster.weight
    return Weights(normalise(weights), f"{where} route {route.name}")


def _matches(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    keys = set(a) | set(b)
    return all(abs(a.get(key, 0.0) - b.get(key, 0.0)) * 100.0 <= WEIGHT_TOLERANCE_PP for key in keys)


def build_report(
    routes: Mapping[str, int],
    expected: Weights | None,
    envoy: Weights | None,
    sequential: str | None = None,
    *,
    alpha: float = DEFAULT_SPLIT_ALPHA,
) -> SplitReport:
    observed: dict[str, int] = {}
    for route, count in routes.items():
        key = candidate_of_route(route)
        observed[key] = observed.get(key, 0) + count
    trials = sum(observed.values())
    keys = sorted(set(observed) | set(expected.shares if expected else {}) | set(envoy.shares if envoy else {}))
    intervals = {key: tuple(round(v, 4) for v in wilson_interval(observed.get(key, 0), trials)) for key in keys}
    reference = envoy if envoy is not None else expected
    reference_name = "envoy" if envoy is not None else ("experiment" if expected is not None else "none")
    test = goodness_of_fit(observed, reference.shares) if reference is not None else None
    p_value = round(test.p_value, 6) if test is not None and test.p_value is not None else None
    matches = _matches(envoy.shares, expected.shares) if envoy is not None and expected is not None else None
    return SplitReport(
        expected=dict(expected.shares) if expected else {},
        envoy=dict(envoy.shares) if envoy else {},
        observed={key: observed.get(key, 0) for key in keys},
        routes=dict(routes),
        intervals={key: (value[0], value[1]) for key, value in intervals.items()},
        reference=reference_name,
        method=test.method if test is not None else "none",
        p_value=p_value,
        consistent=None if p_value is None else p_value >= alpha,
        envoy_matches_experiment=matches,
        sequential=sequential,
        expected_source=expected.source if expected else "",
        envoy_source=envoy.source if envoy else "",
    )
