"""MT403 split-imbalance: the requests Prometheus counted per candidate of an Experiment over the window split
differently from the Experiment's weights, by more than chance (goodness-of-fit test) and by more than a tolerance."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.seldon import experiment_candidates, iter_weighted_candidates
from mlops_trace.analysis.objectives import DEFAULT_MIN_SPLIT_REQUESTS, DEFAULT_SPLIT_ALPHA, DEFAULT_SPLIT_TOLERANCE
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.promql.families import FAMILY_WORDS
from mlops_trace.promql.plan import Purpose
from mlops_trace.analysis.series import defined, in_scope, need, prometheus_of, subject_of, window_words
from mlops_trace.snapshot.prometheus import QueryResult, Sample
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.analysis.stats import goodness_of_fit

CHECK = make_check(
    id="MT403",
    slug="split-imbalance",
    title="Observed A/B split differs from the Experiment's weights",
    severity=Severity.WARNING,
    requires=("kube:Experiment", "prometheus"),
    playbook="traffic-not-splitting",
    fix="Compare Envoy's weighted clusters with the Experiment (MT303); look for clients that send x-seldon-route "
    "(sticky) or call a candidate directly, and for one stale Envoy replica.",
)


def _shares_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {100.0 * share:.1f}%" for name, share in sorted(shares.items()))


def _expected(exp: KubeObject) -> dict[str, float]:
    """Share per candidate; empty when a weight is not a valid one (the split asked for is unknown: MT304 names it)."""
    weights: dict[str, float] = {}
    for cand in experiment_candidates(exp):
        if cand.weight is None:
            return {}
        weights[cand.name] = weights.get(cand.name, 0.0) + cand.weight
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()} if total > 0 else {}


def _invalid_weights(exp: KubeObject) -> list[str]:
    return [f"{cand.name} weight {cand.weight_text()}" for cand in experiment_candidates(exp) if cand.weight is None]


def _observed(snap: Snapshot, exp: KubeObject, result: QueryResult) -> tuple[dict[str, float], list[Sample]]:
    """Requests per candidate of `exp` in its namespace (series without a namespace label count too)."""
    candidates = set(_expected(exp))
    counts: dict[str, float] = {}
    used: list[Sample] = []
    for sample in defined(result):
        subject = subject_of(sample, result.family)
        model = subject.model
        if model is None or model not in candidates or not in_scope(snap, subject.namespace):
            continue
        if subject.namespace is not None and subject.namespace != exp.namespace:
            continue
        counts[model] = counts.get(model, 0.0) + max(sample.value, 0.0)
        used.append(sample)
    return counts, used


def run(
    snap: Snapshot,
    *,
    split_alpha: float = DEFAULT_SPLIT_ALPHA,
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE,
    min_split_requests: int = DEFAULT_MIN_SPLIT_REQUESTS,
) -> Iterator[Finding]:
    data = prometheus_of(snap)
    result = need(data, Purpose.SPLIT_REQUESTS, CHECK.id)
    source = FAMILY_WORDS[result.family] if result.family is not None else "an unknown metric"
    not_judged: list[str] = []
    judged = 0
    findings: list[Finding] = []
    experiments = sorted(snap.objects_of("Experiment"), key=lambda e: (e.namespace or "", e.name))
    for exp in experiments:
        if not in_scope(snap, exp.namespace):
            continue
        if str(exp.spec.get("resourceType") or "model").lower() == "pipeline":
            not_judged.append(f"{exp.ref}: a pipeline experiment")
            continue
        invalid = _invalid_weights(exp)
        if invalid:
            not_judged.append(f"{exp.ref}: not a valid weight ({', '.join(invalid)})")
            continue
        expected = _expected(exp)
        if len([share for share in expected.values() if share > 0]) < 2:
            not_judged.append(f"{exp.ref}: fewer than two candidates with a positive weight")
            continue
        raw, used = _observed(snap, exp, result)
        observed = {name: round(count) for name, count in raw.items()}
        total = sum(observed.values())
        if total < min_split_requests:
            not_judged.append(f"{exp.ref}: {total} requests to its candidates, fewer than {min_split_requests}")
            continue
        judged += 1
        test = goodness_of_fit(observed, expected)
        shares = {name: observed.get(name, 0) / total for name in expected}
        gap_name, gap = max(((name, abs(shares[name] - expected[name])) for name in expected), key=lambda x: x[1])
        if test.p_value is None or test.p_value >= split_alpha or gap <= split_tolerance:
            continue
        where = result.display
        counted = ", ".join(f"{name} {count}" for name, count in sorted(observed.items()))
        weights = ", ".join(f"{name}={weight}" for name, weight in iter_weighted_candidates(exp))
        evidence = [
            Evidence(exp.field_where(".spec.candidates"), f"candidates {weights} -> {_shares_text(expected)}"),
            Evidence(where, f"{result.query} -> {counted} ({window_words(result)})"),
        ]
        evidence += [
            Evidence(where, f"{sample.label_text()} = {round(sample.value)}") for sample in used[:6]
        ]
        evidence.append(
            Evidence("test", f"{test.method}: p = {test.p_value:.3g} < alpha {split_alpha:g}; largest gap "
                     f"{100.0 * gap:.1f} points ({gap_name}) > tolerance {100.0 * split_tolerance:g}")
        )
        findings.append(
            CHECK.finding(
                namespace=exp.namespace,
                object=exp.ref,
                message=f"{total} requests to the candidates of Experiment {exp.name} {window_words(result)} split "
                f"{_shares_text(shares)}, not {_shares_text(expected)} as its weights say ({test.method}, "
                f"p = {test.p_value:.3g}; counted at {source})",
                evidence=evidence,
            )
        )
    if not judged:
        reason = "; ".join(not_judged[:3]) if not_judged else "no Experiment in the examined namespaces"
        raise SkipCheck(f"no split to test ({reason})")
    yield from findings
