"""The serving metrics mlops-trace knows, by the component that exports them (SELDON-FACTS.md §1.5, §7, §8).

Names are as Prometheus stores them after a scrape: a histogram is found by its `_bucket` series, a counter by its
`_total` series. Envoy measures request times in milliseconds; the Seldon agent and MLServer in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    """Where a metric is measured on the request path; the order of preference differs per check."""

    ENVOY_CLUSTER = "envoy-cluster"  # Seldon Envoy -> agent, per model cluster `<model>_<version>_http|grpc`
    ENVOY_LISTENER = "envoy-listener"  # Seldon Envoy's `seldon_http` listener: every request, routed or not
    AGENT = "seldon-agent"  # the agent's reverse proxy in front of MLServer
    MLSERVER = "mlserver"  # MLServer itself


FAMILY_WORDS: dict[Family, str] = {
    Family.ENVOY_CLUSTER: "Seldon Envoy, per model cluster",
    Family.ENVOY_LISTENER: "Seldon Envoy, listener seldon_http",
    Family.AGENT: "Seldon agent",
    Family.MLSERVER: "MLServer",
}

# Seldon Envoy (admin /stats/prometheus, scraped on :9003)
ENVOY_RQ_TIME_BUCKET = "envoy_cluster_upstream_rq_time_bucket"  # histogram, ms
ENVOY_RQ_TIME_COUNT = "envoy_cluster_upstream_rq_time_count"
ENVOY_RQ_TOTAL = "envoy_cluster_upstream_rq_total"  # counter, label envoy_cluster_name
ENVOY_RQ_XX = "envoy_cluster_upstream_rq_xx"  # counter, labels envoy_cluster_name, envoy_response_code_class
ENVOY_DOWNSTREAM_XX = "envoy_http_downstream_rq_xx"  # counter, envoy_http_conn_manager_prefix, code class
# Seldon agent (:9006/metrics)
AGENT_API_BUCKET = "seldon_model_infer_api_seconds_bucket"  # histogram, s; server, server_replica, method, code
AGENT_API_COUNT = "seldon_model_infer_api_seconds_count"
AGENT_INFER_TOTAL = "seldon_model_infer_total"  # counter; model, model_internal, method_type, code
# MLServer (:8082/metrics)
MLSERVER_REST_BUCKET = "rest_server_request_duration_seconds_bucket"  # histogram, s; method, path, status_code
MLSERVER_REST_COUNT = "rest_server_request_duration_seconds_count"
MLSERVER_DURATION_COUNT = "model_infer_request_duration_count"  # summary without quantiles: a mean only
MLSERVER_DURATION_SUM = "model_infer_request_duration_sum"
MLSERVER_SUCCESS = "model_infer_request_success_total"  # counter; model (`<m>_<v>`), version
MLSERVER_FAILURE = "model_infer_request_failure_total"

SELDON_LISTENER_PREFIX = "seldon_http"
MODEL_CLUSTER_REGEX = ".+_[0-9]+_(http|grpc)"  # Envoy clusters of Seldon models; leaves mirror and pipeline ones out


@dataclass(frozen=True)
class KnownMetric:
    name: str
    family: Family
    unit: str  # "ms", "s" or "" (a count)


KNOWN: tuple[KnownMetric, ...] = (
    KnownMetric(ENVOY_RQ_TIME_BUCKET, Family.ENVOY_CLUSTER, "ms"),
    KnownMetric(ENVOY_RQ_TIME_COUNT, Family.ENVOY_CLUSTER, ""),
    KnownMetric(ENVOY_RQ_TOTAL, Family.ENVOY_CLUSTER, ""),
    KnownMetric(ENVOY_RQ_XX, Family.ENVOY_CLUSTER, ""),
    KnownMetric(ENVOY_DOWNSTREAM_XX, Family.ENVOY_LISTENER, ""),
    KnownMetric(AGENT_API_BUCKET, Family.AGENT, "s"),
    KnownMetric(AGENT_API_COUNT, Family.AGENT, ""),
    KnownMetric(AGENT_INFER_TOTAL, Family.AGENT, ""),
    KnownMetric(MLSERVER_REST_BUCKET, Family.MLSERVER, "s"),
    KnownMetric(MLSERVER_REST_COUNT, Family.MLSERVER, ""),
    KnownMetric(MLSERVER_DURATION_COUNT, Family.MLSERVER, ""),
    KnownMetric(MLSERVER_DURATION_SUM, Family.MLSERVER, "s"),
    KnownMetric(MLSERVER_SUCCESS, Family.MLSERVER, ""),
    KnownMetric(MLSERVER_FAILURE, Family.MLSERVER, ""),
)
BY_NAME: dict[str, KnownMetric] = {metric.name: metric for metric in KNOWN}

# The names the probe asks for: one per family and purpose is enough to know what can be queried.
PROBED: tuple[str, ...] = (
    ENVOY_RQ_TIME_BUCKET,
    ENVOY_RQ_TOTAL,
    ENVOY_RQ_XX,
    ENVOY_DOWNSTREAM_XX,
    AGENT_API_BUCKET,
    AGENT_INFER_TOTAL,
    MLSERVER_REST_BUCKET,
    MLSERVER_DURATION_COUNT,
    MLSERVER_SUCCESS,
    MLSERVER_FAILURE,
)

_NAME_IN_QUERY = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metrics_in_query(promql: str) -> list[KnownMetric]:
    """The known metrics a PromQL text names, in order of appearance (also inside `__name__=~"a|b"` matchers)."""
    found: list[KnownMetric] = []
    for token in _NAME_IN_QUERY.findall(promql):
        metric = BY_NAME.get(token)
        if metric is not None and metric not in found:
            found.append(metric)
    return found


def family_of_query(promql: str) -> Family | None:
    """The family of the first known metric a query names; None when it names none we know."""
    found = metrics_in_query(promql)
    return found[0].family if found else None


def unit_of_query(promql: str) -> str:
    """The time unit of a latency query: that of the first known metric with one (`ms` for Envoy, else `s`)."""
    for metric in metrics_in_query(promql):
        if metric.unit:
            return metric.unit
    return ""


def describe_families(names: Iterable[str]) -> str:
    """`Seldon Envoy, per model cluster (envoy_cluster_upstream_rq_time_bucket, ...); MLServer (...)` for found names."""
    by_family: dict[Family, list[str]] = {}
    for name in sorted(set(names)):
        metric = BY_NAME.get(name)
        if metric is not None:
            by_family.setdefault(metric.family, []).append(name)
    if not by_family:
        return "none of the known serving metrics"
    return "; ".join(f"{FAMILY_WORDS[family]} ({', '.join(found)})" for family, found in by_family.items())
