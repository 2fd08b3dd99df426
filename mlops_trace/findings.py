"""Findings, check results and the report that renderers turn into text.

A `Finding` is one problem a check proved, with the evidence that proves it. A `CheckResult` says how one check
ended (`pass`, `fail`, `skip`, `error`). A `Report` holds both for one run, plus what went wrong while reading inputs
and which finding explains which (`caused_by`, linked by `mlops_trace.analysis.causes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType

CheckId = NewType("CheckId", str)
FindingKey = tuple[str, str | None, str, str]  # (check id, namespace, object, message): see `Finding.key`

EVIDENCE_CHARS = 200  # one evidence line at most; a longer text is cut with an ellipsis


def evidence_line(text: str, width: int = EVIDENCE_CHARS) -> str:
    """The one rule for quoting a log line, an answer or a config as evidence: every run of whitespace (tabs of a zap
    line, newlines of a body) one space, and at most `width` characters, the last an ellipsis when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; used for `--fail-on` and sorting."""
        return {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}[self]

    def at_least(self, threshold: Severity) -> bool:
        return self.rank >= threshold.rank


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


@dataclass(frozen=True)
class Evidence:
    """Where something was seen (file:line, object field, route) and what was seen there."""

    where: str
    what: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what}


@dataclass(frozen=True)
class Finding:
    id: CheckId
    slug: str
    severity: Severity
    title: str
    message: str
    namespace: str | None
    object: str  # "Kind/name"
    evidence: tuple[Evidence, ...]
    playbook: str
    fix: str
    # Ids of checks whose finding, in the same scope, explains this one (the check's metadata, copied like its title;
    # `analysis.causes` decides the scope). Not part of equality: two runs of a check yield equal findings either way.
    explained_by: tuple[CheckId, ...] = field(default=(), compare=False)
    # The kubeconfig context whose cluster it was found in, when a run read several (`mlops_trace.fleet`); None for
    # one cluster or a bundle. Not part of `key`: within one cluster's report it is the same for every finding.
    cluster: str | None = None

    @property
    def key(self) -> FindingKey:
        """What makes two findings the same one: check, namespace, object and message (evidence may differ)."""
        return (self.id, self.namespace, self.object, self.message)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "slug": self.slug,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "namespace": self.namespace,
            "object": self.object,
            "evidence": [item.to_dict() for item in self.evidence],
            "playbook": self.playbook,
            "fix": self.fix,
        }
        if self.cluster is not None:  # only added: a one-cluster report keeps its keys exactly
            data["cluster"] = self.cluster
        return data


@dataclass(frozen=True)
class CheckResult:
    id: CheckId
    slug: str
    status: CheckStatus
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slug": self.slug, "status": self.status.value, "reason": self.reason}


@dataclass(frozen=True)
class InputProblem:
    """A file of the input that could not be used, and why (one line)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Report:
    source: str
    findings: tuple[Finding, ...]
    checks: tuple[CheckResult, ...]
    input_problems: tuple[InputProblem, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    # effect's key -> keys of the findings that explain it, in report order (`analysis.causes.linked`)
    caused_by: Mapping[FindingKey, tuple[FindingKey, ...]] = field(default_factory=dict)
    # The kubeconfig context this report is about, when a run read several (`mlops_trace.fleet`); see Finding.cluster
    cluster: str | None = None

    SCHEMA_VERSION = 1

    def worst_severity(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def failed(self, fail_on: Severity) -> bool:
        """True when a finding is at or above `fail_on` (exit code 1)."""
        return any(f.severity.at_least(fail_on) for f in self.findings)

    def errored_checks(self) -> list[CheckResult]:
        """Checks that crashed: the run could not run all checks (exit code 2, whatever else it found)."""
        return [c for c in self.checks if c.status is CheckStatus.ERROR]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.SCHEMA_VERSION,
            "source": self.source,
            "findings": [self._finding_dict(f) for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
            "input_problems": [p.to_dict() for p in self.input_problems],
            **({"cluster": self.cluster} if self.cluster is not None else {}),
        }

    def _finding_dict(self, finding: Finding) -> dict[str, Any]:
        """`Finding.to_dict()` plus `caused_by`: the keys (id, namespace, object, message) of the findings of this
        report that explain it, empty for a root finding."""
        causes = self.caused_by.get(finding.key, ())
        keys = [{"id": c[0], "namespace": c[1], "object": c[2], "message": c[3]} for c in causes]
        return {**finding.to_dict(), "caused_by": keys}
