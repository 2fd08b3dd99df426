"""Golden-file and structural tests of every output format.

Golden files live in tests/render/golden/. After an intended change of output, rewrite them with
`UPDATE_GOLDEN=1 python -m pytest -q tests/render` and review the diff; without the variable a difference fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.analysis.catalog import load_catalog
from mlops_trace.errors import UsageError
from mlops_trace.findings import (
    CheckId,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    InputProblem,
    Report,
    Severity,
)
from mlops_trace.render import FORMATS, render, sarif, sarif_rules

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]

GOLDEN_FILES = {
    "table": "table.txt",
    "json": "report.json",
    "yaml": "report.yaml",
    "junit": "junit.xml",
    "sarif": "report.sarif",
    "markdown": "report.md",
}


def assert_matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    assert path.exists(), f"missing golden file {path}; create it with UPDATE_GOLDEN=1"
    with path.open(encoding="utf-8", newline="") as golden:
        expected = golden.read()
    assert text == expected, f"{name} differs from its golden file; if intended, rerun with UPDATE_GOLDEN=1"


# --- golden files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_matches_its_golden_file(
    rich_report: Report, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SARIF has a rule for every check of the catalog; the golden file keeps the report's own checks, so adding a
    # check to the catalog does not change it (test_sarif_has_the_required_structure holds the whole catalog).
    catalog_sources = sarif_rules.catalog_rule_sources
    ran = {check.id for check in rich_report.checks}
    monkeypatch.setattr(sarif, "catalog_rule_sources", lambda: [s for s in catalog_sources() if s.id in ran])
    assert_matches_golden(GOLDEN_FILES[fmt], _without_check_docs(fmt, render(rich_report, fmt)))


def _without_check_docs(fmt: str, text: str) -> str:
    """SARIF carries every check's doc in its rule; the golden file names the doc instead of copying it, so editing
    a doc does not break it (tests/render/test_consumers.py holds that each rule carries its doc)."""
    if fmt != "sarif":
        return text
    log = json.loads(text)
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        if "help" in rule:
            rule["help"] = {"text": f"<doc of {rule['id']}>", "markdown": f"<doc of {rule['id']}>"}
            rule["fullDescription"] = {"text": f"<summary of the doc of {rule['id']}>"}
    return json.dumps(log, indent=2) + "\n"


def test_colored_table_matches_its_golden_file(rich_report: Report) -> None:
    assert_matches_golden("table-color.txt", render(rich_report, "table", color=True))


def test_clean_report_table_matches_its_golden_file(clean_report: Report) -> None:
    assert_matches_golden("table-clean.txt", render(clean_report, "table"))


def test_verbose_table_matches_its_golden_file(rich_report: Report) -> None:
    assert_matches_golden("table-verbose.txt", render(rich_report, "table", verbose=True))


def test_golden_formats_cover_every_format() -> None:
    assert set(GOLDEN_FILES) == set(FORMATS)


# --- dispatch -----------------------------------------------------------------------------------------------------


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == ("table", "json", "yaml", "junit", "sarif", "markdown")


def test_unknown_format_is_a_usage_error(rich_report: Report) -> None:
    with pytest.raises(UsageError, match="xml"):
        render(rich_report, "xml")


def test_color_and_width_shape_only_the_table(rich_report: Report) -> None:
    narrow = render(rich_report, "table", color=True, width=80)
    assert "\x1b[1;31mCRITICAL" in narrow
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in narrow.splitlines()) <= 80
    assert max(len(line) for line in render(rich_report, "table").splitlines()) > 80, "the default table is wider"
    for fmt in FORMATS:
        if fmt != "table":
            shaped = render(rich_report, fmt, color=True, width=40)
            assert shaped == render(rich_report, fmt), f"{fmt} changed with table options"
            assert "\x1b" not in shaped, fmt


def test_importing_the_package_does_not_import_rich() -> None:
    code = "import sys, mlops_trace.render; assert 'rich' not in sys.modules, 'rich imported eagerly'"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


_RENDER_ALL = (
    "import json, sys; from tests.render.conftest import make_rich_report; from mlops_trace.render import FORMATS, "
    "render; sys.stdout.write(json.dumps({fmt: render(make_rich_report(), fmt) for fmt in FORMATS}))"
)


def test_rendering_is_the_same_in_every_process(rich_report: Report) -> None:
    """Two runs on the same report give the same bytes (CI diffs and SARIF uploads rely on it), whatever the hash
    seed that orders a set or a dict built from one."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        completed = subprocess.run(
            [sys.executable, "-c", _RENDER_ALL], capture_output=True, text=True, check=False, env=env, cwd=REPO
        )
        assert completed.returncode == 0, completed.stderr
        outputs.append(json.loads(completed.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0] == {fmt: render(rich_report, fmt) for fmt in FORMATS}


# --- json and yaml ------------------------------------------------------------------------------------------------


def test_json_is_the_design_object(rich_report: Report) -> None:
    data = json.loads(render(rich_report, "json"))
    assert list(data) == ["schema_version", "source", "findings", "checks", "input_problems"]
    assert data["schema_version"] == 1
    assert data["source"] == "bundles/incident-42.tar.gz"
    assert [finding["id"] for finding in data["findings"]] == ["MT304", "MT101", "MT301", "MT305", "MT107"]
    assert data["findings"][0]["evidence"][0] == {
        "where": "kube/seldon-a/experiments.yaml:7",
        "what": "default: iris-c  # candidates: iris-a | iris-b",
    }
    for finding in data["findings"]:
        assert {
            "id",
            "slug",
            "severity",
            "title",
            "message",
            "namespace",
            "object",
            "evidence",
            "playbook",
            "fix",
            "caused_by",
        } <= set(finding)
        assert finding["caused_by"] == [], "the rich report's checks declare no causes"
    assert {check["status"] for check in data["checks"]} == {"pass", "fail", "skip", "error"}
    assert all(set(check) >= {"id", "status", "reason"} for check in data["checks"])


def test_yaml_is_the_same_document_as_json(rich_report: Report) -> None:
    assert yaml.safe_load(render(rich_report, "yaml")) == json.loads(render(rich_report, "json"))


# --- table --------------------------------------------------------------------------------------------------------


def test_table_without_color_has_no_escape_codes(rich_report: Report) -> None:
    shouting = replace(rich_report.findings[0], message="bad \x1b[31mERR\x1b[0m line")
    report = replace(rich_report, findings=(shouting, *rich_report.findings[1:]))
    for verbose in (False, True):
        text = render(report, "table", verbose=verbose)
        assert "\x1b" not in text
        assert "bad \\x1b[31mERR\\x1b[0m" in text, "a terminal escape from a log must be shown, not executed"
    assert "\\x1b[31mERR" in render(rich_report, "table", verbose=True), "evidence is shown the same way"


def test_table_with_color_colours_severities(rich_report: Report) -> None:
    text = render(rich_report, "table", color=True)
    assert "\x1b[1;31mCRITICAL" in text
    assert "\x1b[33mWARNING" in text
    assert "\x1b[34mINFO" in text
    assert "\x1b[31mERR" not in text


def test_verbose_table_groups_by_namespace_worst_first(rich_report: Report) -> None:
    text = render(rich_report, "table", verbose=True)
    order = [text.index(marker) for marker in ("cluster-wide · 1 finding", "ml-prod · 2 findings", "seldon-a · 2")]
    assert order == sorted(order)
    seldon_a = text[text.index("seldon-a · 2") :]
    assert seldon_a.index("MT101 scheduler-split-brain") < seldon_a.index("MT304 experiment-invalid")
    ml_prod = text[text.index("ml-prod · 2") : text.index("seldon-a · 2")]
    assert ml_prod.index("WARNING") < ml_prod.index("INFO")


def test_verbose_table_shows_evidence_fix_playbook_and_every_check(rich_report: Report) -> None:
    text = render(rich_report, "table", verbose=True)
    for finding in rich_report.findings:
        assert f"playbook: mlops-trace checks explain {finding.slug}" in text
        for item in finding.evidence:
            assert item.where in text
    assert "fix: Scale the local seldon-scheduler to 0" in text
    assert "\n  ✔ MT103 scheduler-alias-missing\n" in text
    assert "\n  × MT101 scheduler-split-brain\n" in text
    assert re.search(r"- MT401 latency-slo skipped: no Prometheus query results", text)
    assert re.search(r"! MT403 split-imbalance errored: KeyError", text)
    assert "kube/ml-prod/broken.yaml" in text
    assert text.rstrip("\n").splitlines()[-1] == (
        "2 critical, 2 warning, 1 info · 3 checks passed, 5 failed, 1 skipped, 1 errored"
    )


def test_table_says_clearly_when_there_are_no_findings(clean_report: Report) -> None:
    text = render(clean_report, "table")
    assert "No findings: all 2 checks passed." in text
    assert text.rstrip("\n").endswith("0 critical, 0 warning, 0 info · 2 checks passed, 0 failed, 0 skipped, 0 errored")


def test_table_without_findings_does_not_claim_health_when_checks_were_skipped(clean_report: Report) -> None:
    skipped = CheckResult(CheckId("MT401"), "latency-slo", CheckStatus.SKIP, "no metrics")
    text = render(replace(clean_report, checks=(*clean_report.checks, skipped)), "table")
    assert "No findings, but 1 of 3 checks was skipped or errored" in text
    assert "all 3 checks passed" not in text


# --- markdown -----------------------------------------------------------------------------------------------------


def _cells(row: str) -> list[str]:
    """Split a GFM table row on the pipes that are not backslash-escaped."""
    cells: list[str] = []
    current = ""
    escaped = False
    for char in row.strip()[1:-1]:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
    cells.append(current)
    return cells


def _tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_markdown_tables_have_no_broken_rows(rich_report: Report) -> None:
    tables = _tables(render(rich_report, "markdown"))
    assert len(tables) == 2
    for rows in tables:
        width = len(_cells(rows[0]))
        assert re.fullmatch(r"\|( --- \|)+", rows[1])
        for row in rows:
            assert row.endswith(" |") and not row.endswith("\\|")
            assert len(_cells(row)) == width, row
    findings_table, checks_table = tables
    assert len(findings_table) == 2 + len(rich_report.findings)
    assert len(checks_table) == 2 + len(rich_report.checks)
    assert "\\| see \\<stderr\\>" in checks_table[-1]


def test_markdown_escapes_text_and_keeps_sections(rich_report: Report) -> None:
    text = render(rich_report, "markdown")
    assert text.startswith("# mlops-trace doctor report\n")
    assert text.count("\n### ") == len(rich_report.findings)
    assert "not among the candidates \\| iris-a, iris-b." in text
    assert "404 \\<no route\\> — café ✓ \\\\x1b\\[31mERR" in text
    assert "gs://models/iris/1 \\& gs://models/iris/1" in text
    assert "\x1b" not in text and "\x00" not in text
    assert "**Playbook:** `mlops-trace checks explain scheduler-split-brain`" in text
    assert "  ```text\n  level=info" in text, "a multi-line excerpt is a fenced block"
    assert "## Input problems\n\n- `kube/ml-prod/broken.yaml`: YAML parse error" in text


def test_markdown_keeps_paragraphs_from_becoming_lists() -> None:
    finding = Finding(
        id=CheckId("MT999"),
        slug="x",
        severity=Severity.INFO,
        title="t",
        message="- not a list item",
        namespace=None,
        object="Pod/p",
        evidence=(Evidence("kube/a.yaml", "has ``` fences"),),
        playbook="x",
        fix="f",
    )
    text = render(Report(source="s", findings=(finding,), checks=()), "markdown")
    assert "\n\\- not a list item\n" in text
    assert "- `kube/a.yaml`: has \\`\\`\\` fences" in text


# --- junit --------------------------------------------------------------------------------------------------------


def test_junit_parses_and_counts_match(rich_report: Report) -> None:
    root = ET.fromstring(render(rich_report, "junit"))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "mlops-trace doctor"
    cases = suite.findall("testcase")
    assert len(cases) == len(rich_report.checks) == int(suite.get("tests", "-1"))
    assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure")) == 5
    assert int(suite.get("errors", "-1")) == len(suite.findall("testcase/error")) == 1
    assert int(suite.get("skipped", "-1")) == len(suite.findall("testcase/skipped")) == 1
    for attribute in ("tests", "failures", "errors"):
        assert root.get(attribute) == suite.get(attribute)
    assert root.get("skipped") is None, "the Jenkins/Ant schema has no skipped on <testsuites>"
    by_name = {case.get("name"): case for case in cases}
    assert by_name["MT101 scheduler-split-brain"].get("classname") == "mlops-trace.MT101"
    failure = by_name["MT101 scheduler-split-brain"].find("failure")
    assert failure is not None and failure.get("type") == "critical"
    assert failure.get("message") == "Two schedulers claim the models of seldon-a"
    assert failure.text is not None
    assert "namespace: seldon-a" in failure.text
    assert "object: Deployment/seldon-scheduler" in failure.text
    assert "  - kube/seldon-a/scheduler.yaml:14: replicas: 1" in failure.text
    assert "fix: Scale the local seldon-scheduler to 0" in failure.text
    skipped = by_name["MT401 latency-slo"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("no Prometheus query results")
    error = by_name["MT403 split-imbalance"].find("error")
    assert error is not None and "| see <stderr>" in error.get("message", "")
    assert by_name["MT103 scheduler-alias-missing"].find("*") is None


def test_junit_survives_characters_xml_forbids() -> None:
    nasty = 'bad \x00\x01\x08\x0b\x0c\x1b[0m\ud800\ufffe ]]> <x> & "q" end'
    finding = Finding(
        id=CheckId("MT104"),
        slug="controller-scheduler-unreachable",
        severity=Severity.WARNING,
        title=nasty,
        message=nasty,
        namespace="ns",
        object="Deployment/c",
        evidence=(Evidence(nasty, nasty),),
        playbook="controller-scheduler-unreachable",
        fix=nasty,
    )
    checks = (
        CheckResult(CheckId("MT104"), "controller-scheduler-unreachable", CheckStatus.FAIL),
        CheckResult(CheckId("MT105"), "agent-not-subscribed", CheckStatus.ERROR, nasty),
        CheckResult(CheckId("MT106"), "model-unschedulable", CheckStatus.SKIP, nasty),
    )
    report = Report(source=nasty, findings=(finding,), checks=checks, input_problems=(InputProblem(nasty, nasty),))
    root = ET.fromstring(render(report, "junit").encode("utf-8"))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.text is not None
    assert 'bad [0m ]]> <x> & "q" end' in failure.text
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("message") == 'bad [0m ]]> <x> & "q" end'


def test_junit_keeps_findings_of_checks_without_a_result() -> None:
    finding = Finding(
        id=CheckId("MT206"),
        slug="loadbalancer-pending",
        severity=Severity.CRITICAL,
        title="No external IP",
        message="m",
        namespace="ingress-nginx",
        object="Service/ingress-nginx-controller",
        evidence=(),
        playbook="loadbalancer-pending",
        fix="f",
    )
    root = ET.fromstring(render(Report(source="s", findings=(finding,), checks=()), "junit"))
    assert root.get("tests") == "1" and root.get("failures") == "1"
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "MT206 loadbalancer-pending"


# --- sarif --------------------------------------------------------------------------------------------------------


def test_sarif_has_the_required_structure(rich_report: Report) -> None:
    log = json.loads(render(rich_report, "sarif"))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mlops-trace"
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == [entry.check.id for entry in load_catalog()], "every check, by id"
    for rule in rules:
        assert {"id", "name", "shortDescription", "fullDescription", "defaultConfiguration"} <= set(rule)
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
        assert rule["name"] in rule["properties"]["tags"]
        assert "security-severity" not in rule["properties"]
    levels = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in rules}
    # From the catalog's severity, not from this run's findings: MT305 is `warning` in the catalog, info here.
    assert levels["MT101"] == "error" and levels["MT206"] == "warning" and levels["MT305"] == "warning"
    results = run["results"]
    assert len(results) == len(rich_report.findings)
    for result in results:
        assert {"ruleId", "ruleIndex", "level", "message", "locations", "partialFingerprints"} <= set(result)
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        assert result["level"] in {"error", "warning", "note"}
        (location,) = result["locations"]
        assert location["logicalLocations"]
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        assert location["physicalLocation"]["artifactLocation"]["uriBaseId"] in run["originalUriBaseIds"]
    assert {r["ruleId"]: r["level"] for r in results}["MT305"] == "note", "a result keeps its finding's severity"
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert len(invocation["toolExecutionNotifications"]) == 2 + len(rich_report.input_problems)


def test_sarif_locations(rich_report: Report) -> None:
    results = {r["ruleId"]: r for r in json.loads(render(rich_report, "sarif"))["runs"][0]["results"]}
    split_brain = results["MT101"]
    assert split_brain["level"] == "error"
    primary = split_brain["locations"][0]
    assert primary["physicalLocation"] == {
        "artifactLocation": {"uri": "kube/seldon-a/scheduler.yaml", "uriBaseId": "BUNDLE"},
        "region": {"startLine": 14},
    }
    assert primary["message"] == {"text": "replicas: 1"}
    assert primary["logicalLocations"] == [
        {
            "name": "Deployment/seldon-scheduler",
            "fullyQualifiedName": "seldon-a/Deployment/seldon-scheduler",
            "kind": "object",
        },
        {"name": "seldon-a", "fullyQualifiedName": "seldon-a", "kind": "namespace"},
    ]
    assert split_brain["relatedLocations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "logs/seldon-a/mlserver-0/agent.log", "uriBaseId": "BUNDLE"},
        "region": {"startLine": 12, "endLine": 13},
    }
    cluster_wide = results["MT107"]["locations"][0]["logicalLocations"]
    assert cluster_wide == [
        {
            "name": "Deployment/seldon-v2-controller-manager",
            "fullyQualifiedName": "Deployment/seldon-v2-controller-manager",
            "kind": "object",
        }
    ]
    shared_storage = results["MT305"]["locations"][0]
    assert shared_storage["physicalLocation"] == {
        "artifactLocation": {"uri": "checks/routing/candidates_share_storage.md", "uriBaseId": "CATALOG"},
        "region": {"startLine": 1},
    }, "an object field is not a file: the result points at its check's doc"
    assert "Model/iris-a .spec.storageUri" in shared_storage["message"]["text"]


def test_sarif_keeps_a_document_index_beside_line_one() -> None:
    evidence = (
        Evidence("kube/serving.yaml#3 Service/seldon-mesh .spec.type", "type: LoadBalancer"),
        Evidence("requests/recorded.json#0", "POST /v2/models/iris/infer -> 404"),
    )
    finding = Finding(CheckId("MT206"), "loadbalancer-pending", Severity.WARNING, "No external IP", "m", "ns",
                      "Service/seldon-mesh", evidence, "loadbalancer-pending", "f")
    (result,) = json.loads(render(Report(source="s", findings=(finding,), checks=()), "sarif"))["runs"][0]["results"]
    primary = result["locations"][0]
    assert primary["physicalLocation"] == {
        "artifactLocation": {"uri": "kube/serving.yaml", "uriBaseId": "BUNDLE"},
        "region": {"startLine": 1},
    }
    assert primary["message"]["text"] == (
        "document 3 of kube/serving.yaml (counted from 0), Service/seldon-mesh .spec.type: type: LoadBalancer"
    )
    assert primary["logicalLocations"][-1] == {
        "name": "Service/seldon-mesh .spec.type", "fullyQualifiedName": "kube/serving.yaml#3", "kind": "element"
    }
    (related,) = result["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "requests/recorded.json"
    assert related["logicalLocations"] == [
        {"name": "requests/recorded.json#0", "fullyQualifiedName": "requests/recorded.json#0", "kind": "element"}
    ]


def _at(uri: str, **region: int) -> dict[str, Any]:
    return {"artifactLocation": {"uri": uri, "uriBaseId": "BUNDLE"}, "region": {"startLine": 1, **region}}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("logs/ns/pod/c.log:12", _at("logs/ns/pod/c.log", startLine=12)),
        ("kube/x.yaml", _at("kube/x.yaml")),
        ("c.log:3:9", _at("c.log", startLine=3, startColumn=9)),
        ("c.log:5-4", _at("c.log", startLine=5)),
        ("envoy/ns/p/config_dump.json", _at("envoy/ns/p/config_dump.json")),
        ("envoy/ns/p/config_dump.json clusters", _at("envoy/ns/p/config_dump.json")),
        ("kube/x.yaml#2 Service/foo .spec.type", _at("kube/x.yaml")),
        ("kube/x.yaml:14#2 Service/foo .spec.type", _at("kube/x.yaml", startLine=14)),
        ("kube/x.yaml#", None),
        ("requests/recorded.json#0", _at("requests/recorded.json")),
        ("logs/ns/modèle/c.log", _at("logs/ns/mod%C3%A8le/c.log")),
        ("Model/iris", None),
        ("Model/iris.json", None),
        ("seldon-scheduler.seldon-system.svc:9004", None),
        ("10.0.0.1:8080", None),
        ("https://example.test/a.json", None),
        ("Experiment/iris-ab .spec.default", None),
        ("route /seldon-system/ in config_dump", None),
        ("kube/ IPAddressPool", None),
        ("NetworkPolicy evaluation (agent → scheduler)", None),
        ("objective", None),
        ("kube/x.yaml:0", None),
    ],
)
def test_sarif_physical_location_of_evidence(where: str, expected: dict[str, Any] | None) -> None:
    assert sarif.physical_location(where) == expected


def _fingerprint(finding: Finding) -> dict[str, str]:
    """The partialFingerprints of a run's one result, as a code-scanning service reads them from the SARIF file."""
    log = json.loads(render(Report(source="s", findings=(finding,), checks=()), "sarif"))
    (result,) = log["runs"][0]["results"]
    fingerprints: dict[str, str] = result["partialFingerprints"]
    return fingerprints


def test_sarif_fingerprint_depends_only_on_id_namespace_object(rich_report: Report) -> None:
    """Code scanning matches alerts across runs by fingerprint: a reworded finding is the same alert, another object
    or namespace is a new one."""
    finding = rich_report.findings[0]
    first = _fingerprint(finding)
    assert list(first) == ["mlopsTraceFinding/v1"]
    assert re.fullmatch(r"[0-9a-f]{64}", first["mlopsTraceFinding/v1"])
    assert _fingerprint(replace(finding, message="other words", evidence=(), severity=Severity.INFO)) == first
    others = [
        _fingerprint(replace(finding, namespace="other")),
        _fingerprint(replace(finding, object="Experiment/other")),
        _fingerprint(replace(finding, namespace=None)),
        _fingerprint(replace(finding, id=CheckId("MT999"))),
    ]
    assert len({fingerprint["mlopsTraceFinding/v1"] for fingerprint in [first, *others]}) == 5


def test_sarif_adds_rules_for_findings_without_a_check_result() -> None:
    finding = Finding(
        id=CheckId("MT999"),
        slug="not-in-the-catalog",
        severity=Severity.CRITICAL,
        title="No external IP",
        message="m",
        namespace="ingress-nginx",
        object="Service/ingress-nginx-controller",
        evidence=(),
        playbook="loadbalancer-pending",
        fix="f",
    )
    run = json.loads(render(Report(source="s", findings=(finding,), checks=()), "sarif"))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [entry.check.id for entry in load_catalog()] + ["MT999"]
    assert rules[-1]["shortDescription"] == {"text": "No external IP"}
    assert rules[-1]["defaultConfiguration"] == {"level": "error"}
    (result,) = run["results"]
    assert result["ruleIndex"] == len(rules) - 1
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "playbooks/loadbalancer-pending.md", "uriBaseId": "CATALOG"
    }
    assert "toolExecutionNotifications" not in run["invocations"][0]
