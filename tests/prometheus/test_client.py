"""The Prometheus client, collector and `doctor --prometheus` against a fake Prometheus HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.cli import app
from mlops_trace.errors import ClusterError, InputError, UsageError
from mlops_trace.findings import CheckStatus
from mlops_trace.prometheus.attach import query_into, wait_for_first_scrapes
from mlops_trace.prometheus.client import PrometheusClient, PrometheusConfig
from mlops_trace.prometheus.collect import collect_queries, wait_for_scrape
from mlops_trace.promql.plan import Purpose
from mlops_trace.snapshot.prometheus import load_prometheus_dir
from mlops_trace.snapshot.snapshot import Snapshot
from tests.prometheus.fake_prometheus import FakePrometheus, serving, vector

NS = "loan-scoring"


# The metric names as Seldon's Envoy exports them, written out: the fake must not follow a renamed constant.
ENVOY_RQ_TIME_BUCKET = "envoy_cluster_upstream_rq_time_bucket"
ENVOY_RQ_TIME_COUNT = "envoy_cluster_upstream_rq_time_count"
ENVOY_RQ_TOTAL = "envoy_cluster_upstream_rq_total"
ENVOY_DOWNSTREAM_XX = "envoy_http_downstream_rq_xx"


def _cluster_answers(promql: str) -> Any:
    """A Prometheus holding Seldon Envoy's metrics for two model clusters, the challenger slow."""
    if promql.startswith("count by (__name__)"):
        return vector(*(({"__name__": name}, 4) for name in (ENVOY_RQ_TIME_BUCKET, ENVOY_RQ_TOTAL,
                                                              ENVOY_DOWNSTREAM_XX)))
    base = {"namespace": NS, "envoy_cluster_name": "loan-base_2_http"}
    new = {"namespace": NS, "envoy_cluster_name": "loan-new_1_http"}
    if promql.startswith("histogram_quantile") and ENVOY_RQ_TIME_BUCKET in promql:
        return vector((base, 12.5), (new, 140.0))
    if ENVOY_RQ_TIME_COUNT in promql or ENVOY_RQ_TOTAL in promql:
        return vector((base, 700), (new, 300))
    if "envoy_response_code_class" in promql:
        return vector(({"namespace": NS}, 3))
    if ENVOY_DOWNSTREAM_XX in promql:
        return vector(({"namespace": NS}, 1000))
    if promql.startswith("min(timestamp("):
        return [1767225600.0, "1767225600"]
    raise KeyError(promql)


def test_bearer_token_is_sent_and_a_refusal_names_the_credentials() -> None:
    with serving(FakePrometheus(fallback=_cluster_answers, token="s3cret")) as fake:
        with PrometheusClient(PrometheusConfig(fake.url, token="s3cret")) as client:
            assert client.query("min(timestamp(up))") == [1767225600.0, "1767225600"]
        assert fake.seen[-1]["headers"]["authorization"] == "Bearer s3cret"
        with PrometheusClient(PrometheusConfig(fake.url, token="wrong")) as client:
            with pytest.raises(ClusterError, match="refused the credentials \\(HTTP 401\\)") as caught:
                client.query("up")
        assert "wrong" not in str(caught.value)


def test_basic_auth_is_sent() -> None:
    with serving(FakePrometheus(fallback=_cluster_answers, basic=("ops", "pw"))) as fake:
        with PrometheusClient(PrometheusConfig(fake.url, username="ops", password="pw")) as client:
            assert client.query("min(timestamp(up))")
        assert fake.seen[-1]["headers"]["authorization"].startswith("Basic ")


def test_errors_are_one_line_cluster_errors() -> None:
    with serving(FakePrometheus()) as fake:
        with PrometheusClient(PrometheusConfig(fake.url)) as client:
            with pytest.raises(ClusterError, match="rejected the query 'nope': unknown query nope"):
                client.query("nope")
        url = fake.url
    with PrometheusClient(PrometheusConfig(url, timeout=2)) as client:
        with pytest.raises(ClusterError, match="cannot reach Prometheus at .*: Connection refused"):
            client.query("up")
    with serving(FakePrometheus(status=503)) as fake:
        with PrometheusClient(PrometheusConfig(fake.url)) as client:
            with pytest.raises(ClusterError, match="answered HTTP 503"):
                client.query("up")
        assert len(fake.seen) == 2  # one retry on a gateway error


def test_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        PrometheusConfig("prometheus:9090")
    with pytest.raises(UsageError):
        PrometheusConfig("http://p", token="t", username="u", password="p")
    with pytest.raises(UsageError):
        PrometheusConfig("http://p", username="u")
    with pytest.raises(InputError):
        PrometheusConfig("https://p", cacert=tmp_path / "missing.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert PrometheusConfig("https://p", cacert=ca).verify() == str(ca)
    assert PrometheusConfig("https://p", insecure=True).verify() is False
    assert PrometheusConfig("https://p").verify() is True


def test_collect_writes_the_bundle_format_and_the_checks_read_it(tmp_path: Path) -> None:
    with serving(FakePrometheus(fallback=_cluster_answers)) as fake:
        with PrometheusClient(PrometheusConfig(fake.url)) as client:
            collection = collect_queries(client, "10m", tmp_path, fake.url)
    assert set(collection.files) == {
        "prometheus/metrics_present.json", "prometheus/latency_p95.json", "prometheus/latency_requests.json",
        "prometheus/success_requests.json", "prometheus/success_failures.json", "prometheus/split_requests.json",
    }
    document = json.loads((tmp_path / "prometheus" / "latency_p95.json").read_text())
    assert document["window"] == "10m" and document["family"] == "envoy-cluster"
    assert document["query"].startswith("histogram_quantile(0.95") and "[10m]" in document["query"]
    assert any("MT401 uses Seldon Envoy, per model cluster" in line for line in collection.notes())
    data = load_prometheus_dir(tmp_path)
    assert data is not None and data.source == fake.url
    snap = Snapshot(source="test")
    snap.prometheus = data
    report = run_checks(snap, select(["MT401", "MT402"]))
    statuses = {c.id: c.status for c in report.checks}
    assert statuses == {"MT401": CheckStatus.FAIL, "MT402": CheckStatus.PASS}
    (finding,) = report.findings
    assert finding.object == "Model/loan-new" and finding.namespace == NS
    assert "140.0 ms over the last 10m" in finding.message
    assert any(e.where == "prometheus/latency_p95.json" and "histogram_quantile" in e.what for e in finding.evidence)


def test_query_into_waits_for_a_scrape_after_the_run() -> None:
    times = iter([100.0, 100.0, 205.0])

    def answers(promql: str) -> Any:
        if promql.startswith("min(timestamp("):
            return [1.0, str(next(times))]
        return _cluster_answers(promql)

    with serving(FakePrometheus(fallback=answers)) as fake:
        with PrometheusClient(PrometheusConfig(fake.url)) as client:
            snap = Snapshot(source="test")
            collection = query_into(snap, client, "5m", fresh_after=200.0, wait_s=5.0, poll_s=0.01)
    assert not collection.warnings
    assert snap.prometheus is not None and Purpose.SPLIT_REQUESTS in snap.prometheus.results
    waited = [s["query"] for s in fake.seen if s["query"].startswith("min(timestamp(")]
    assert len(waited) == 3 and ENVOY_RQ_TOTAL in waited[0]


def test_wait_for_scrape_gives_up_at_its_deadline() -> None:
    clock = iter([0.0, 1.0, 2.0, 3.0])
    sleeps: list[float] = []

    class Stale:
        def query(self, promql: str) -> Any:
            return [1.0, "50"]

    assert not wait_for_scrape(Stale(), ["x_total"], 100.0, 2.0, clock=lambda: next(clock), sleep=sleeps.append)
    assert sleeps == [0.5]


def test_first_scrapes_from_the_targets_api() -> None:
    never = "0001-01-01T00:00:00Z"
    fake = FakePrometheus(fallback=_cluster_answers,
                          targets=[{"lastScrape": "2026-01-01T00:00:00Z"}, {"lastScrape": never}])
    with serving(fake):
        with PrometheusClient(PrometheusConfig(fake.url)) as client:
            assert client.all_targets_scraped() is False
        fake.targets = [{"lastScrape": "2026-01-01T00:00:00Z"}]
        assert wait_for_first_scrapes(PrometheusConfig(fake.url), 0.0)
    with serving(FakePrometheus(fallback=_cluster_answers)) as no_targets_api:
        with PrometheusClient(PrometheusConfig(no_targets_api.url)) as client:
            assert client.all_targets_scraped() is None
        assert wait_for_first_scrapes(PrometheusConfig(no_targets_api.url), 0.0)  # falls back to the probe


def test_doctor_with_prometheus_and_thresholds(tmp_path: Path) -> None:
    runner = CliRunner()
    bundle = tmp_path / "bundle"
    (bundle / "kube").mkdir(parents=True)
    (bundle / "kube" / "models.yaml").write_text(
        "apiVersion: mlops.seldon.io/v1alpha1\nkind: Model\nmetadata: {name: loan-base, namespace: loan-scoring}\n"
        "spec: {storageUri: 's3://m/base'}\n"
    )
    with serving(FakePrometheus(fallback=_cluster_answers, token="t0k")) as fake:
        env = {"MLOPS_TRACE_PROMETHEUS_TOKEN": "t0k"}
        args = ["doctor", "--bundle", str(bundle), "--only", "MT4", "--prometheus", fake.url, "-o", "json"]
        slow = runner.invoke(app, args, env=env)
        relaxed = runner.invoke(app, [*args, "--max-p95", "200", "--min-success", "0.95"], env=env)
        strict = runner.invoke(app, [*args, "--max-p95", "200", "--min-success", "0.999"], env=env)
    assert slow.exit_code == 1, slow.output
    assert [f["id"] for f in json.loads(slow.stdout)["findings"]] == ["MT401"]
    assert relaxed.exit_code == 0, relaxed.output
    assert [f["id"] for f in json.loads(strict.stdout)["findings"]] == ["MT402"]
    assert "MT401 uses Seldon Envoy, per model cluster" in slow.stderr


def test_doctor_with_an_unreachable_prometheus_exits_2(tmp_path: Path) -> None:
    with serving(FakePrometheus()) as fake:
        url = fake.url
    result = CliRunner().invoke(app, ["doctor", "--bundle", "fixtures/checks/MT403/healthy", "--prometheus", url])
    assert result.exit_code == 2
    assert "cannot reach Prometheus" in result.stderr
    bad = CliRunner().invoke(app, ["doctor", "--bundle", "fixtures/checks/MT403/healthy", "--prometheus-token", "x"])
    assert bad.exit_code == 2 and "need --prometheus URL" in bad.stderr
