"""Run checks over a Snapshot and gather a Report.

For each check: if a declared input is missing, `skip` with the reason; otherwise run it. A check that raises
`SkipCheck` is a `skip`; one that crashes is an `error` with the exception named, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlops_trace.analysis.catalog import CatalogEntry
from mlops_trace.analysis.causes import link
from mlops_trace.analysis.check import SkipCheck
from mlops_trace.findings import CheckResult, CheckStatus, Finding, Report
from mlops_trace.snapshot.snapshot import Snapshot, missing_reason


def run_checks(
    snap: Snapshot,
    entries: Iterable[CatalogEntry],
    options: Mapping[str, Any] | None = None,
) -> Report:
    findings: list[Finding] = []
    results: list[CheckResult] = []
    for entry in entries:
        check = entry.check
        missing = [req for req in check.requires if not snap.has(req)]
        if missing:
            reason = "; ".join(missing_reason(snap, req) for req in missing)
            results.append(CheckResult(check.id, check.slug, CheckStatus.SKIP, reason))
            continue
        try:
            produced = _dedupe(entry.run(snap, **_options_for(entry, options or {})))
        except SkipCheck as skip:
            results.append(CheckResult(check.id, check.slug, CheckStatus.SKIP, str(skip)))
            continue
        except Exception as exc:  # a broken check must not take the run down with it
            reason = f"check crashed: {type(exc).__name__}: {exc}"
            results.append(CheckResult(check.id, check.slug, CheckStatus.ERROR, reason))
            continue
        findings.extend(produced)
        status = CheckStatus.FAIL if produced else CheckStatus.PASS
        reason = f"{len(produced)} finding(s)" if produced else ""
        results.append(CheckResult(check.id, check.slug, status, reason))
    findings.sort(key=lambda f: (-f.severity.rank, f.namespace or "", f.id, f.object))
    return Report(
        source=snap.source,
        findings=tuple(findings),
        checks=tuple(results),
        input_problems=tuple(snap.problems),
        caused_by=link(findings).causes,  # every consumer (table, JSON, smoke) sees which finding explains which
    )


def _options_for(entry: CatalogEntry, options: Mapping[str, Any]) -> dict[str, Any]:
    code = entry.run.__code__
    accepted = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
    return {name: options[name] for name in accepted if name in options}


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str | None, str, str]] = set()
    unique: list[Finding] = []
    for finding in findings:
        if finding.key in seen:
            continue
        seen.add(finding.key)
        unique.append(finding)
    return unique
