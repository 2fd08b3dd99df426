"""The result of a `smoke` run: the doctor report (with the request run's findings merged in), the gates, what the
request run and Prometheus said, and the one exit code every output format shares.

Exit code: 2 when the run could not happen (`error` set: bad flags, unreadable bundle, unreachable endpoint,
cluster or Prometheus) or a check crashed (not every check could run), 1 when a gate failed or a finding is at or
above `--fail-on`, else 0. Over several clusters (`fleet` set, `report` None) as `doctor` over several: 2 only when
the run could not happen or no cluster could be examined; a cluster that could not be examined is its row's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_trace.findings import Finding, Report, Severity
from mlops_trace.fleet_report import FleetReport
from mlops_trace.smoke.gates import GateResult, GateStatus

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_COULD_NOT_RUN = 2


@dataclass(frozen=True)
class SmokeReport:
    source: str
    report: Report | None  # None when the run stopped before doctor
    gates: tuple[GateResult, ...] = ()
    fail_on: Severity = Severity.WARNING
    request: Mapping[str, Any] | None = None  # RunSummary.to_dict() of the request run
    target: str = ""  # the endpoint and what was called
    prometheus: tuple[str, ...] = ()  # what Prometheus had and which metric each check used
    notes: tuple[str, ...] = ()
    error: str | None = None
    fleet: FleetReport | None = None  # several contexts: one outcome per cluster (then `report` is None)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if gate.status is GateStatus.FAIL]

    @property
    def failing_findings(self) -> list[Finding]:
        if self.fleet is not None:
            return [f for f in self.fleet.findings() if f.severity.at_least(self.fail_on)]
        if self.report is None:
            return []
        return [f for f in self.report.findings if f.severity.at_least(self.fail_on)]

    @property
    def exit_code(self) -> int:
        if self.error is not None or (self.report is not None and self.report.errored_checks()):
            return EXIT_COULD_NOT_RUN
        if self.fleet is not None and not self.fleet.any_examined():
            return EXIT_COULD_NOT_RUN
        return EXIT_FAILED if self.failed_gates or self.failing_findings else EXIT_OK

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "pass", EXIT_FAILED: "fail", EXIT_COULD_NOT_RUN: "error"}[self.exit_code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": "smoke",
            "result": self.verdict,
            "exit_code": self.exit_code,
            "error": self.error,
            "source": self.source,
            "target": self.target,
            "fail_on": self.fail_on.value,
            "gates": [gate.to_dict() for gate in self.gates],
            **self._doctor_dict(),
            "request": dict(self.request) if self.request is not None else None,
            "prometheus": list(self.prometheus),
            "notes": list(self.notes),
        }

    def _doctor_dict(self) -> dict[str, Any]:
        """doctor's part: one report's findings, checks and input problems; over several clusters the same keys with
        each item's `cluster`, plus `clusters` (the per-cluster rows of doctor's fleet JSON)."""
        if self.fleet is not None:
            fleet = self.fleet.to_dict()
            return {key: fleet[key] for key in ("findings", "checks", "input_problems", "clusters")}
        report = self.report
        return {
            "findings": [f.to_dict() for f in report.findings] if report else [],
            "checks": [c.to_dict() for c in report.checks] if report else [],
            "input_problems": [p.to_dict() for p in report.input_problems] if report else [],
        }


def could_not_run(source: str, message: str, fail_on: Severity = Severity.WARNING) -> SmokeReport:
    return SmokeReport(source=source, report=None, fail_on=fail_on, error=message)


def gates_text(gates: Sequence[GateResult]) -> str:
    failed = sum(1 for gate in gates if gate.status is GateStatus.FAIL)
    skipped = sum(1 for gate in gates if gate.status is GateStatus.SKIP)
    return f"{len(gates) - failed - skipped} gates passed, {failed} failed, {skipped} skipped"

