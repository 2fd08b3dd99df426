"""SARIF rules (`reportingDescriptor`s) from the check catalog: one per check, whether or not it fired this run.

A dashboard shows a rule's text beside every alert and lists the rules a tool ran, so each rule carries what the
catalog says of its check: the title as `shortDescription`, the first paragraph of the doc's "What it checks" as
`fullDescription`, the whole doc (`checks/<area>/<slug>.md`) as `help.text` and `help.markdown`, and the catalog
severity as `defaultConfiguration.level`. No `security-severity`: the checks find misconfigurations of a serving
stack, not vulnerabilities, and GitHub files any rule that has one under security alerts. No `helpUri`: the docs
have no published address; the doc itself travels in `help`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlops_trace.findings import CheckId, Finding, Severity

LEVEL_BY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}
TOOL_TAG = "mlops-trace"
_HEADING = re.compile(r"^#{1,6}\s")


@dataclass(frozen=True)
class RuleSource:
    """What a rule says, from the catalog entry of a check (or from a finding whose check the catalog lacks)."""

    id: CheckId
    slug: str
    title: str
    severity: Severity
    area: str = ""
    doc: str = ""  # the check's markdown doc
    doc_path: str = ""  # `checks/<area>/<file>.md`, relative to the catalog's parent folder
    playbook: str = ""

    @property
    def level(self) -> str:
        return LEVEL_BY_SEVERITY[self.severity]


def catalog_rule_sources() -> list[RuleSource]:
    """Every check of the catalog, by id. Imported here, not at module level: only SARIF needs the catalog."""
    from mlops_trace.analysis.catalog import load_catalog

    sources: list[RuleSource] = []
    for entry in load_catalog():
        check = entry.check
        sources.append(
            RuleSource(
                id=check.id,
                slug=check.slug,
                title=check.title,
                severity=check.severity,
                area=entry.area,
                doc=entry.doc(),
                doc_path=f"checks/{entry.area}/{entry.doc_path.name}",
                playbook=check.playbook,
            )
        )
    return sources


def finding_rule_source(finding: Finding, findings: list[Finding]) -> RuleSource:
    """A rule for a check id the catalog does not know (a report read from elsewhere): what its findings say."""
    worst = max((f.severity for f in findings), key=lambda s: s.rank, default=finding.severity)
    return RuleSource(id=finding.id, slug=finding.slug, title=finding.title, severity=worst, playbook=finding.playbook)


def rule_descriptor(source: RuleSource) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": source.id,
        "name": source.slug,
        "shortDescription": {"text": source.title},
        "fullDescription": {"text": doc_summary(source.doc) or source.title},
        "defaultConfiguration": {"level": source.level},
    }
    if source.doc:
        rule["help"] = {"text": source.doc, "markdown": source.doc}
    tags = [TOOL_TAG] + ([source.area.replace("_", "-")] if source.area else []) + [source.slug]
    properties: dict[str, Any] = {"tags": tags, "severity": source.severity.value}
    if source.playbook:
        properties["playbook"] = f"playbooks/{source.playbook}.md"
    rule["properties"] = properties
    return rule


def doc_summary(doc: str) -> str:
    """The first paragraph of the doc's "What it checks" section (else its first paragraph), on one line."""
    lines = doc.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip().lower() == "## what it checks"), 0)
    paragraph: list[str] = []
    for line in lines[start:]:
        stripped = line.strip()
        if _HEADING.match(stripped):
            if paragraph:
                break
            continue
        if not stripped:
            if paragraph:
                break
            continue
        paragraph.append(stripped)
    return " ".join(paragraph)
