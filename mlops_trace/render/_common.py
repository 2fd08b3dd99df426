"""Ordering, counting and wording shared by the renderers, so every format tells the same story.

Nothing here formats for one output; it only decides the order of findings, the counts of the verdict line, the path
of a playbook and how untrusted text (log lines, object fields) is made safe to show.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Finding, Report, Severity

CLUSTER_WIDE = "cluster-wide"

SEVERITIES_WORST_FIRST: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))
STATUS_ORDER: tuple[CheckStatus, ...] = (CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.SKIP, CheckStatus.ERROR)

# C0 and C1 control characters except tab and newline: a log line may carry terminal escapes, and we never want a
# report to move the cursor or recolour the user's terminal. Lone surrogates (undecodable bytes) cannot be written
# to a UTF-8 stream at all.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _spelled(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with control characters and lone surrogates spelled out (`\\x1b`, `\\udc80`): seen, not acted upon."""
    return _CONTROL.sub(_spelled, text.replace("\r\n", "\n"))


def one_line(text: str) -> str:
    """`visible(text)` folded onto one line (table cells, headings, list items)."""
    return " ".join(visible(text).split())


def shorten_words(text: str, width: int, measure: Callable[[str], int] = len) -> str:
    """`text` cut to at most `width` (as `measure` counts) at a word boundary, ending in `…` when cut; a first word
    longer than `width` is cut inside (there is no boundary to cut at)."""
    if measure(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    words = text.split(" ")
    kept = ""
    for word in words:
        candidate = f"{kept} {word}" if kept else word
        if measure(candidate) + 1 > width:
            break
        kept = candidate
    if not kept:
        kept = text
        while kept and measure(kept) + 1 > width:
            kept = kept[:-1]
    return kept.rstrip(" ,;:·-—") + "…"


def finding_sort_key(finding: Finding) -> tuple[int, str, str, str]:
    return (-finding.severity.rank, finding.id, finding.namespace or "", finding.object)


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst severity first, then check id, namespace and object; ties keep the report's order."""
    return sorted(findings, key=finding_sort_key)


def namespace_label(namespace: str | None) -> str:
    return CLUSTER_WIDE if namespace is None else namespace


def grouped_by_namespace(findings: Iterable[Finding]) -> list[tuple[str | None, list[Finding]]]:
    """Cluster-wide findings first (they can explain everything below), then namespaces by name."""
    groups: dict[str | None, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.namespace, []).append(finding)
    order = sorted(groups, key=lambda ns: (ns is not None, ns or ""))
    return [(ns, sorted_findings(groups[ns])) for ns in order]


def playbook_path(finding: Finding) -> str:
    """Repository path of the finding's playbook; tolerates a value that already carries the folder or suffix."""
    name = finding.playbook or finding.slug
    name = name.removeprefix("playbooks/").removesuffix(".md")
    return f"playbooks/{name}.md"


def severity_counts(report: Report) -> dict[Severity, int]:
    counted = Counter(f.severity for f in report.findings)
    return {severity: counted.get(severity, 0) for severity in SEVERITIES_WORST_FIRST}


def status_counts(report: Report) -> dict[CheckStatus, int]:
    counted = Counter(c.status for c in report.checks)
    return {status: counted.get(status, 0) for status in STATUS_ORDER}


def findings_by_check(report: Report) -> dict[CheckId, list[Finding]]:
    """Findings of each check id, worst first; ids appear in the order of `sorted_findings`."""
    grouped: dict[CheckId, list[Finding]] = {}
    for finding in sorted_findings(report.findings):
        grouped.setdefault(finding.id, []).append(finding)
    return grouped


def checks_not_run(report: Report) -> list[CheckResult]:
    """Skipped and errored checks, in report order: the ones whose silence proves nothing."""
    return [c for c in report.checks if c.status in (CheckStatus.SKIP, CheckStatus.ERROR)]


def worst(findings: Iterable[Finding]) -> Severity | None:
    severities = [f.severity for f in findings]
    return max(severities, key=lambda s: s.rank) if severities else None


def verdict_line(report: Report) -> str:
    """One line a human or a CI log can grep: `3 critical, 1 warning, 0 info · 17 checks passed, ...`."""
    by_severity = severity_counts(report)
    by_status = status_counts(report)
    severities = ", ".join(f"{by_severity[s]} {s.value}" for s in SEVERITIES_WORST_FIRST)
    return (
        f"{severities} · {by_status[CheckStatus.PASS]} checks passed, {by_status[CheckStatus.FAIL]} failed, "
        f"{by_status[CheckStatus.SKIP]} skipped, {by_status[CheckStatus.ERROR]} errored"
    )


def no_findings_line(report: Report) -> str:
    """What to say instead of a list of findings, without claiming health that skipped checks could not prove."""
    not_run = len(checks_not_run(report))
    if not report.checks:
        return "No findings: no checks ran."
    if not_run:
        verb = "was" if not_run == 1 else "were"
        return f"No findings, but {not_run} of {len(report.checks)} checks {verb} skipped or errored (see below)."
    return f"No findings: all {len(report.checks)} checks passed."


def explain_command(finding: Finding) -> str:
    """The command that prints the finding's playbook from any installation (a repository path only helps in a
    checkout)."""
    return f"mlops-trace checks explain {playbook_path(finding).removeprefix('playbooks/').removesuffix('.md')}"
