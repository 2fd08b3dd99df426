"""MT403 split-imbalance: the requests to an Experiment split between its candidates differently from what they
should, by more than chance (goodness-of-fit test) and by more than a tolerance. Counted two ways: by Prometheus per
candidate over the window (against the Experiment's weights), and by the `x-seldon-route` answers of recorded
requests (against the weights Envoy was given, when its config_dump shows them: a gap between Envoy's weights and the
Experiment's is MT303's)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.objectives import DEFAULT_MIN_SPLIT_REQUESTS, DEFAULT_SPLIT_ALPHA, DEFAULT_SPLIT_TOLERANCE
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    candidate_of_cluster,
    candidate_of_route,
    experiment_of_route_value,
    experiment_route_name,
    request_succeeded,
    split_routes,
)
from mlops_trace.analysis.seldon import experiment_candidates, iter_weighted_candidates
from mlops_trace.analysis.series import defined, in_scope, need, prometheus_of, subject_of, window_words
from mlops_trace.analysis.stats import goodness_of_fit
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.promql.families import FAMILY_WORDS
from mlops_trace.promql.plan import Purpose
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.prometheus import QueryResult, Sample
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT403",
    slug="split-imbalance",
    title="Observed A/B split differs from the Experiment's weights",
    severity=Severity.WARNING,
    requires=("kube:Experiment", "prometheus|requests"),
    reads=("envoy:config_dump", "kube:Model"),
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


@dataclass(frozen=True)
class _Objectives:
    alpha: float
    tolerance: float
    min_requests: int


def run(
    snap: Snapshot,
    *,
    split_alpha: float = DEFAULT_SPLIT_ALPHA,
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE,
    min_split_requests: int = DEFAULT_MIN_SPLIT_REQUESTS,
) -> Iterator[Finding]:
    objectives = _Objectives(split_alpha, split_tolerance, min_split_requests)
    findings: list[Finding] = []
    not_judged: list[str] = []
    judged = 0
    if snap.has("prometheus"):
        try:
            judged, findings, not_judged = _from_prometheus(snap, objectives)
        except SkipCheck as skip:
            if not snap.requests:
                raise
            not_judged.append(str(skip))
    if snap.requests:
        recorded_judged, recorded = _from_requests(snap, objectives, not_judged)
        judged += recorded_judged
        findings += recorded
    if not judged:
        reason = "; ".join(not_judged[:3]) if not_judged else "no Experiment in the examined namespaces"
        raise SkipCheck(f"no split to test ({reason})")
    yield from findings


def _from_prometheus(snap: Snapshot, objectives: _Objectives) -> tuple[int, list[Finding], list[str]]:
    """(judged, findings, why not judged) from the requests Prometheus counted per candidate."""
    split_alpha, split_tolerance, min_split_requests = objectives.alpha, objectives.tolerance, objectives.min_requests
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
    return judged, findings, not_judged


# --- recorded requests -------------------------------------------------------------------------------------------


def _recorded_experiment(snap: Snapshot, record: RequestRecord) -> KubeObject | None:
    """The Experiment a recorded request was sent to: by its `<exp>.experiment` header, else by a URL name that is
    an Experiment and no Model (an ingress or the client's header set it on the way)."""
    name = experiment_of_route_value(record.headers.get(SELDON_MODEL))
    if name is None and SELDON_MODEL not in record.headers and "/v2/models/" in record.path:
        name = record.path.split("/v2/models/", 1)[1].split("/", 1)[0]
    if not name:
        return None
    if record.namespace:
        namespaces = [record.namespace]
    else:
        namespaces = sorted({exp.namespace or "" for exp in snap.objects_of("Experiment") if exp.name == name})
    if len(namespaces) != 1:
        return None
    exp = snap.get("Experiment", namespaces[0], name)
    if exp is None or snap.get("Model", namespaces[0], name) is not None:
        return None
    return exp


def _envoy_shares(snap: Snapshot, exp: KubeObject) -> tuple[dict[str, float], str] | None:
    """What Envoy was told to do with the Experiment's first requests: candidate shares of its split route."""
    for env in snap.envoy_configs(exp.namespace):
        if env.config is None:
            continue
        for route in split_routes(env.config, experiment_route_name(exp.name)):
            if len(route.clusters) < 2:
                continue
            weights: dict[str, float] = {}
            for cluster in route.clusters:
                candidate = candidate_of_cluster(cluster)
                weights[candidate] = weights.get(candidate, 0.0) + cluster.weight
            total = sum(weights.values())
            if total > 0:
                shares = {name: weight / total for name, weight in weights.items()}
                return shares, f"{env.config_display} route {route.name}"
    return None


def _from_requests(snap: Snapshot, objectives: _Objectives, not_judged: list[str]) -> tuple[int, list[Finding]]:
    """(judged, findings) from the `x-seldon-route` answers of recorded requests, per Experiment."""
    counts: dict[tuple[str | None, str], Counter[str]] = {}
    samples: dict[tuple[str | None, str], list[str]] = {}
    experiments: dict[tuple[str | None, str], KubeObject] = {}
    for record in snap.requests:
        route = record.response_headers.get(STICKY_HEADER)
        if not route or not request_succeeded(record):
            continue
        exp = _recorded_experiment(snap, record)
        if exp is None:
            continue
        key = (exp.namespace, exp.name)
        experiments[key] = exp
        counts.setdefault(key, Counter())[candidate_of_route(route)] += 1
        if len(samples.setdefault(key, [])) < 3:
            samples[key].append(record.display)
    judged = 0
    findings: list[Finding] = []
    for key in sorted(counts, key=lambda k: (k[0] or "", k[1])):
        exp, observed = experiments[key], counts[key]
        envoy = _envoy_shares(snap, exp)
        if envoy is not None:
            reference, where, against = envoy[0], envoy[1], "Envoy's weights"
        else:
            reference, where, against = _expected(exp), exp.field_where(".spec.candidates"), "its weights"
        total = sum(observed.values())
        if len([share for share in reference.values() if share > 0]) < 2:
            not_judged.append(f"{exp.ref}: fewer than two candidates with a positive weight")
            continue
        if total < objectives.min_requests:
            not_judged.append(
                f"{exp.ref}: {total} recorded answers from its candidates, fewer than {objectives.min_requests}"
            )
            continue
        judged += 1
        test = goodness_of_fit(dict(observed), reference)
        shares = {name: observed.get(name, 0) / total for name in set(reference) | set(observed)}
        gap_name, gap = max(
            ((name, abs(shares.get(name, 0.0) - reference.get(name, 0.0))) for name in shares), key=lambda x: x[1]
        )
        if test.p_value is None or test.p_value >= objectives.alpha or gap <= objectives.tolerance:
            continue
        counted = ", ".join(f"{name} ×{count}" for name, count in sorted(observed.items()))
        evidence = [
            Evidence(where, f"weights -> {_shares_text(reference)}"),
            Evidence("x-seldon-route of the recorded answers", f"{counted} (e.g. {', '.join(samples[key])})"),
            Evidence(
                "test",
                f"{test.method}: p = {test.p_value:.3g} < alpha {objectives.alpha:g}; largest gap "
                f"{100.0 * gap:.1f} points ({gap_name}) > tolerance {100.0 * objectives.tolerance:g}",
            ),
        ]
        findings.append(
            CHECK.finding(
                namespace=exp.namespace,
                object=exp.ref,
                message=f"{total} recorded requests to Experiment {exp.name} were answered {_shares_text(shares)}, "
                f"not {_shares_text(reference)} as {against} say ({test.method}, p = {test.p_value:.3g})",
                evidence=evidence,
            )
        )
    return judged, findings
