"""`-o junit`: JUnit XML, so CI systems (GitLab, Jenkins, GitHub test reporters) show each check as a test case.

One `<testsuite name="mlops-trace doctor">` with one `<testcase>` per check result: a failed check carries a
`<failure>` listing its findings, a skipped one `<skipped>` and an errored one `<error>`, each with the reason. A
finding whose check id has no result still gets a failing test case, so no finding is lost. Characters XML 1.0
forbids (NUL, terminal escapes from logs, lone surrogates) are removed, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Finding, Report
from mlops_trace.render._common import findings_by_check, namespace_label, playbook_path, worst

SUITE_NAME = "mlops-trace doctor"

# Complement of the XML 1.0 `Char` production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report) -> str:
    by_check = findings_by_check(report)
    cases: list[tuple[CheckResult, list[Finding]]] = [(check, by_check.get(check.id, [])) for check in report.checks]
    reported = {check.id for check in report.checks}
    for check_id, findings in by_check.items():
        if check_id not in reported:
            orphan = CheckResult(id=check_id, slug=findings[0].slug, status=CheckStatus.FAIL)
            cases.append((orphan, findings))

    counts = {status: sum(1 for check, _ in cases if check.status is status) for status in CheckStatus}
    attributes = {
        "name": SUITE_NAME,
        "tests": str(len(cases)),
        "failures": str(counts[CheckStatus.FAIL]),
        "errors": str(counts[CheckStatus.ERROR]),
        "skipped": str(counts[CheckStatus.SKIP]),
    }
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", attributes)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "source", "value": _clean(report.source)})
    for problem in report.input_problems:
        ET.SubElement(
            properties,
            "property",
            {"name": "input-problem", "value": _clean(f"{problem.path}: {problem.reason}")},
        )
    for check, findings in cases:
        _add_case(suite, check, findings)

    ET.indent(root, space="  ")
    # Written by hand: ElementTree's own declaration names the locale's encoding when asked for a `str`.
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _add_case(suite: ET.Element, check: CheckResult, findings: list[Finding]) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": f"mlops-trace.{_clean(check.id)}", "name": _clean(f"{check.id} {check.slug}")},
    )
    if check.status is CheckStatus.FAIL:
        severity = worst(findings)
        noun = "finding" if len(findings) == 1 else "findings"
        message = check.reason or (
            f"{len(findings)} {noun}: {findings[0].title}" if findings else "check failed without a finding"
        )
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
