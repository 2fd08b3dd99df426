"""The alerts on `mlops-trace exporter`'s series (`alerts.exporter_rules`): accepted by `promtool check rules`, and
firing (or not) on synthetic series under `promtool test rules`: a critical finding open for `finding_for`, the
exporter's scrape failing or gone, no successful run for `stale_after` (or none at all). promtool ships with Debian's
`prometheus` package (installed by the README's test command)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlops_trace.alerts import (
    AlertSettings,
    ExporterAlerts,
    build_exporter_rule,
    build_rule,
    exporter_rules,
    render_rule,
)
from mlops_trace.cli import app
from mlops_trace.errors import UsageError

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus: apt-get install -y prometheus)"
)
JOB = 'job="mlops-trace-exporter",instance="10.0.0.9:9807"'
FINDING = ('mlops_trace_finding{cluster="east",check="MT204",slug="ingress-path-not-rewritten",severity="critical",'
           f'namespace="ingress-nginx",object="Ingress/ml-api",{JOB}}}')
FINDING_LABELS = {"cluster": "east", "check": "MT204", "slug": "ingress-path-not-rewritten",
                  "namespace": "ingress-nginx", "object": "Ingress/ml-api", "severity": "critical"}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def _rule_file(tmp_path: Path, rule: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": yaml.safe_load(render_rule(rule, "yaml"))["spec"]["groups"]}), "utf-8")
    return path


def _run_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    _rule_file(tmp_path, build_exporter_rule(ExporterAlerts(), name="x", namespace="mlops-trace"))
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return _promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_three_alerts_on_the_exporter_series() -> None:
    rules = exporter_rules(ExporterAlerts(job="prom/exporter", finding_for="30m"))
    assert [r["alert"] for r in rules] == ["MlopsTraceCriticalFinding", "MlopsTraceExporterDown",
                                           "MlopsTraceExporterStale"]
    assert rules[0]["for"] == "30m" and 'mlops_trace_finding{severity="critical"}' in rules[0]["expr"]
    assert 'up{job="prom/exporter"} == 0' in rules[1]["expr"]
    assert "mlops_trace_last_successful_run_timestamp_seconds" in rules[2]["expr"]


def test_bad_durations_name_the_flag() -> None:
    with pytest.raises(UsageError, match="--finding-for"):
        ExporterAlerts(finding_for="soon")
    with pytest.raises(UsageError, match="--stale-after"):
        ExporterAlerts(stale_after="0m")


def test_alerts_in_a_namespace_watch_that_namespace_s_findings() -> None:
    rule = build_rule(AlertSettings(namespace="fraud-serving"), [], ExporterAlerts())
    group = rule["spec"]["groups"][-1]
    assert group["name"] == "mlops-trace.fraud-serving.exporter"
    assert 'mlops_trace_finding{severity="critical", namespace="fraud-serving"}' in group["rules"][0]["expr"]


def test_cli_alerts_exporter_job_adds_the_group() -> None:
    bundle = Path(__file__).resolve().parents[2] / "fixtures" / "checks" / "MT403" / "stale-weights"
    result = CliRunner().invoke(app, ["alerts", "-n", "media-recs", "-b", str(bundle), "--exporter-job", "prom/exp",
                                      "--for", "10m"])
    assert result.exit_code == 0, result.output
    groups = yaml.safe_load(result.stdout)["spec"]["groups"]
    exporter = groups[-1]["rules"]
    assert exporter[0]["alert"] == "MlopsTraceCriticalFinding" and exporter[0]["for"] == "10m"
    assert 'up{job="prom/exp"}' in exporter[1]["expr"]


@needs_promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    path = _rule_file(tmp_path, build_exporter_rule(ExporterAlerts(), name="x", namespace="mlops-trace"))
    checked = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 3 rules found" in checked.stdout


@needs_promtool
def test_a_critical_finding_fires_after_15_minutes_and_ends_when_it_clears(tmp_path: Path) -> None:
    annotations = {
        "summary": "mlops-trace MT204 (ingress-path-not-rewritten) open on Ingress/ml-api",
        "description": "Check MT204 has reported Ingress/ml-api in namespace ingress-nginx of cluster east for 15m. "
        "`mlops-trace doctor --only MT204 -n ingress-nginx` shows the evidence.",
        "runbook": "mlops-trace checks explain MT204",
    }
    test = {
        "interval": "1m",
        # open for 30 minutes, then the series ends (the finding cleared)
        "input_series": [{"series": FINDING, "values": "1x30 _x30"},
                         {"series": FINDING.replace('"critical"', '"warning"').replace("east", "west"),
                          "values": "1x60"}],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "MlopsTraceCriticalFinding", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "MlopsTraceCriticalFinding",
             "exp_alerts": [{"exp_labels": FINDING_LABELS, "exp_annotations": annotations}]},
            {"eval_time": "45m", "alertname": "MlopsTraceCriticalFinding", "exp_alerts": []},
        ],
    }
    result = _run_tests(tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_exporter_down_when_its_scrape_fails_or_is_gone(tmp_path: Path) -> None:
    down = {"summary": "mlops-trace exporter down",
            "description": "Prometheus has not scraped the mlops-trace exporter (job mlops-trace-exporter) for 5m: "
            "its findings are not being updated."}
    failing = {
        "interval": "1m",
        "input_series": [{"series": f"up{{{JOB}}}", "values": "1x5 0x20"}],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "MlopsTraceExporterDown", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "MlopsTraceExporterDown", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "job": "mlops-trace-exporter", "instance": "10.0.0.9:9807"},
                 "exp_annotations": down}]},
        ],
    }
    gone = {
        "interval": "1m",
        "input_series": [{"series": 'up{job="something-else"}', "values": "1x20"}],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "MlopsTraceExporterDown", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "job": "mlops-trace-exporter"}, "exp_annotations": down}]},
        ],
    }
    result = _run_tests(tmp_path, [failing, gone])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_exporter_stale_without_a_recent_successful_run(tmp_path: Path) -> None:
    def stale(cluster: str) -> dict[str, Any]:
        return {"exp_labels": {"severity": "warning", "cluster": cluster}, "exp_annotations": {
            "summary": f"mlops-trace exporter has no recent successful run for {cluster}",
            "description": f"The mlops-trace exporter's last successful run on cluster {cluster} is older than 30m (or "
            "none has succeeded yet): its findings are stale. The exporter's log names the run's error."}}

    last = f'mlops_trace_last_successful_run_timestamp_seconds{{cluster="east",{JOB}}}'
    test = {
        "interval": "1m",
        "input_series": [
            # east: the last success at time 0, runs failing since; west: never a successful run; north: healthy
            {"series": last, "values": "0x60"},
            {"series": f'mlops_trace_run_success{{cluster="east",{JOB}}}', "values": "0x60"},
            {"series": f'mlops_trace_run_success{{cluster="west",{JOB}}}', "values": "0x60"},
            {"series": last.replace("east", "north"), "values": "0+60x60"},
            {"series": f'mlops_trace_run_success{{cluster="north",{JOB}}}', "values": "1x60"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "MlopsTraceExporterStale", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "MlopsTraceExporterStale", "exp_alerts": [stale("west")]},
            {"eval_time": "40m", "alertname": "MlopsTraceExporterStale", "exp_alerts": [stale("east"), stale("west")]},
        ],
    }
    result = _run_tests(tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr
