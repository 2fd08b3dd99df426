"""`-o junit`: JUnit XML, so CI systems (GitLab, Jenkins, GitHub test reporters) show each check as a test case.

One `<testsuite name="mlops-trace doctor">` with one `<testcase>` per check result: a failed check carries a
`<failure>` whose message is the check's title and whose body lists its findings with their evidence, a skipped one
`<skipped message=...>` and an errored one `<error>`, each with the reason. A finding whose check id has no result
still gets a failing test case, so no finding is lost. The file keeps to the Jenkins/Ant JUnit schema (the xunit
plugin's `junit-10.xsd`): `<testsuites>` counts tests, failures and errors only (`skipped` is an attribute of
`<testsuite>` alone), and no two properties share a name (xunitparser reads properties into one dict and refuses a
repeated name), so input problems are numbered. Characters XML 1.0 forbids (NUL, terminal escapes from logs, lone
surrogates) are removed, so the file always parses.

A run over several clusters (`render_fleet`) writes one `<testsuite name="mlops-trace doctor · CONTEXT">` per
cluster (test case class names `mlops-trace.CONTEXT.MTxxx`; its properties `source.CONTEXT`, `cluster.CONTEXT`, so no
two suites share a property name); a cluster that could not be examined is a suite of one errored test case,
`examine CONTEXT`, whose message is the reason.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Finding, Report
from mlops_trace.fleet_report import FleetReport
from mlops_trace.render._common import findings_by_check, namespace_label, playbook_path, worst

SUITE_NAME = "mlops-trace doctor"

# Complement of the XML 1.0 `Char` production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report) -> str:
    return _document([_suite(report)])


def render_fleet(fleet: FleetReport) -> str:
    suites: list[ET.Element] = []
    for outcome in fleet.clusters:
        if outcome.report is not None:
            suites.append(_suite(outcome.report))
            continue
        attributes = {"name": f"{SUITE_NAME} · {_clean(outcome.cluster)}", "tests": "1", "failures": "0",
                      "errors": "1", "skipped": "0"}
        suite = ET.Element("testsuite", attributes)
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", {"name": f"cluster.{_clean(outcome.cluster)}",
                                               "value": _clean(outcome.cluster)})
        case = ET.SubElement(suite, "testcase", {"classname": f"mlops-trace.{_clean(outcome.cluster)}",
                                                 "name": f"examine {_clean(outcome.cluster)}"})
        ET.SubElement(case, "error", {"message": _clean(outcome.reason or "could not run"), "type": "could-not-run"})
        suites.append(suite)
    return _document(suites)


def _document(suites: list[ET.Element]) -> str:
    totals = {
        "name": SUITE_NAME,
        "tests": str(sum(int(suite.get("tests", "0")) for suite in suites)),
        "failures": str(sum(int(suite.get("failures", "0")) for suite in suites)),
        "errors": str(sum(int(suite.get("errors", "0")) for suite in suites)),
    }
    root = ET.Element("testsuites", totals)
    root.extend(suites)
    ET.indent(root, space="  ")
    # Written by hand: ElementTree's own declaration names the locale's encoding when asked for a `str`.
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(report: Report) -> ET.Element:
    """One report's suite; a report about one of several clusters names it (suite name, class names, property)."""
    by_check = findings_by_check(report)
    cases: list[tuple[CheckResult, list[Finding]]] = [(check, by_check.get(check.id, [])) for check in report.checks]
    reported = {check.id for check in report.checks}
    for check_id, findings in by_check.items():
        if check_id not in reported:
            orphan = CheckResult(id=check_id, slug=findings[0].slug, status=CheckStatus.FAIL)
            cases.append((orphan, findings))

    counts = {status: sum(1 for check, _ in cases if check.status is status) for status in CheckStatus}
    cluster = None if report.cluster is None else _clean(report.cluster)
    totals = {
        "name": SUITE_NAME if cluster is None else f"{SUITE_NAME} · {cluster}",
        "tests": str(len(cases)),
        "failures": str(counts[CheckStatus.FAIL]),
        "errors": str(counts[CheckStatus.ERROR]),
    }
    suite = ET.Element("testsuite", {**totals, "skipped": str(counts[CheckStatus.SKIP])})
    # xunitparser reads the properties of every suite into one dict: a cluster's names carry the cluster.
    suffix = "" if cluster is None else f".{cluster}"
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": f"source{suffix}", "value": _clean(report.source)})
    if cluster is not None:
        ET.SubElement(properties, "property", {"name": f"cluster{suffix}", "value": cluster})
    for number, problem in enumerate(report.input_problems, start=1):
        ET.SubElement(
            properties,
            "property",
            {"name": f"input-problem{suffix}.{number}", "value": _clean(f"{problem.path}: {problem.reason}")},
        )
    for check, findings in cases:
        _add_case(suite, check, findings, cluster)
    return suite


def _add_case(suite: ET.Element, check: CheckResult, findings: list[Finding], cluster: str | None) -> None:
    classname = f"mlops-trace.{_clean(check.id)}" if cluster is None else f"mlops-trace.{cluster}.{_clean(check.id)}"
    case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _clean(f"{check.id} {check.slug}")})
    if check.status is CheckStatus.FAIL:
        severity = worst(findings)
        message = findings[0].title if findings else check.reason or "check failed without a finding"
        failure = ET.SubElement(
            case,
            "failure",
            {"message": _clean(message), "type": severity.value if severity is not None else "failure"},
        )
        failure.text = _clean(_failure_text(check.id, findings))
    elif check.status is CheckStatus.SKIP:
        ET.SubElement(case, "skipped", {"message": _clean(check.reason or "skipped")})
    elif check.status is CheckStatus.ERROR:
        ET.SubElement(case, "error", {"message": _clean(check.reason or "check errored"), "type": "error"})


def _failure_text(check_id: CheckId, findings: list[Finding]) -> str:
    if not findings:
        return f"{check_id} failed but reported no finding."
    blocks: list[str] = []
    for finding in findings:
        lines = [
            f"[{finding.severity.value}] {finding.id} {finding.slug}: {finding.title}",
            f"namespace: {namespace_label(finding.namespace)}",
            f"object: {finding.object}",
            f"message: {finding.message}",
        ]
        if finding.evidence:
            lines.append("evidence:")
            lines += [f"  - {item.where}: {_hang(item.what)}" for item in finding.evidence]
        lines += [f"fix: {finding.fix}", f"playbook: {playbook_path(finding)}"]
        blocks.append("\n".join(lines))
    return "\n" + "\n\n".join(blocks) + "\n"


def _hang(text: str) -> str:
    """Continuation lines of a multi-line excerpt indented under their list item."""
    return "\n    ".join(text.strip("\n").splitlines())


def _clean(text: str) -> str:
    return _NOT_XML_CHAR.sub("", text)
