"""`mlops-trace alerts`: the PrometheusRule, its `spec` accepted by `promtool check rules`, and the alerts firing (and
not firing) on synthetic series under `promtool test rules`.

promtool ships with Debian's `prometheus` package (`apt-get install -y prometheus`, done by the README test
command's setup); these tests are skipped, with that reason, only where it is truly absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlops_trace.alerts import AlertSettings, MetricSource, build_rule, parse_labels, render_rule
from mlops_trace.cli import app
from mlops_trace.errors import UsageError
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.kube import KubeObject
from tests.fixture_walk import FIXTURES

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus: apt-get install -y prometheus)"
)
STALE = FIXTURES / "checks" / "MT403" / "stale-weights"  # Experiment recs-ab (recs-als 80, recs-two-tower 20)
NS = "media-recs"


def _experiments(bundle: Path) -> list[KubeObject]:
    with open_bundle(bundle) as snap:
        return snap.objects_of("Experiment")


def _rule(**kwargs: Any) -> dict[str, Any]:
    settings = AlertSettings(namespace=NS, **kwargs)
    return build_rule(settings, _experiments(STALE))


def _rule_file(tmp_path: Path, rule: dict[str, Any]) -> Path:
    """The `spec` of the PrometheusRule as a plain rule file (what the Prometheus operator hands Prometheus)."""
    text = render_rule(rule, "yaml")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": yaml.safe_load(text)["spec"]["groups"]}), encoding="utf-8")
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_rule_object_shape() -> None:
    rule = _rule(labels={"release": "prom"}, runbook_base="https://runbooks.example.org/mlops/")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["metadata"] == {"name": f"mlops-trace-{NS}", "namespace": NS,
                                "labels": {"app.kubernetes.io/managed-by": "mlops-trace", "release": "prom"}}
    latency_group, split_group = rule["spec"]["groups"]
    (latency,) = latency_group["rules"]
    assert latency["alert"] == "HighMLInferenceLatency" and latency["for"] == "5m"
    assert latency["expr"].endswith("> 50") and f'namespace="{NS}"' in latency["expr"]
    assert latency["annotations"]["runbook_url"] == "https://runbooks.example.org/mlops/high-latency.md"
    split = split_group["rules"]
    assert [r["labels"]["candidate"] for r in split] == ["recs-als", "recs-two-tower"]
    assert [r["labels"]["target_share"] for r in split] == ["0.8", "0.2"]
    assert all(r["alert"] == "ABTestTrafficImbalance" and r["labels"]["experiment"] == "recs-ab" for r in split)
    assert "- 0.8\n) > 0.1" in split[0]["expr"] and ">= 200" in split[0]["expr"]
    assert split[0]["annotations"]["runbook_url"].endswith("/traffic-not-splitting.md")


def test_seconds_metrics_get_the_threshold_in_seconds() -> None:
    latency = _rule(source=MetricSource.AGENT, max_p95_ms=250)["spec"]["groups"][0]["rules"][0]
    assert "seldon_model_infer_api_seconds_bucket" in latency["expr"] and latency["expr"].endswith("> 0.25")


def test_bad_settings_are_usage_errors() -> None:
    for kwargs in ({"duration": "soon"}, {"split_tolerance": 1.5}, {"max_p95_ms": 0}, {"window": "5"}):
        with pytest.raises(UsageError):
            AlertSettings(namespace=NS, **kwargs)
    with pytest.raises(UsageError):
        parse_labels(["release"])


@needs_promtool
@pytest.mark.parametrize("source", list(MetricSource))
def test_promtool_accepts_the_rules(tmp_path: Path, source: MetricSource) -> None:
    result = _promtool("check", "rules", str(_rule_file(tmp_path, _rule(source=source))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


@needs_promtool
def test_the_alerts_fire_on_a_skewed_split_and_a_slow_model_and_stay_quiet_otherwise(tmp_path: Path) -> None:
    rules = _rule_file(tmp_path, _rule())
    cluster = 'envoy_cluster_upstream_rq_{}{{namespace="{}", envoy_cluster_name="{}"}}'

    def series(suffix: str, name: str, values: str, le: str | None = None, ns: str = NS) -> dict[str, str]:
        text = cluster.format(suffix, ns, name)
        if le is not None:
            text = text[:-1] + f', le="{le}"}}'
        return {"series": text, "values": values}

    split_series = [  # 50/50 against 80/20: 60 requests a minute each
        series("total", "recs-als_4_http", "0+60x30"),
        series("total", "recs-two-tower_1_http", "0+60x30"),
    ]
    balanced = [  # 80/20 in another namespace: right split, different Experiment scope
        series("total", "recs-als_4_http", "0+80x30", ns="other"),
        series("total", "recs-two-tower_1_http", "0+20x30", ns="other"),
    ]
    slow = [  # every request of recs-two-tower between 50 and 100 ms: P95 = 97.5 ms
        series("time_bucket", "recs-two-tower_1_http", "0+0x30", le="50"),
        series("time_bucket", "recs-two-tower_1_http", "0+60x30", le="100"),
        series("time_bucket", "recs-two-tower_1_http", "0+60x30", le="+Inf"),
        series("time_bucket", "recs-als_4_http", "0+60x30", le="50"),
        series("time_bucket", "recs-als_4_http", "0+60x30", le="100"),
        series("time_bucket", "recs-als_4_http", "0+60x30", le="+Inf"),
    ]
    split_rules = {r["labels"]["candidate"]: r for r in _rule()["spec"]["groups"][1]["rules"]}

    def split_alert(candidate: str, target: str) -> dict[str, Any]:
        # Labels are what Alertmanager routes on: written out, not copied from the rule under test.
        labels = {"severity": "warning", "mlops_trace_check": "MT403", "experiment": "recs-ab",
                  "candidate": candidate, "target_share": target}
        annotations = dict(split_rules[candidate]["annotations"])
        annotations["description"] = annotations["description"].replace("{{ $value | humanizePercentage }}", "30%")
        assert annotations["summary"] == f"A/B test recs-ab: {candidate} is off its {float(target):.1%} target share"
        return {"exp_labels": labels, "exp_annotations": annotations}

    latency_rule = _rule()["spec"]["groups"][0]["rules"][0]
    latency_annotations = dict(latency_rule["annotations"])
    latency_annotations["description"] = (
        latency_annotations["description"]
        .replace("{{ $labels.envoy_cluster_name }}", "recs-two-tower_1_http")
        .replace("{{ $value | humanize }}", "97.5")
    )
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": split_series + balanced + slow,
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "ABTestTrafficImbalance", "exp_alerts": []},  # not yet 5m
                    {"eval_time": "15m", "alertname": "ABTestTrafficImbalance",
                     "exp_alerts": [split_alert("recs-als", "0.8"), split_alert("recs-two-tower", "0.2")]},
                    {"eval_time": "15m", "alertname": "HighMLInferenceLatency", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "mlops_trace_check": "MT401", "namespace": NS,
                                       "envoy_cluster_name": "recs-two-tower_1_http"},
                        "exp_annotations": latency_annotations,
                    }]},
                ],
            },
            {
                "interval": "1m",
                "input_series": [series("total", "recs-als_4_http", "0+80x30"),
                                 series("total", "recs-two-tower_1_http", "0+20x30")],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": "ABTestTrafficImbalance", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [series("total", "recs-als_4_http", "0+1x30"),  # 50/50 but 2 requests a minute
                                 series("total", "recs-two-tower_1_http", "0+1x30")],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": "ABTestTrafficImbalance", "exp_alerts": []},
                ],
            },
        ],
    }
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_cli_writes_a_rule_promtool_accepts(tmp_path: Path) -> None:
    out = tmp_path / "rule.yaml"
    result = CliRunner().invoke(app, ["alerts", "-n", NS, "--bundle", str(STALE), "-f", str(out),
                                      "--max-p95", "80", "--label", "release=kube-prometheus-stack"])
    assert result.exit_code == 0, result.output
    rule = yaml.safe_load(out.read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = _promtool("check", "rules", str(plain))
    assert check.returncode == 0, check.stdout + check.stderr


def test_cli_without_experiments_warns_and_bad_input_exits_2() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["alerts", "-n", "elsewhere", "--bundle", str(STALE), "-o", "json"])
    assert result.exit_code == 0
    assert "only HighMLInferenceLatency" in result.stderr
    assert [g["name"] for g in yaml.safe_load(result.stdout)["spec"]["groups"]] == ["mlops-trace.elsewhere.latency"]
    assert runner.invoke(app, ["alerts", "-n", NS, "--bundle", "/nonexistent"]).exit_code == 2
    assert runner.invoke(app, ["alerts", "-n", NS, "--bundle", str(STALE), "--metrics", "istio"]).exit_code == 2
