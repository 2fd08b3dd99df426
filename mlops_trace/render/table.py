"""`-o table`: the report for a human at a terminal (rich), the default when stdout is a TTY.

By default the view is compact: one line per finding (`SEVERITY  MTxxx slug  namespace/object  message…`, wrapped
only between those parts and the message shortened at a word boundary), a finding that another explains indented
under it (`└ because of the above: …`, links from `analysis.causes`), the commands that print the playbooks, a
one-line summary and the verdict. `verbose=True` (`doctor -v`) gives the detailed view: findings grouped by
namespace (cluster-wide first), worst first, each with its evidence, what explains it, the one-line fix and its
playbook command; then every check (`✔` passed, `×` failed, `-` skipped, `!` errored, with the reason), the input
files that could not be used, and the verdict. Colour is opt-in (`color=True`); without it the text has no escape
codes at all, so it can be piped, diffed and stored as a golden file.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mlops_trace.analysis.causes import CauseLinks, CauseNode, causal_forest, link
from mlops_trace.findings import CheckResult, CheckStatus, Finding, Report, Severity
from mlops_trace.render._common import (
    grouped_by_namespace,
    namespace_label,
    no_findings_line,
    one_line,
    playbook_path,
    shorten_words,
    sorted_findings,
    status_counts,
    verdict_line,
    visible,
    worst,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

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
STATUS_MARK: dict[CheckStatus, str] = {
    CheckStatus.PASS: "✔",
    CheckStatus.FAIL: "×",
    CheckStatus.SKIP: "-",
    CheckStatus.ERROR: "!",
}
_SEVERITY_LABEL_WIDTH = max(len(s.value) for s in Severity)
_INDENT = _SEVERITY_LABEL_WIDTH + 2  # where a finding's text starts, under its id
_MIN_MESSAGE = 24  # a message squeezed into fewer columns says nothing; it gets a line of its own
_BECAUSE = "└ because of the above:"


def render(report: Report, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
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
    links = link(report.findings)
    _print_header(console, report)
    if verbose:
        _print_findings(console, report, links)
        _print_checks(console, report)
        _print_input_problems(console, report)
    else:
        _print_compact(console, report, links)
    _print_verdict(console, report)
    # Padding and grids fill lines with spaces up to the width; trailing blanks only get in the way of diffs.
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _print_header(console: Console, report: Report) -> None:
    from rich.text import Text

    header = Text()
    header.append("mlops-trace doctor", style="bold")
    header.append(f" · source: {one_line(report.source)}")
    console.print(header)


# --- compact view -------------------------------------------------------------------------------------------------


class _Flow:
    """Lays parts out on lines of at most `width` cells, breaking only between parts; continuation lines start at
    `indent`. A part wider than a whole line is left to rich, which folds it."""

    def __init__(self, width: int, first_indent: int, indent: int) -> None:
        from rich.text import Text

        self.width = width
        self.indent = indent
        self.lines: list[Text] = [Text(" " * first_indent)]
        self.fresh = True  # the current line holds only its indent

    def add_label(self, label: str, style: str) -> None:
        """A severity or status word at the start of a line, padded (unstyled) to the width of the longest."""
        self.add(label, style)
        self.lines[-1].append(" " * (_SEVERITY_LABEL_WIDTH - len(label)))

    def add(self, part: str, style: str = "", sep: str = "  ") -> None:
        from rich.cells import cell_len

        if not self.fresh and self.lines[-1].cell_len + len(sep) + cell_len(part) > self.width:
            self.newline()
        if not self.fresh:
            self.lines[-1].append(sep)
        self.lines[-1].append(part, style=style)
        self.fresh = False

    def newline(self) -> None:
        from rich.text import Text

        self.lines.append(Text(" " * self.indent))
        self.fresh = True

    def room(self, sep: str = "  ") -> int:
        return self.width - self.lines[-1].cell_len - (0 if self.fresh else len(sep))

    def add_shortened(self, text: str, style: str = "") -> None:
        """`text` on the current line if a useful part of it fits there, else on a line of its own; cut at a word
        boundary to what is left of the line."""
        from rich.cells import cell_len

        if self.room() < _MIN_MESSAGE and not self.fresh:
            self.newline()
        self.add(shorten_words(text, max(self.room(), 1), cell_len), style)


def _where(finding: Finding) -> str:
    """`namespace/Kind/name`, or `Kind/name` for a cluster-wide finding."""
    obj = one_line(finding.object)
    return obj if finding.namespace is None else f"{one_line(finding.namespace)}/{obj}"


def _print_compact(console: Console, report: Report, links: CauseLinks) -> None:
    from rich.text import Text

    console.print()
    if report.findings:
        for root in causal_forest(sorted_findings(report.findings), links):
            _print_root(console, root)
    else:
        console.print(Text(no_findings_line(report), style="bold green"))
    errored = [c for c in report.checks if c.status is CheckStatus.ERROR]
    if errored:
        console.print()
        for check in errored:
            _print_lines(console, _errored_line(check, console.width))
    playbooks = _playbook_names(report)
    console.print()
    for index, name in enumerate(playbooks):
        flow = _Flow(console.width, 0, 11)
        flow.add("playbooks:" if index == 0 else " " * 10, "dim")
        flow.add(f"mlops-trace checks explain {name}", sep=" ")
        _print_lines(console, flow.lines)
    _print_lines(console, _summary(report, links, console.width))


def _print_root(console: Console, root: CauseNode) -> None:
    finding = root.finding
    flow = _Flow(console.width, 0, _INDENT)
    flow.add_label(finding.severity.value.upper(), SEVERITY_STYLE[finding.severity])
    flow.add(f"{finding.id} {one_line(finding.slug)}", "bold")
    flow.add(_where(finding), "cyan")
    flow.add_shortened(one_line(finding.message))
    _print_lines(console, flow.lines)
    for effect in root.effects:
        _print_effect(console, effect, _INDENT)


def _print_effect(console: Console, node: CauseNode, indent: int) -> None:
    finding = node.finding
    flow = _Flow(console.width, indent, indent + 2)
    flow.add(_BECAUSE, "dim")
    flow.add(f"{finding.id} {one_line(finding.slug)}", "bold", sep=" ")
    flow.add(_where(finding), "cyan")
    flow.add_shortened(one_line(finding.message))
    _print_lines(console, flow.lines)
    for effect in node.effects:
        _print_effect(console, effect, indent + 2)


def _errored_line(check: CheckResult, width: int) -> list[Text]:
    flow = _Flow(width, 0, _INDENT)
    flow.add_label("error", STATUS_STYLE[check.status])
    flow.add(f"{check.id} {one_line(check.slug)}", "bold")
    flow.add_shortened(one_line(check.reason) or "(no reason given)")
    return flow.lines


def _playbook_names(report: Report) -> list[str]:
    """Each playbook once, in the order of the findings that name it."""
    names: list[str] = []
    for finding in sorted_findings(report.findings):
        name = _playbook_name(finding)
        if name not in names:
            names.append(name)
    return names


def _summary(report: Report, links: CauseLinks, width: int) -> list[Text]:
    counts = status_counts(report)
    found = len(report.findings)
    parts = [f"{found} finding{'' if found == 1 else 's'}"] if found else []
    explained = sum(1 for finding in report.findings if finding.key in links.causes)
    if explained:
        parts[0] += f" ({explained} explained by another)"
    if counts[CheckStatus.SKIP]:
        parts.append(f"{counts[CheckStatus.SKIP]} check{'' if counts[CheckStatus.SKIP] == 1 else 's'} skipped")
    if counts[CheckStatus.ERROR]:
        parts.append(f"{counts[CheckStatus.ERROR]} errored")
    if report.input_problems:
        problems = len(report.input_problems)
        parts.append(f"{problems} input problem{'' if problems == 1 else 's'}")
    parts.append("-v for evidence, fixes and every check" if found else "-v for every check")
    flow = _Flow(width, 0, 0)
    for index, part in enumerate(parts):
        flow.add(part, "dim" if index == len(parts) - 1 else "", sep=" · ")
    return flow.lines


def _print_lines(console: Console, lines: list[Text]) -> None:
    for line in lines:
        console.print(line, overflow="fold")


# --- detailed view (-v) -------------------------------------------------------------------------------------------


def _print_findings(console: Console, report: Report, links: CauseLinks) -> None:
    from rich.text import Text

    if not report.findings:
        console.print()
        console.print(Text(no_findings_line(report), style="bold green"))
        return
    by_key = {finding.key: finding for finding in report.findings}
    for namespace, findings in grouped_by_namespace(report.findings):
        console.print()
        noun = "finding" if len(findings) == 1 else "findings"
        console.rule(
            Text(f"{namespace_label(namespace)} · {len(findings)} {noun}", style="bold"), align="left", style="dim"
        )
        for finding in findings:
            console.print()
            causes = [by_key[key] for key in links.causes.get(finding.key, ()) if key in by_key]
            _print_finding(console, finding, causes)


def _print_finding(console: Console, finding: Finding, causes: list[Finding]) -> None:
    from rich.padding import Padding
    from rich.text import Text

    headline = _Flow(console.width, 0, _INDENT)
    headline.add_label(finding.severity.value.upper(), SEVERITY_STYLE[finding.severity])
    headline.add(f"{finding.id} {one_line(finding.slug)}", "bold")
    headline.add(one_line(finding.object), "cyan")
    _print_lines(console, headline.lines)

    body: list[RenderableType] = [
        Text(one_line(finding.title), style="bold"),
        Text(visible(finding.message)),
    ]
    for cause in causes:
        body.append(Text.assemble(("because of: ", "dim"), f"{cause.id} {one_line(cause.slug)}  {_where(cause)}"))
    if finding.evidence:
        body.append(Text("evidence:", style="dim"))
        for item in finding.evidence:
            body.append(Padding(Text(f"• {one_line(item.where)}", style="magenta"), (0, 0, 0, 2), expand=False))
            body.append(Padding(Text(visible(item.what)), (0, 0, 0, 4), expand=False))
    body.append(Text.assemble(("fix: ", "green"), one_line(finding.fix)))
    body.append(Text.assemble(("playbook: ", "dim"), _explain_command(finding)))
    for part in body:
        console.print(Padding(part, (0, 0, 0, _INDENT), expand=False))


def _playbook_name(finding: Finding) -> str:
    return playbook_path(finding).removeprefix("playbooks/").removesuffix(".md")


def _explain_command(finding: Finding) -> str:
    """The command that prints the playbook from any installation; a repository path only helps in a checkout."""
    return f"mlops-trace checks explain {_playbook_name(finding)}"


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
    if not report.checks:
        return
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for check in report.checks:
        grid.add_row(Text(STATUS_MARK[check.status], style=STATUS_STYLE[check.status]), _check_text(check))
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def _check_text(check: CheckResult) -> Text:
    from rich.text import Text

    name = f"{check.id} {one_line(check.slug)}"
    if check.status is CheckStatus.PASS:
        return Text(name)
    if check.status is CheckStatus.FAIL:
        return Text(f"{name}: {one_line(check.reason)}" if check.reason else name)
    verb = "skipped" if check.status is CheckStatus.SKIP else "errored"
    return Text(f"{name} {verb}: {one_line(check.reason) or '(no reason given)'}")


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

