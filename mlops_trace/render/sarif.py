"""`-o sarif`: SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning, GitLab, Azure DevOps).

One run of the tool `mlops-trace`. Rules are the checks of the report; results are the findings. Evidence that
names a file of the bundle (`kube/ns/models.yaml`, `logs/ns/pod/c.log:12`) becomes a physical location, so a
dashboard can link to the line; the Kubernetes object and its namespace become logical locations. Each result has a
partial fingerprint that depends only on (check id, namespace, object), so the same problem keeps its identity from
one run to the next. Skipped and errored checks and unusable input files are reported as tool notifications.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from mlops_trace import __version__
from mlops_trace.findings import CheckId, CheckStatus, Finding, Report, Severity
from mlops_trace.render._common import findings_by_check, playbook_path, sorted_findings, worst

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "mlops-trace"
INFORMATION_URI = "https://pypi.org/project/mlops-trace/"
FINGERPRINT_KEY = "mlopsTraceFinding/v1"

LEVEL_BY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}
# SARIF's own default for a rule; used for checks that produced no finding in this run, whose severity is unknown here.
_DEFAULT_LEVEL = "warning"

# Files a bundle holds (DESIGN.md bundle format). A closed list of suffixes keeps `Kind/name`, `host:port` and
# `svc.cluster.local:9004` from being mistaken for files.
_FILE_SUFFIXES = frozenset(
    {"yaml", "yml", "json", "jsonl", "ndjson", "log", "txt", "conf", "cfg", "ini", "toml", "prom", "xml", "csv", "tsv"}
)
_FILE_WHERE = re.compile(
    r"^(?P<path>[^\s:]+\.(?P<suffix>[A-Za-z0-9]+))"
    r"(?::(?P<start>[1-9][0-9]*)(?:-(?P<end>[1-9][0-9]*)|:(?P<column>[1-9][0-9]*))?)?$"
)


def render(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2) + "\n"


def sarif_log(report: Report) -> dict[str, Any]:
    """The SARIF log as plain data (the JSON text is `render`)."""
    rule_ids = _rule_ids(report)
    by_check = findings_by_check(report)
    rules = [_rule(rule_id, by_check.get(rule_id, []), _slug_of(report, rule_id)) for rule_id in rule_ids]
    rule_index = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    results = [_result(finding, rule_index[finding.id]) for finding in sorted_findings(report.findings)]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [_invocation(report, rule_index)],
        "results": results,
        "properties": {"source": report.source},
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _rule_ids(report: Report) -> list[CheckId]:
    """Check ids in report order, then ids that only appear on findings (so every result has its rule)."""
    ids: list[CheckId] = []
    for check_id in [c.id for c in report.checks] + [f.id for f in sorted_findings(report.findings)]:
        if check_id not in ids:
            ids.append(check_id)
    return ids


def _slug_of(report: Report, rule_id: CheckId) -> str:
    for check in report.checks:
        if check.id == rule_id:
            return check.slug
    return next(f.slug for f in report.findings if f.id == rule_id)


def _rule(rule_id: CheckId, findings: list[Finding], slug: str) -> dict[str, Any]:
    severity = worst(findings)
    return {
        "id": rule_id,
        "name": slug,
        "shortDescription": {"text": slug.replace("-", " ")},
        "defaultConfiguration": {"level": LEVEL_BY_SEVERITY[severity] if severity is not None else _DEFAULT_LEVEL},
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    files = [(item, location) for item in finding.evidence if (location := physical_location(item.where)) is not None]
    primary: dict[str, Any] = {}
    if files:
        first_item, first_location = files[0]
        primary["physicalLocation"] = first_location
        primary["message"] = {"text": first_item.what}
    primary["logicalLocations"] = _logical_locations(finding)
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": LEVEL_BY_SEVERITY[finding.severity],
        "message": {"text": f"{finding.title}: {finding.message}"},
        "locations": [primary],
    }
    if len(files) > 1:
        result["relatedLocations"] = [
            {"id": number, "physicalLocation": location, "message": {"text": item.what}}
            for number, (item, location) in enumerate(files[1:], start=1)
        ]
    result["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(finding)}
    result["properties"] = {
        "severity": finding.severity.value,
        "slug": finding.slug,
        "namespace": finding.namespace,
        "object": finding.object,
        "evidence": [item.to_dict() for item in finding.evidence],
        "fix": finding.fix,
        "playbook": playbook_path(finding),
    }
    return result


def physical_location(where: str) -> dict[str, Any] | None:
    """A SARIF physicalLocation when `where` names a bundle file (`path`, `path:line`, `path:a-b`, `path:l:c`)."""
    match = _FILE_WHERE.match(where.strip())
    if match is None or match["suffix"].lower() not in _FILE_SUFFIXES or "://" in where:
        return None
    path = match["path"]
    first_segment, _, rest = path.partition("/")
    if rest and "/" not in rest and first_segment[:1].isupper():
        return None  # `Kind/name.yaml`-shaped: an object whose name ends like a file, not a file
    location: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
    if match["start"] is not None:
        region: dict[str, int] = {"startLine": int(match["start"])}
        if match["end"] is not None and int(match["end"]) >= region["startLine"]:
            region["endLine"] = int(match["end"])
        if match["column"] is not None:
            region["startColumn"] = int(match["column"])
        location["region"] = region
    return location


def _logical_locations(finding: Finding) -> list[dict[str, str]]:
    qualified = finding.object if finding.namespace is None else f"{finding.namespace}/{finding.object}"
    locations = [{"name": finding.object, "fullyQualifiedName": qualified, "kind": "object"}]
    if finding.namespace is not None:
        locations.append({"name": finding.namespace, "fullyQualifiedName": finding.namespace, "kind": "namespace"})
    return locations


def _uri(path: str) -> str:
    """A relative URI reference for a bundle path (`:` is escaped too, so `c:x.log` is not read as a scheme)."""
    return quote(path.replace("\\", "/"), safe="/", errors="replace")


def fingerprint(finding: Finding) -> str:
    """Stable identity of a problem across runs: the same check on the same object in the same namespace."""
    key = "\x1f".join((finding.id, finding.namespace or "", finding.object))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _invocation(report: Report, rule_index: dict[CheckId, int]) -> dict[str, Any]:
    notifications: list[dict[str, Any]] = []
    for check in report.checks:
        if check.status in (CheckStatus.SKIP, CheckStatus.ERROR):
            reason = check.reason or "no reason given"
            notifications.append(
                {
                    "associatedRule": {"id": check.id, "index": rule_index[check.id]},
                    "level": "error" if check.status is CheckStatus.ERROR else "note",
                    "message": {"text": f"{check.id} {check.slug} {check.status.value}: {reason}"},
                }
            )
    for problem in report.input_problems:
        notifications.append(
            {
                "level": "warning",
                "message": {"text": f"input not used: {problem.reason}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(problem.path)}}}],
            }
        )
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation
