"""The canary split of a `request --isvc --count` run, three ways, with the statistics of the A/B split
(`trace.split`): what the InferenceService asks (`canaryTrafficPercent` on the latest revision, the rest on the last
rolled-out one: KServe's ksvc traffic, KSERVE-FACTS §1.1), what the Knative Route's status says the ingress was
programmed with (`.status.traffic`; net-istio's VirtualService weights when no Route was collected), and which
revision served each request (the upstream cluster `outbound|80||<revision>.<ns>.svc.cluster.local` of the gateway's
pass to the predictor). Whether the split is a problem is the checks' to say.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops_trace.analysis.objectives import DEFAULT_SPLIT_ALPHA, WEIGHT_TOLERANCE_PP
from mlops_trace.analysis.stats import goodness_of_fit, wilson_interval
from mlops_trace.snapshot.kube import as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.kserve.logs import GatewayLine, RequestLines
from mlops_trace.trace.kserve.path import KPath
from mlops_trace.trace.record import SplitLabels, SplitReport
from mlops_trace.trace.split import Weights, normalise

# The split table's columns for a canary: revisions, the InferenceService's ask, the Route's status.
CANARY_LABELS = SplitLabels(candidate="revision", expected="isvc spec", envoy="route", title="canary split")


def spec_weights(path: KPath) -> Weights | None:
    """The split the InferenceService asks for, when it sets `canaryTrafficPercent`."""
    obj = path.isvc.obj
    if obj is None:
        return None
    percent = as_mapping(obj.spec.get("predictor")).get("canaryTrafficPercent")
    if not isinstance(percent, (int, float)):
        return None
    status = as_mapping(as_mapping(obj.status.get("components")).get("predictor"))
    latest = status.get("latestCreatedRevision") or status.get("latestReadyRevision")
    previous = status.get("previousRolledoutRevision") or status.get("latestRolledoutRevision")
    if not latest:
        return None
    shares = {str(latest): float(percent)}
    if previous and previous != latest:
        shares[str(previous)] = 100.0 - float(percent)
    return Weights(normalise(shares), obj.field_where(".spec.predictor.canaryTrafficPercent"))


def route_weights(snap: Snapshot | None, path: KPath) -> Weights | None:
    """What the predictor's Knative Route says it programmed (`.status.traffic`), else the VirtualService weights."""
    if snap is not None and path.isvc.namespace:
        route = snap.get("Route", path.isvc.namespace, f"{path.isvc.name}-predictor")
        if route is not None:
            shares: dict[str, float] = {}
            for item in as_list(route.status.get("traffic")):
                entry = as_mapping(item)
                name, percent = entry.get("revisionName"), entry.get("percent")
                if name and isinstance(percent, (int, float)):
                    shares[str(name)] = shares.get(str(name), 0.0) + float(percent)
            if shares:
                return Weights(normalise(shares), route.field_where(".status.traffic"))
    if path.revisions:
        return Weights(dict(path.revisions), path.revisions_where)
    return None


def served_revision(lines: RequestLines, transformer: bool) -> str | None:
    """The predictor revision a request reached: the revision of the predictor queue-proxy that logged it (found by
    its trace id), else the gateway pass whose upstream cluster is a predictor revision's."""
    queue = lines.queue_of("predictor")
    if queue is not None and queue.revision:
        return queue.revision
    return cluster_revision(lines.gateway, transformer)


def cluster_revision(lines: list[GatewayLine], transformer: bool) -> str | None:
    """The revision of the gateway pass whose upstream cluster is a revision's (the predictor's, with a transformer)."""
    for line in lines:
        cluster = line.record.upstream_cluster or ""
        authority = (line.record.authority or "").lower()
        if "knative-local-gateway" in cluster or not cluster.startswith("outbound|"):
            continue
        if transformer and "-predictor." not in authority:
            continue
        host = cluster.rsplit("|", 1)[-1]
        return host.split(".", 1)[0] or None
    return None


def _matches(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    keys = set(a) | set(b)
    return all(abs(a.get(key, 0.0) - b.get(key, 0.0)) * 100.0 <= WEIGHT_TOLERANCE_PP for key in keys)


def build(
    observed: Mapping[str, int],
    spec: Weights | None,
    route: Weights | None,
    *,
    alpha: float = DEFAULT_SPLIT_ALPHA,
    routes: Mapping[str, int] | None = None,
) -> SplitReport:
    """The split report: `expected` is the InferenceService's, `envoy` the Route's (the JSON keys of the A/B split)."""
    trials = sum(observed.values())
    keys = sorted(set(observed) | set(spec.shares if spec else {}) | set(route.shares if route else {}))
    intervals = {key: tuple(round(v, 4) for v in wilson_interval(observed.get(key, 0), trials)) for key in keys}
    reference = route if route is not None else spec
    test = goodness_of_fit(observed, reference.shares) if reference is not None and trials else None
    p_value = round(test.p_value, 6) if test is not None and test.p_value is not None else None
    return SplitReport(
        expected=dict(spec.shares) if spec else {},
        envoy=dict(route.shares) if route else {},
        observed={key: observed.get(key, 0) for key in keys},
        routes=dict(routes or observed),
        intervals={key: (value[0], value[1]) for key, value in intervals.items()},
        reference="route" if route is not None else ("spec" if spec is not None else "none"),
        method=test.method if test is not None else "none",
        p_value=p_value,
        consistent=None if p_value is None else p_value >= alpha,
        envoy_matches_experiment=_matches(route.shares, spec.shares) if route and spec else None,
        expected_source=f"InferenceService canaryTrafficPercent ({spec.source})" if spec else "",
        envoy_source=f"Knative Route traffic ({route.source})" if route else "",
        labels=CANARY_LABELS,
    )
