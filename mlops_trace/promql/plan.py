"""Which queries answer the service-level checks, given the metrics a Prometheus holds: the best family first.

Each check reads results by purpose (the file stem under `prometheus/`):

| purpose            | check | preference                                                                   |
|--------------------|-------|------------------------------------------------------------------------------|
| `latency_p95`      | MT401 | Envoy per model cluster (ms) > agent per server (s) > MLServer REST per pod (s) |
| `latency_requests` | MT401 | the `_count` of the same histogram, to ignore groups with too few requests    |
| `success_requests` | MT402 | Envoy listener `seldon_http` (sees no-route 404s) > Envoy per cluster > agent > MLServer |
| `success_failures` | MT402 | the 4xx/5xx (or non-OK) part of the same counter                              |
| `split_requests`   | MT403 | Envoy per model cluster > agent per model > MLServer per model                |

MLServer's `model_infer_request_duration` is a Summary without quantiles: it gives a mean, never a P95, so it is not
used for MT401 (the skip reason says so when it is all there is).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mlops_trace.promql import families as m
from mlops_trace.promql.families import Family
from mlops_trace.promql.builders import (
    Matcher,
    eq,
    histogram_quantile,
    increase_sum,
    not_regex,
    regex,
)

P95 = 0.95


class Purpose(StrEnum):
    LATENCY_P95 = "latency_p95"
    LATENCY_REQUESTS = "latency_requests"
    SUCCESS_REQUESTS = "success_requests"
    SUCCESS_FAILURES = "success_failures"
    SPLIT_REQUESTS = "split_requests"


PRESENT = "metrics_present"  # the probe's own file

PURPOSES_OF_CHECK: dict[str, tuple[Purpose, ...]] = {
    "MT401": (Purpose.LATENCY_P95, Purpose.LATENCY_REQUESTS),
    "MT402": (Purpose.SUCCESS_REQUESTS, Purpose.SUCCESS_FAILURES),
    "MT403": (Purpose.SPLIT_REQUESTS,),
}


@dataclass(frozen=True)
class PlannedQuery:
    purpose: Purpose
    promql: str
    family: Family
    metric: str  # the metric that decided the choice (it must be present)


@dataclass(frozen=True)
class Plan:
    queries: tuple[PlannedQuery, ...]
    present: frozenset[str]
    unanswered: dict[str, str] = field(default_factory=dict)  # check id -> why no query could be chosen

    def for_check(self, check_id: str) -> list[PlannedQuery]:
        wanted = PURPOSES_OF_CHECK.get(check_id, ())
        return [q for q in self.queries if q.purpose in wanted]

    def describe(self) -> list[str]:
        """One line per check: the family and metric it will use, or why none."""
        lines: list[str] = []
        for check_id in PURPOSES_OF_CHECK:
            chosen = self.for_check(check_id)
            if chosen:
                first = chosen[0]
                lines.append(f"{check_id} uses {m.FAMILY_WORDS[first.family]} ({first.metric})")
            else:
                lines.append(f"{check_id}: {self.unanswered.get(check_id, 'no usable metric')}")
        return lines


# --- the candidates, best first ----------------------------------------------------------------------------------

_MODEL_CLUSTERS = (regex("envoy_cluster_name", m.MODEL_CLUSTER_REGEX),)
_SELDON_LISTENER = (eq("envoy_http_conn_manager_prefix", m.SELDON_LISTENER_PREFIX),)
_INFER_PATHS = (regex("path", ".*/infer"),)
_FAILED_CLASS = regex("envoy_response_code_class", "4|5")


@dataclass(frozen=True)
class LatencySource:
    family: Family
    bucket: str
    count: str
    by: tuple[str, ...]
    matchers: tuple[Matcher, ...]


LATENCY_SOURCES: tuple[LatencySource, ...] = (
    LatencySource(Family.ENVOY_CLUSTER, m.ENVOY_RQ_TIME_BUCKET, m.ENVOY_RQ_TIME_COUNT, ("namespace", "envoy_cluster_name"),
             _MODEL_CLUSTERS),
    LatencySource(Family.AGENT, m.AGENT_API_BUCKET, m.AGENT_API_COUNT, ("namespace", "server"), ()),
    LatencySource(Family.MLSERVER, m.MLSERVER_REST_BUCKET, m.MLSERVER_REST_COUNT, ("namespace", "pod"), _INFER_PATHS),
)


@dataclass(frozen=True)
class CountedSource:
    """A request counter and the matchers that pick its failures out of it."""

    family: Family
    probe: str  # the name that must be present
    total: str | tuple[str, ...]
    failures: str
    by: tuple[str, ...]
    matchers: tuple[Matcher, ...]
    failure_matchers: tuple[Matcher, ...]


SUCCESS_SOURCES: tuple[CountedSource, ...] = (
    CountedSource(Family.ENVOY_LISTENER, m.ENVOY_DOWNSTREAM_XX, m.ENVOY_DOWNSTREAM_XX, m.ENVOY_DOWNSTREAM_XX,
             ("namespace",), _SELDON_LISTENER, (_FAILED_CLASS,)),
    CountedSource(Family.ENVOY_CLUSTER, m.ENVOY_RQ_XX, m.ENVOY_RQ_XX, m.ENVOY_RQ_XX, ("namespace", "envoy_cluster_name"),
             _MODEL_CLUSTERS, (_FAILED_CLASS,)),
    CountedSource(Family.AGENT, m.AGENT_INFER_TOTAL, m.AGENT_INFER_TOTAL, m.AGENT_INFER_TOTAL, ("namespace", "model"), (),
             (not_regex("code", "2..|OK"),)),
    CountedSource(Family.MLSERVER, m.MLSERVER_SUCCESS, (m.MLSERVER_SUCCESS, m.MLSERVER_FAILURE), m.MLSERVER_FAILURE,
             ("namespace", "model"), (), ()),
)


@dataclass(frozen=True)
class SplitSource:
    family: Family
    metric: str | tuple[str, ...]
    probe: str
    by: tuple[str, ...]
    matchers: tuple[Matcher, ...]


SPLIT_SOURCES: tuple[SplitSource, ...] = (
    SplitSource(Family.ENVOY_CLUSTER, m.ENVOY_RQ_TOTAL, m.ENVOY_RQ_TOTAL, ("namespace", "envoy_cluster_name"),
           _MODEL_CLUSTERS),
    SplitSource(Family.AGENT, m.AGENT_INFER_TOTAL, m.AGENT_INFER_TOTAL, ("namespace", "model"), ()),
    SplitSource(Family.MLSERVER, (m.MLSERVER_SUCCESS, m.MLSERVER_FAILURE), m.MLSERVER_SUCCESS, ("namespace", "model"), ()),
)


# --- builders shared with the alert rules --------------------------------------------------------------------------


def latency_p95_query(source: LatencySource, window: str, extra: Sequence[Matcher] = (), quantile: float = P95) -> str:
    return histogram_quantile(quantile, source.bucket, source.by, (*source.matchers, *extra), window)


def latency_count_query(source: LatencySource, window: str, extra: Sequence[Matcher] = ()) -> str:
    return increase_sum(source.count, source.by, (*source.matchers, *extra), window)


def success_total_query(source: CountedSource, window: str, extra: Sequence[Matcher] = ()) -> str:
    return increase_sum(source.total, source.by, (*source.matchers, *extra), window)


def success_failure_query(source: CountedSource, window: str, extra: Sequence[Matcher] = ()) -> str:
    return increase_sum(source.failures, source.by, (*source.matchers, *source.failure_matchers, *extra), window)


def split_query(source: SplitSource, window: str, extra: Sequence[Matcher] = ()) -> str:
    return increase_sum(source.metric, source.by, (*source.matchers, *extra), window)


# --- the plan ------------------------------------------------------------------------------------------------------


def plan_queries(present: Iterable[str], window: str) -> Plan:
    """The queries to run for MT401–MT403 given the metric names the probe found (best family per check)."""
    names = frozenset(present)
    queries: list[PlannedQuery] = []
    unanswered: dict[str, str] = {}

    latency = next((s for s in LATENCY_SOURCES if s.bucket in names), None)
    if latency is not None:
        queries.append(PlannedQuery(Purpose.LATENCY_P95, latency_p95_query(latency, window), latency.family,
                                    latency.bucket))
        queries.append(PlannedQuery(Purpose.LATENCY_REQUESTS, latency_count_query(latency, window), latency.family,
                                    latency.bucket))
    else:
        wanted = ", ".join(s.bucket for s in LATENCY_SOURCES)
        reason = f"no latency histogram ({wanted})"
        if m.MLSERVER_DURATION_COUNT in names:
            reason += "; MLServer's model_infer_request_duration is a Summary without quantiles (a mean, not a P95)"
        unanswered["MT401"] = reason

    success = next((s for s in SUCCESS_SOURCES if s.probe in names), None)
    if success is not None:
        queries.append(PlannedQuery(Purpose.SUCCESS_REQUESTS, success_total_query(success, window), success.family,
                                    success.probe))
        queries.append(PlannedQuery(Purpose.SUCCESS_FAILURES, success_failure_query(success, window),
                                    success.family, success.probe))
    else:
        unanswered["MT402"] = "no request counter (" + ", ".join(s.probe for s in SUCCESS_SOURCES) + ")"

    split = next((s for s in SPLIT_SOURCES if s.probe in names), None)
    if split is not None:
        queries.append(PlannedQuery(Purpose.SPLIT_REQUESTS, split_query(split, window), split.family, split.probe))
    else:
        unanswered["MT403"] = "no per-model request counter (" + ", ".join(s.probe for s in SPLIT_SOURCES) + ")"
    return Plan(tuple(queries), names, unanswered)
