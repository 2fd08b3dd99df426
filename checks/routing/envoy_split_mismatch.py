"""MT303 envoy-split-mismatch: the weighted clusters Envoy uses for an Experiment do not give each candidate the
share of traffic the Experiment asks for (stale weights, clusters appended instead of replaced, a candidate missing
or an extra one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.objectives import WEIGHT_TOLERANCE_PP
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    candidate_of_cluster,
    experiment_route_name,
    pipeline_route_name,
    serving_route_configs,
)
from mlops_trace.analysis.seldon import experiment_candidates, iter_weighted_candidates
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.parsers.envoy_config import EnvoyConfig, Route
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import EnvoySource, Snapshot

CHECK = make_check(
    id="MT303",
    slug="envoy-split-mismatch",
    title="Envoy's traffic split for an Experiment differs from its weights",
    severity=Severity.WARNING,
    requires=("kube:Experiment", "envoy:config_dump"),
    reads=(),
    playbook="traffic-not-splitting",
    fix="Recreate the Experiment (delete, then apply) so the scheduler rebuilds its routes; restart an Envoy pod that "
    "keeps old clusters; if a fresh snapshot is still wrong, look at the scheduler (thrash, a second scheduler).",
    explained_by=("MT101", "MT102"),
)

TOLERANCE_PP = WEIGHT_TOLERANCE_PP  # percentage points


@dataclass(frozen=True)
class _Split:
    """What one Envoy route does with traffic: weight per candidate (versions summed) and per cluster."""

    route: Route
    by_target: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_target.values())

    def share(self, target: str) -> float:
        return 100.0 * self.by_target.get(target, 0) / self.total if self.total else 0.0


class _SplitRoutes:
    """The routes that split first requests for each `seldon-model` value (sticky routes pin one cluster: left out),
    indexed once per Envoy config: scanning every route of a 10,000-model dump for each Experiment is quadratic."""

    def __init__(self) -> None:
        self._by_config: dict[int, dict[str | None, list[Route]]] = {}

    def get(self, config: EnvoyConfig, value: str) -> list[Route]:
        index = self._by_config.get(id(config))
        if index is None:
            index = defaultdict(list)
            for name in serving_route_configs(config):
                for route in config.routes(name):
                    if route.header_contains(STICKY_HEADER) is None and route.clusters:
                        index[route.header_exact(SELDON_MODEL)].append(route)
            self._by_config[id(config)] = index
        return index.get(value, [])


def _split(route: Route, pipelines: bool) -> _Split:
    by_target: dict[str, int] = defaultdict(int)
    for cluster in route.clusters:
        by_target[candidate_of_cluster(cluster, pipelines)] += cluster.weight
    return _Split(route, dict(by_target))


def _expected_shares(exp: KubeObject) -> dict[str, float]:
    """Share (%) per candidate; empty when no weight is positive, or one is not a valid weight (MT304 reports both:
    the split the Experiment asks for is then unknown)."""
    weights: dict[str, int] = defaultdict(int)
    for cand in experiment_candidates(exp):
        if cand.weight is None:
            return {}
        weights[cand.name] += cand.weight
    total = sum(weights.values())
    return {name: 100.0 * weight / total for name, weight in weights.items()} if total else {}


def _problems(expected: dict[str, float], split: _Split) -> list[str]:
    if split.total <= 0:
        return ["its cluster weights add up to 0"]
    problems: list[str] = []
    for target in sorted(set(expected) | set(split.by_target)):
        want, got = expected.get(target), split.share(target)
        if want is None:
            if split.by_target[target] > 0:
                problems.append(f"{target} gets {got:.1f}% but is not a candidate")
        elif target not in split.by_target:
            if want > 0:
                problems.append(f"candidate {target} ({want:.1f}%) has no cluster")
        elif abs(got - want) > TOLERANCE_PP:
            problems.append(f"{target} gets {got:.1f}% instead of {want:.1f}%")
    return problems


def _clusters_text(route: Route) -> str:
    return ", ".join(f"{c.cluster}={c.weight}" for c in route.clusters)


def _shares_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.1f}%" for name, share in sorted(shares.items()))


def run(snap: Snapshot) -> Iterator[Finding]:
    namespaces = sorted({env.namespace for env in snap.envoy_configs()})
    experiments = [exp for ns in namespaces for exp in snap.objects_of("Experiment", ns)]
    if not experiments:
        raise SkipCheck("no Experiment in the namespace(s) with an Envoy config_dump (" + ", ".join(namespaces) + ")")
    judged = 0
    invalid: list[str] = []
    findings: list[Finding] = []
    split_routes = _SplitRoutes()
    for exp in sorted(experiments, key=lambda e: (e.namespace or "", e.name)):
        expected = _expected_shares(exp)
        if not expected:
            if any(cand.weight is None for cand in experiment_candidates(exp)):
                invalid.append(exp.ref)
            continue  # no positive weight, or one that is no weight: MT304 reports either
        envoys = [(env, env.config) for env in snap.envoy_configs(exp.namespace) if env.config is not None]
        for value in _route_values(exp, envoys, split_routes):
            bad: list[tuple[EnvoySource, _Split, list[str]]] = []
            for env, config in envoys:
                for route in split_routes.get(config, value):
                    judged += 1
                    split = _split(route, _is_pipeline(exp))
                    problems = _problems(expected, split)
                    if problems:
                        bad.append((env, split, problems))
            if bad:
                findings.append(_finding(exp, value, expected, bad))
    if not judged:
        unknown = f" ({', '.join(invalid)}: a weight is not a valid one, MT304 reports it)" if invalid else ""
        raise SkipCheck(
            "Envoy has no route for any Experiment (or its default model) with positive weights; MT302 reports "
            f"missing routes{unknown}"
        )
    yield from findings


def _is_pipeline(exp: KubeObject) -> bool:
    return str(exp.spec.get("resourceType") or "model").lower() == "pipeline"


def _route_values(
    exp: KubeObject, envoys: list[tuple[EnvoySource, EnvoyConfig]], split_routes: _SplitRoutes
) -> list[str]:
    """`<exp>.experiment`, and the default's own route once Envoy shows the Experiment active (its route exists):
    Seldon then rebuilds the default's route from the candidates."""
    own = experiment_route_name(exp.name)
    values = [own]
    default = exp.spec.get("default")
    if isinstance(default, str) and default and any(split_routes.get(config, own) for _, config in envoys):
        values.append(pipeline_route_name(default) if _is_pipeline(exp) else default)
    return values


def _finding(
    exp: KubeObject, value: str, expected: dict[str, float], bad: list[tuple[EnvoySource, _Split, list[str]]]
) -> Finding:
    weights = ", ".join(f"{name}={weight}" for name, weight in iter_weighted_candidates(exp))
    evidence = [Evidence(exp.field_where(".spec.candidates"), f"candidates {weights} -> {_shares_text(expected)}")]
    for env, split, problems in bad:
        route = split.route
        actual = {target: split.share(target) for target in split.by_target}
        evidence.append(
            Evidence(
                f"{env.config_display} route_config {route.route_config} route {route.name or f'#{route.index}'}",
                f"clusters {_clusters_text(route)} -> {_shares_text(actual)}; " + "; ".join(problems),
            )
        )
    _, first_split, first_problems = bad[0]
    routed = {target: first_split.share(target) for target in first_split.by_target}
    return CHECK.finding(
        namespace=exp.namespace,
        object=exp.ref,
        message=f"Envoy splits `seldon-model: {value}` as {_shares_text(routed)}, but Experiment {exp.name} asks for "
        f"{_shares_text(expected)} ({'; '.join(first_problems)})",
        evidence=evidence,
    )
