"""PromQL builders and the query plan: exact texts, escaping, windows, and the choice of metrics per check."""

from __future__ import annotations

import pytest

from mlops_trace.errors import UsageError
from mlops_trace.promql import families as m
from mlops_trace.promql.families import Family, family_of_query, unit_of_query
from mlops_trace.promql.plan import Purpose, plan_queries
from mlops_trace.promql.builders import (
    check_window,
    eq,
    histogram_quantile,
    increase_sum,
    literal_regex,
    probe,
    quote,
    regex,
    selector,
    window_seconds,
)


def test_selector_quotes_values_and_joins_metric_names() -> None:
    assert selector("up") == "up"
    assert selector("up", [eq("job", 'a"b\\c')]) == 'up{job="a\\"b\\\\c"}'
    assert selector(["a_total", "b_total"], [eq("namespace", "ns")]) == '{__name__=~"a_total|b_total", namespace="ns"}'


def test_literal_regex_escapes_dots_and_other_metacharacters() -> None:
    assert literal_regex(["fraud.v2", "a+b"]) == "fraud\\.v2|a\\+b"
    # inside a PromQL string the backslash itself is escaped once more
    assert quote(literal_regex(["fraud.v2"])) == '"fraud\\\\.v2"'


def test_histogram_quantile_groups_by_le_and_the_given_labels() -> None:
    text = histogram_quantile(0.95, m.ENVOY_RQ_TIME_BUCKET, ["namespace", "envoy_cluster_name"],
                              [regex("envoy_cluster_name", m.MODEL_CLUSTER_REGEX)], "5m")
    assert text == (
        "histogram_quantile(0.95, sum by (namespace, envoy_cluster_name, le) "
        '(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~".+_[0-9]+_(http|grpc)"}[5m])))'
    )


def test_increase_sum_without_grouping() -> None:
    assert increase_sum("x_total", [], [], "10m") == "sum (increase(x_total[10m]))"
    assert increase_sum("x_total", ["model"], [eq("a", "b")], "1h") == 'sum by (model) (increase(x_total{a="b"}[1h]))'


def test_probe_counts_series_by_name() -> None:
    assert probe(["a", "b"]) == 'count by (__name__) ({__name__=~"a|b"})'


@pytest.mark.parametrize("window,seconds", [("5m", 300), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("500ms", 0.5)])
def test_windows(window: str, seconds: float) -> None:
    assert check_window(window) == window
    assert window_seconds(window) == pytest.approx(seconds)


@pytest.mark.parametrize("window", ["", "5", "5 m", "m5", "5min", "0m", "-5m", "5m1h"])
def test_bad_windows_are_usage_errors(window: str) -> None:
    with pytest.raises(UsageError):
        check_window(window)


def test_family_and_unit_come_from_the_metric_named_in_the_query() -> None:
    assert family_of_query("histogram_quantile(0.95, rate(envoy_cluster_upstream_rq_time_bucket[5m]))") is \
        Family.ENVOY_CLUSTER
    assert unit_of_query("histogram_quantile(0.95, rate(envoy_cluster_upstream_rq_time_bucket[5m]))") == "ms"
    assert unit_of_query("histogram_quantile(0.9, rate(seldon_model_infer_api_seconds_bucket[1m]))") == "s"
    assert family_of_query('sum(increase({__name__=~"model_infer_request_success_total"}[5m]))') is Family.MLSERVER
    assert family_of_query("sum(rate(my_own_metric[5m]))") is None


def _chosen(present: set[str]) -> dict[Purpose, tuple[Family, str]]:
    return {q.purpose: (q.family, q.metric) for q in plan_queries(present, "5m").queries}


def test_plan_prefers_envoy_when_everything_is_there() -> None:
    chosen = _chosen(set(m.PROBED))
    assert chosen[Purpose.LATENCY_P95] == (Family.ENVOY_CLUSTER, "envoy_cluster_upstream_rq_time_bucket")
    assert chosen[Purpose.SUCCESS_REQUESTS] == (Family.ENVOY_LISTENER, "envoy_http_downstream_rq_xx")
    assert chosen[Purpose.SPLIT_REQUESTS] == (Family.ENVOY_CLUSTER, "envoy_cluster_upstream_rq_total")


def test_plan_falls_back_to_the_agent_then_mlserver() -> None:
    agent = _chosen(
        {"seldon_model_infer_api_seconds_bucket", "seldon_model_infer_total", "model_infer_request_success_total"}
    )
    assert agent[Purpose.LATENCY_P95] == (Family.AGENT, "seldon_model_infer_api_seconds_bucket")
    assert agent[Purpose.SUCCESS_REQUESTS] == (Family.AGENT, "seldon_model_infer_total")
    assert agent[Purpose.SPLIT_REQUESTS] == (Family.AGENT, "seldon_model_infer_total")
    mlserver = _chosen({"rest_server_request_duration_seconds_bucket", "model_infer_request_success_total"})
    assert {family for family, _ in mlserver.values()} == {Family.MLSERVER}
    assert len(mlserver) == 5


def test_plan_queries_are_exact() -> None:
    plan = plan_queries({m.MLSERVER_SUCCESS, m.MLSERVER_FAILURE}, "10m")
    texts = {q.purpose: q.promql for q in plan.queries}
    assert texts[Purpose.SUCCESS_REQUESTS] == (
        'sum by (namespace, model) (increase({__name__=~"model_infer_request_success_total|'
        'model_infer_request_failure_total"}[10m]))'
    )
    assert texts[Purpose.SUCCESS_FAILURES] == (
        "sum by (namespace, model) (increase(model_infer_request_failure_total[10m]))"
    )
    listener = plan_queries({m.ENVOY_DOWNSTREAM_XX}, "5m").queries
    assert [q.promql for q in listener] == [
        'sum by (namespace) (increase(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="seldon_http"}[5m]))',
        (
            'sum by (namespace) (increase(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="seldon_http", '
            'envoy_response_code_class=~"4|5"}[5m]))'
        ),
    ]


def test_a_summary_alone_gives_no_latency_and_says_why() -> None:
    plan = plan_queries({m.MLSERVER_DURATION_COUNT}, "5m")
    assert not plan.for_check("MT401")
    assert "Summary without quantiles" in plan.unanswered["MT401"]
    assert plan.describe()[0].startswith("MT401: no latency histogram")
