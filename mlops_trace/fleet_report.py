"""What a run over several clusters (kubeconfig contexts) hands the renderers: one row per cluster, examined or not.

A `ClusterOutcome` is one context: its `Report` when the cluster was examined (every finding carrying the context as
`Finding.cluster`), or the one-line reason it could not be. A `FleetReport` holds the outcomes in the order the user
named the contexts. Its JSON is the one-cluster report's keys (`findings`, `checks`, `input_problems`, each item with
its `cluster`) plus `clusters`, the per-cluster rows, so a reader of one report's JSON reads a fleet's too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from mlops_trace.findings import CheckResult, Finding, Report, Severity


class ClusterStatus(StrEnum):
    EXAMINED = "examined"
    COULD_NOT_RUN = "could-not-run"


@dataclass(frozen=True)
class ClusterOutcome:
    """One context of a fleet run: its report, or why there is none."""

    cluster: str
    status: ClusterStatus
    report: Report | None = None
    reason: str = ""  # why it could not run (one line); empty when examined
    namespace: str | None = None  # the context's own namespace, when the run used it (neither -n nor -A)
    seconds: float = 0.0

    @classmethod
    def examined(cls, cluster: str, report: Report, namespace: str | None = None, seconds: float = 0.0) -> ClusterOutcome:
        return cls(cluster, ClusterStatus.EXAMINED, with_cluster(report, cluster), "", namespace, seconds)

    @classmethod
    def could_not_run(cls, cluster: str, reason: str, seconds: float = 0.0) -> ClusterOutcome:
        return cls(cluster, ClusterStatus.COULD_NOT_RUN, None, reason, None, seconds)

    def row(self) -> dict[str, Any]:
        """The cluster's line in `clusters`: status, reason, source, namespace and its finding counts."""
        report = self.report
        counts = {s.value: 0 for s in sorted(Severity, key=lambda s: -s.rank)}
        for finding in report.findings if report is not None else ():
            counts[finding.severity.value] += 1
        return {
            "cluster": self.cluster,
            "status": self.status.value,
            "reason": self.reason,
            "source": report.source if report is not None else None,
            "namespace": self.namespace,
            "findings": counts,
            "errored_checks": [c.id for c in report.errored_checks()] if report is not None else [],
        }


def with_cluster(report: Report, cluster: str) -> Report:
    """`report` with `cluster` set on it and on each finding. Causes are linked first, inside the one cluster: a
    finding's key does not name its cluster, so two clusters' findings must never be linked together."""
    from mlops_trace.analysis.causes import linked

    if not report.caused_by:
        report = linked(report)
    findings = tuple(replace(finding, cluster=cluster) for finding in report.findings)
    return replace(report, findings=findings, cluster=cluster)


@dataclass(frozen=True)
class FleetReport:
    clusters: tuple[ClusterOutcome, ...]

    @property
    def source(self) -> str:
        examined = sum(1 for outcome in self.clusters if outcome.report is not None)
        return f"fleet: {len(self.clusters)} contexts, {examined} examined"

    def reports(self) -> Iterator[Report]:
        """The reports of the clusters that were examined, in the fleet's order."""
        return (outcome.report for outcome in self.clusters if outcome.report is not None)

    def not_run(self) -> list[ClusterOutcome]:
        return [outcome for outcome in self.clusters if outcome.report is None]

    def findings(self) -> list[Finding]:
        return [finding for report in self.reports() for finding in report.findings]

    def any_examined(self) -> bool:
        return any(outcome.report is not None for outcome in self.clusters)

    def failed(self, fail_on: Severity) -> bool:
        """A finding at or above `fail_on` in any examined cluster."""
        return any(report.failed(fail_on) for report in self.reports())

    def errored_checks(self) -> list[tuple[str, CheckResult]]:
        return [(outcome.cluster, check) for outcome in self.clusters if outcome.report is not None
                for check in outcome.report.errored_checks()]

    def to_dict(self) -> dict[str, Any]:
        findings: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        for report in self.reports():
            data = report.to_dict()
            findings += data["findings"]
            checks += [{**check, "cluster": report.cluster} for check in data["checks"]]
            problems += [{**problem, "cluster": report.cluster} for problem in data["input_problems"]]
        return {
            "schema_version": Report.SCHEMA_VERSION,
            "source": self.source,
            "findings": findings,
            "checks": checks,
            "input_problems": problems,
            "clusters": [outcome.row() for outcome in self.clusters],
        }
