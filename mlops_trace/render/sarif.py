"""`-o sarif`: SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning, GitLab, Azure DevOps).

One run of the tool `mlops-trace`. Rules are every check of the catalog (`render.sarif_rules`: title, doc, catalog
severity), not only those that fired; results are the findings. Every result has a physical location with a start
line, because GitHub code scanning places an alert only by `region.startLine`:

- the first evidence that names a bundle file (`render.locations`) gives `locations[0]`: the file relative to the
  `BUNDLE` base and its line. An object's evidence (`kube/x.yaml#2 Service/foo .spec.type`) names a document of the
  file, not a line; the renderer sees the Report, not the bundle, so it points at line 1 of the file and keeps the
  document index as a logical location (`kube/x.yaml#2`) and in the location's message. Further file evidence
  becomes `relatedLocations`;
- a finding with no file evidence (an object field, a request's words, a statistic) points at its check's doc
  (`checks/<area>/<slug>.md`, base `CATALOG`), line 1, so the alert still opens somewhere that explains it.

The Kubernetes object and its namespace are logical locations of every result. Each result has a partial
fingerprint that depends only on (check id, namespace, object), so the same problem keeps its identity from one run
to the next. Skipped and errored checks and unusable input files are reported as tool notifications.

A run over several clusters (`fleet_sarif_log`) is still one SARIF run (code scanning refuses several runs of one
tool and category in a file): every result carries its cluster (the kubeconfig context) in `properties.cluster` and
as a logical location of kind `cluster`, and its fingerprint includes it, so the same problem in two clusters is two
alerts; notifications name their cluster, and a cluster that could not be examined is an error notification.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from mlops_trace import __version__
from mlops_trace.findings import CheckId, CheckStatus, Evidence, Finding, Report, Severity
from mlops_trace.fleet_report import FleetReport
from mlops_trace.render._common import findings_by_check, playbook_path, sorted_findings
from mlops_trace.render.locations import EvidenceRef, evidence_ref
from mlops_trace.render.sarif_rules import (
    LEVEL_BY_SEVERITY,
    RuleSource,
    catalog_rule_sources,
    finding_rule_source,
    rule_descriptor,
)

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "mlops-trace"
INFORMATION_URI = "https://pypi.org/project/mlops-trace/"
FINGERPRINT_KEY = "mlopsTraceFinding/v1"
BUNDLE_BASE = "BUNDLE"
CATALOG_BASE = "CATALOG"
# A check result whose id neither the catalog nor a finding knows: SARIF's own default level for a rule.
_DEFAULT_SEVERITY = Severity.WARNING

__all__ = ["LEVEL_BY_SEVERITY", "fleet_sarif_log", "physical_location", "render", "render_fleet", "sarif_log"]


def render(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2) + "\n"


def render_fleet(fleet: FleetReport) -> str:
    return json.dumps(fleet_sarif_log(fleet), indent=2) + "\n"


def sarif_log(report: Report) -> dict[str, Any]:
    """The SARIF log as plain data (the JSON text is `render`)."""
    return _log([report], report.source, f"The root of the input this report read: {report.source}")


def fleet_sarif_log(fleet: FleetReport) -> dict[str, Any]:
    """One run over every examined cluster's findings; see the module's doc."""
    log = _log(list(fleet.reports()), fleet.source,
               "The root of each cluster's input (a result's `cluster` property names the cluster): "
               + "; ".join(f"{report.cluster}: {report.source}" for report in fleet.reports()),
               not_run=[(outcome.cluster, outcome.reason) for outcome in fleet.not_run()])
    log["runs"][0]["properties"]["clusters"] = [outcome.row() for outcome in fleet.clusters]
    return log


def _log(reports: list[Report], source: str, bundle_text: str, not_run: list[tuple[str, str]] | None = None
         ) -> dict[str, Any]:
    sources = _rule_sources(reports)
    rule_index = {source.id: index for index, source in enumerate(sources)}
    results = [_result(finding, rule_index[finding.id], sources[rule_index[finding.id]])
               for report in reports for finding in sorted_findings(report.findings)]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [rule_descriptor(source) for source in sources],
            }
        },
        "originalUriBaseIds": {
            BUNDLE_BASE: {"description": {"text": bundle_text}},
            CATALOG_BASE: {
                "description": {
                    "text": "The folder holding the check catalog of mlops-trace: the top of its source tree, or "
                    "mlops_trace/_catalog/ in the installed package"
                }
            },
        },
        "invocations": [_invocation(reports, rule_index, not_run or [])],
        "results": results,
        "properties": {"source": source},
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _rule_sources(reports: list[Report]) -> list[RuleSource]:
    """The catalog's checks by id, then ids that only appear on findings or check results (so every result and
    notification has its rule)."""
    sources = catalog_rule_sources()
    known = {source.id for source in sources}
    for report in reports:
        by_check = findings_by_check(report)
        for finding in sorted_findings(report.findings):
            if finding.id not in known:
                known.add(finding.id)
                sources.append(finding_rule_source(finding, by_check[finding.id]))
        for check in report.checks:
            if check.id not in known:
                known.add(check.id)
                sources.append(RuleSource(id=check.id, slug=check.slug, title=check.slug.replace("-", " "),
                                          severity=_DEFAULT_SEVERITY))
    return sources


def _result(finding: Finding, rule_index: int, rule: RuleSource) -> dict[str, Any]:
    files = [(item, ref) for item in finding.evidence if (ref := evidence_ref(item.where)) is not None]
    if files:
        first_item, first_ref = files[0]
        primary = _evidence_location(first_item, first_ref)
    else:
        primary = _doc_location(finding, rule)
    primary["logicalLocations"] = _logical_locations(finding) + primary.get("logicalLocations", [])
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": LEVEL_BY_SEVERITY[finding.severity],
        "message": {"text": f"{finding.title}: {finding.message}"},
        "locations": [primary],
    }
    if len(files) > 1:
        result["relatedLocations"] = [
            {"id": number, **_evidence_location(item, ref)} for number, (item, ref) in enumerate(files[1:], start=1)
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
    if finding.cluster is not None:
        result["properties"]["cluster"] = finding.cluster
    return result


def physical_location(where: str) -> dict[str, Any] | None:
    """A SARIF physicalLocation when `where` names a bundle file (see `render.locations`), always with a start line
    (1 when the evidence names the whole file or a document of it)."""
    ref = evidence_ref(where)
    return None if ref is None else _physical(ref)


def _physical(ref: EvidenceRef) -> dict[str, Any]:
    region: dict[str, int] = {"startLine": ref.line or 1}
    if ref.end_line is not None:
        region["endLine"] = ref.end_line
    if ref.column is not None:
        region["startColumn"] = ref.column
    return {"artifactLocation": {"uri": _uri(ref.path), "uriBaseId": BUNDLE_BASE}, "region": region}


def _evidence_location(item: Evidence, ref: EvidenceRef) -> dict[str, Any]:
    location: dict[str, Any] = {"physicalLocation": _physical(ref)}
    said = f"{ref.detail}: {item.what}" if ref.detail else item.what
    if ref.document is not None:
        document = f"{ref.path}#{ref.document}"
        location["message"] = {"text": f"document {ref.document} of {ref.path} (counted from 0), {said}"}
        location["logicalLocations"] = [
            {"name": ref.detail or document, "fullyQualifiedName": document, "kind": "element"}
        ]
    else:
        location["message"] = {"text": said}
    return location


def _doc_location(finding: Finding, rule: RuleSource) -> dict[str, Any]:
    """Where a finding that names no file of the input points: its check's doc (the catalog's, when there is one)."""
    shown = "; ".join(f"{item.where}: {item.what}" for item in finding.evidence) or finding.object
    if rule.doc_path:
        physical = {
            "artifactLocation": {"uri": _uri(rule.doc_path), "uriBaseId": CATALOG_BASE},
            "region": {"startLine": 1},
        }
    else:  # a check the catalog lacks: the playbook the finding names is the one file that speaks of it
        physical = {
            "artifactLocation": {"uri": _uri(playbook_path(finding)), "uriBaseId": CATALOG_BASE},
            "region": {"startLine": 1},
        }
    return {"physicalLocation": physical, "message": {"text": f"no file of the input names it: {shown}"}}


def _logical_locations(finding: Finding) -> list[dict[str, str]]:
    qualified = finding.object if finding.namespace is None else f"{finding.namespace}/{finding.object}"
    locations = [{"name": finding.object, "fullyQualifiedName": qualified, "kind": "object"}]
    if finding.namespace is not None:
        locations.append({"name": finding.namespace, "fullyQualifiedName": finding.namespace, "kind": "namespace"})
    if finding.cluster is not None:
        # SARIF's list of kinds has none for a cluster and lets a producer name its own.
        locations.append({"name": finding.cluster, "fullyQualifiedName": finding.cluster, "kind": "cluster"})
    return locations


def _uri(path: str) -> str:
    """A relative URI reference for a bundle path (`:` is escaped too, so `c:x.log` is not read as a scheme)."""
    return quote(path.replace("\\", "/"), safe="/", errors="replace")


def fingerprint(finding: Finding) -> str:
    """Stable identity of a problem across runs: the same check on the same object in the same namespace."""
    parts = (finding.id, finding.namespace or "", finding.object)
    key = "\x1f".join(parts if finding.cluster is None else (finding.cluster, *parts))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _invocation(reports: list[Report], rule_index: dict[CheckId, int], not_run: list[tuple[str, str]]
                ) -> dict[str, Any]:
    notifications: list[dict[str, Any]] = []
    for report in reports:
        notifications += _notifications(report, rule_index)
    for cluster, reason in not_run:
        notifications.append({"level": "error", "message": {"text": f"cluster {cluster} could not be examined: "
                                                                    f"{reason}"}, "properties": {"cluster": cluster}})
    invocation: dict[str, Any] = {"executionSuccessful": bool(reports) or not not_run}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _notifications(report: Report, rule_index: dict[CheckId, int]) -> list[dict[str, Any]]:
    notifications: list[dict[str, Any]] = []
    cluster = "" if report.cluster is None else f"{report.cluster}: "
    for check in report.checks:
        if check.status in (CheckStatus.SKIP, CheckStatus.ERROR):
            reason = check.reason or "no reason given"
            notifications.append(
                {
                    "associatedRule": {"id": check.id, "index": rule_index[check.id]},
                    "level": "error" if check.status is CheckStatus.ERROR else "note",
                    "message": {"text": f"{cluster}{check.id} {check.slug} {check.status.value}: {reason}"},
                }
            )
    for problem in report.input_problems:
        notifications.append(
            {
                "level": "warning",
                "message": {"text": f"{cluster}input not used: {problem.path}: {problem.reason}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(problem.path), "uriBaseId": BUNDLE_BASE},
                            "region": {"startLine": 1},
                        }
                    }
                ],
            }
        )
    return notifications
