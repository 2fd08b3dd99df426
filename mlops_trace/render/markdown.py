"""`-o markdown`: a GitHub-flavoured markdown report to paste into an issue, a PR comment or a CI job summary.

A summary table of findings, one section per finding (message, evidence, fix, playbook), a table of checks and the
input problems. Text from the cluster (messages, log lines) is escaped so that it shows as written: it cannot open a
link, a tag or emphasis, and a `|` in it cannot split a table row.
"""

from __future__ import annotations

import re

from mlops_trace.findings import Finding, Report
from mlops_trace.render._common import (
    CLUSTER_WIDE,
    explain_command,
    namespace_label,
    no_findings_line,
    one_line,
    sorted_findings,
    verdict_line,
    visible,
)

# Every character that can start inline markup (emphasis, code, links, autolinks, HTML, entities, strikethrough),
# plus `|` (table cells) and `#` (closing sequence of a heading). CommonMark lets any ASCII punctuation be escaped.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~#!])")
# What makes a paragraph's first characters a block (list item, heading underline, ordered list).
_BLOCK_START = re.compile(r"^([-+=]|\d+(?=[.)]))")


def render(report: Report) -> str:
    lines: list[str] = ["# mlops-trace doctor report", ""]
    lines += [f"**Source:** {_code(report.source)}", "", f"**Verdict:** {_text(verdict_line(report))}", ""]
    lines += _findings_part(report)
    lines += _checks_part(report)
    lines += _input_problems_part(report)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _findings_part(report: Report) -> list[str]:
    lines = ["## Findings", ""]
    if not report.findings:
        return lines + [_text(no_findings_line(report)), ""]
    findings = sorted_findings(report.findings)
    lines += _table(
        ("id", "severity", "namespace", "object", "title"),
        [(f.id, f.severity.value, namespace_label(f.namespace), f.object, f.title) for f in findings],
    )
    for finding in findings:
        lines += _finding_section(finding)
    return lines


def _finding_section(finding: Finding) -> list[str]:
    where = CLUSTER_WIDE if finding.namespace is None else f"namespace {_code(finding.namespace)}"
    lines = [
        f"### {_text(f'{finding.id} {finding.slug} · {finding.object}')}",
        "",
        f"**{finding.severity.value}** · {where} · object {_code(finding.object)}",
        "",
        f"**{_text(finding.title)}**",
        "",
        _paragraph(finding.message),
        "",
    ]
    if finding.evidence:
        lines += ["**Evidence**", ""]
        for item in finding.evidence:
            if "\n" in item.what.strip("\n"):
                lines.append(f"- {_code(item.where)}:")
                lines += ["", *_fenced(item.what, indent="  ")]
            elif item.what.strip():
                lines.append(f"- {_code(item.where)}: {_text(item.what)}")
            else:
                lines.append(f"- {_code(item.where)}")
        lines.append("")
    lines += [
        f"**Fix:** {_text(finding.fix)}",
        "",
        f"**Playbook:** `{explain_command(finding)}`",
        "",
    ]
    return lines


def _checks_part(report: Report) -> list[str]:
    lines = ["## Checks", ""]
    if not report.checks:
        return lines + ["No checks ran.", ""]
    return lines + _table(
        ("id", "status", "reason"),
        [(f"{c.id} {c.slug}", c.status.value, c.reason) for c in report.checks],
    )


def _input_problems_part(report: Report) -> list[str]:
    if not report.input_problems:
        return []
    lines = ["## Input problems", ""]
    lines += [f"- {_code(p.path)}: {_text(p.reason)}" for p in report.input_problems]
    return lines + [""]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = [_row(header), _row(tuple("---" for _ in header))]
    lines += [_row(tuple(_text(cell) for cell in row)) for row in rows]
    return lines + [""]


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _text(text: str) -> str:
    """`text` on one line with every markdown-significant character escaped (also safe inside a table cell)."""
    return _INLINE_SPECIAL.sub(r"\\\1", one_line(text))


def _paragraph(text: str) -> str:
    """`_text`, and its start cannot turn the paragraph into a list item or a heading underline."""
    escaped = _text(text)
    match = _BLOCK_START.match(escaped)
    if match is None:
        return escaped
    marker = match.group()
    if marker.isdigit():
        return f"{marker}\\{escaped[len(marker) :]}"
    return f"\\{escaped}"


def _code(text: str) -> str:
    """`text` as an inline code span on one line; the fence is longer than any run of backticks inside."""
    content = one_line(text)
    if not content:
        return "(empty)"
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * (longest + 1)
    if content.startswith("`") or content.endswith("`"):
        content = f" {content} "
    return f"{fence}{content}{fence}"


def _fenced(text: str, *, indent: str) -> list[str]:
    """A multi-line evidence excerpt as a fenced code block, shown verbatim (control characters spelled out)."""
    body = visible(text).strip("\n").splitlines()
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{indent}{fence}text", *(f"{indent}{line}".rstrip() for line in body), f"{indent}{fence}"]
