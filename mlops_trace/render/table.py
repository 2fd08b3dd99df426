"""`-o table`: the report for a human at a terminal (rich), the default when stdout is a TTY.

Findings come grouped by namespace (cluster-wide first), worst first, each with its evidence, the one-line fix and the
command that prints its playbook (`mlops-trace checks explain NAME`). Then the checks that did not run and why, the
input files that could not be used, and a last line with the verdict. Colour is opt-in (`color=True`); without it the
text has no escape codes at all, so it can be piped, diffed and stored as a golden file.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mlops_trace.findings import CheckStatus, Finding, Report, Severity
from mlops_trace.render._common import (
    checks_not_run,
    grouped_by_namespace,
    namespace_label,
    no_findings_line,
    one_line,
    playbook_path,
    status_counts,
    verdict_line,
    visible,
    worst,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

SEVERITY_STYLE: dict[Severity, str] = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "blue",
}
STATUS_STYLE: dict[CheckStatus, str] = {
    CheckStatus.PASS: "green",
    CheckStatus.FAIL: "red",
    CheckStatus.SKIP: "yellow",
    CheckStatus.ERROR: "bold red",
}
_SEVERITY_LABEL_WIDTH = max(len(s.value) for s in Severity)


def render(report: Report, *, color: bool = False, width: int = 120) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        legacy_windows=False,
        markup=False,
        emoji=False,
        highlight=False,
        # The environment (COLUMNS, NO_COLOR, TERM, ...) must not change the output: the caller decided already.
        _environ={},
    )
    _print_header(console, report)
    _print_findings(console, report)
    _print_checks(console, report)
    _print_input_problems(console, report)
    _print_verdict(console, report)
    # Padding and grids fill lines with spaces up to the width; trailing blanks only get in the way of diffs.
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _print_header(console: Console, report: Report) -> None:
    from rich.text import Text

    header = Text()
    header.append("mlops-trace doctor", style="bold")
    header.append(f" · source: {one_line(report.source)}")
    console.print(header)


def _print_findings(console: Console, report: Report) -> None:
    from rich.text import Text

    if not report.findings:
        console.print()
        console.print(Text(no_findings_line(report), style="bold green"))
        return
    for namespace, findings in grouped_by_namespace(report.findings):
        console.print()
        noun = "finding" if len(findings) == 1 else "findings"
        console.rule(
            Text(f"{namespace_label(namespace)} · {len(findings)} {noun}", style="bold"), align="left", style="dim"
        )
        for finding in findings:
            console.print()
            _print_finding(console, finding)


def _print_finding(console: Console, finding: Finding) -> None:
    from rich.padding import Padding
    from rich.text import Text

    headline = Text()
    label = finding.severity.value.upper()
    headline.append(label, style=SEVERITY_STYLE[finding.severity])
    headline.append(" " * (_SEVERITY_LABEL_WIDTH - len(label) + 2))
    headline.append(f"{finding.id} {one_line(finding.slug)}", style="bold")
    headline.append("  ")
    headline.append(one_line(finding.object), style="cyan")
    console.print(headline)

    body: list[RenderableType] = [
        Text(one_line(finding.title), style="bold"),
        Text(visible(finding.message)),
    ]
    if finding.evidence:
        body.append(Text("evidence:", style="dim"))
        for item in finding.evidence:
            body.append(Padding(Text(f"• {one_line(item.where)}", style="magenta"), (0, 0, 0, 2), expand=False))
            body.append(Padding(Text(visible(item.what)), (0, 0, 0, 4), expand=False))
    body.append(Text.assemble(("fix: ", "green"), one_line(finding.fix)))
    body.append(Text.assemble(("playbook: ", "dim"), _explain_command(finding)))
    for part in body:
        console.print(Padding(part, (0, 0, 0, _SEVERITY_LABEL_WIDTH + 2), expand=False))


def _explain_command(finding: Finding) -> str:
    """The command that prints the playbook from any installation; a repository path only helps in a checkout."""
    name = playbook_path(finding).removeprefix("playbooks/").removesuffix(".md")
    return f"mlops-trace checks explain {name}"


def _print_checks(console: Console, report: Report) -> None:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    counts = status_counts(report)
    console.print()
    summary = Text.assemble(("checks: ", "bold"))
    summary.append(
        f"{counts[CheckStatus.PASS]} passed, {counts[CheckStatus.FAIL]} failed, "
        f"{counts[CheckStatus.SKIP]} skipped, {counts[CheckStatus.ERROR]} errored ({len(report.checks)} total)"
    )
    console.print(summary)
    not_run = checks_not_run(report)
    if not not_run:
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for check in not_run:
        grid.add_row(
            Text(check.status.value, style=STATUS_STYLE[check.status]),
            Text(f"{check.id} {one_line(check.slug)}"),
            Text(one_line(check.reason) or "(no reason given)"),
        )
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def _print_input_problems(console: Console, report: Report) -> None:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    if not report.input_problems:
        return
    console.print()
    console.print(Text(f"input problems: {len(report.input_problems)}", style="bold"))
    grid = Table.grid(padding=(0, 2))
    for problem in report.input_problems:
        grid.add_row(Text(one_line(problem.path), style="magenta"), Text(one_line(problem.reason)))
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def _print_verdict(console: Console, report: Report) -> None:
    from rich.text import Text

    worst_severity = worst(report.findings)
    style = "bold green" if worst_severity is None else f"bold {SEVERITY_STYLE[worst_severity].split()[-1]}"
    console.print()
    console.print(Text(verdict_line(report), style=style))
