"""`-o table` for a run over several clusters: grouped by cluster.

First one row per cluster (examined, or could not run and why; its scope; what it found), then one section per
cluster in the order the user named them, headed by a rule with the cluster's name: an examined cluster's section is
its report exactly as `render.table` draws one cluster's (compact, or detailed with `verbose`), one that could not
run says why. A last line adds the findings of every cluster up. No colour unless asked, as in `render.table`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mlops_trace.findings import Severity
from mlops_trace.fleet_report import ClusterOutcome, ClusterStatus, FleetReport
from mlops_trace.render._common import SEVERITIES_WORST_FIRST, one_line, worst

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

SEVERITY_COLOR = {Severity.CRITICAL: "red", Severity.WARNING: "yellow", Severity.INFO: "blue"}
STATUS_WORDS = {ClusterStatus.EXAMINED: "examined", ClusterStatus.COULD_NOT_RUN: "could not run"}


def render(fleet: FleetReport, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
    from rich.console import Console
    from rich.text import Text

    from mlops_trace.render import render as render_one

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, color_system="standard" if color else None,
        no_color=not color, legacy_windows=False, markup=False, emoji=False, highlight=False, _environ={},
    )
    examined = sum(1 for outcome in fleet.clusters if outcome.report is not None)
    header = Text()
    header.append("mlops-trace doctor", style="bold")
    header.append(f" · {len(fleet.clusters)} clusters: {examined} examined")
    if len(fleet.clusters) - examined:
        header.append(f", {len(fleet.clusters) - examined} could not run", style="bold red")
    console.print(header)
    console.print()
    _print_rows(console, fleet)
    for outcome in fleet.clusters:
        console.print()
        console.rule(Text(f"cluster {one_line(outcome.cluster)}", style="bold"), align="left", style="dim")
        if outcome.report is None:
            console.print(Text.assemble(("could not run: ", "bold red"), one_line(outcome.reason)), overflow="fold")
            continue
        text = render_one(outcome.report, "table", color=color, width=width, verbose=verbose)
        console.print(Text.from_ansi(text.rstrip("\n")) if color else Text(text.rstrip("\n")), overflow="fold")
    console.print()
    console.print(_verdict(fleet))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _print_rows(console: Console, fleet: FleetReport) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    grid.add_column("CLUSTER", no_wrap=True, overflow="fold", max_width=40)
    grid.add_column("STATUS", no_wrap=True)
    grid.add_column("SCOPE", overflow="fold", max_width=24)
    grid.add_column("FOUND", overflow="fold")
    for outcome in fleet.clusters:
        status_style = "green" if outcome.report is not None else "bold red"
        grid.add_row(
            Text(one_line(outcome.cluster), style="cyan"),
            Text(STATUS_WORDS[outcome.status], style=status_style),
            Text(_scope(outcome)),
            _found(outcome),
        )
    console.print(grid)


def _scope(outcome: ClusterOutcome) -> str:
    if outcome.report is None:
        return "-"
    return one_line(outcome.namespace) if outcome.namespace is not None else "as asked (-n/-A)"


def _found(outcome: ClusterOutcome) -> Text:
    from rich.text import Text

    if outcome.report is None:
        return Text(one_line(outcome.reason))
    findings = outcome.report.findings
    if not findings:
        errored = len(outcome.report.errored_checks())
        return Text("no findings" + (f", {errored} checks errored" if errored else ""), style="green")
    counts = {severity: sum(1 for f in findings if f.severity is severity) for severity in SEVERITIES_WORST_FIRST}
    text = Text()
    for severity, count in counts.items():
        if count:
            if text.plain:
                text.append(", ")
            text.append(f"{count} {severity.value}", style=SEVERITY_COLOR[severity])
    return text


def _verdict(fleet: FleetReport) -> Text:
    from rich.text import Text

    findings = fleet.findings()
    counts = ", ".join(
        f"{sum(1 for f in findings if f.severity is severity)} {severity.value}" for severity in SEVERITIES_WORST_FIRST
    )
    examined = sum(1 for outcome in fleet.clusters if outcome.report is not None)
    line = f"all clusters: {counts} · {examined} of {len(fleet.clusters)} examined"
    not_run = len(fleet.clusters) - examined
    if not_run:
        line += f", {not_run} could not run"
    worst_severity = worst(findings)
    style = "bold green" if worst_severity is None and not not_run else "bold " + (
        SEVERITY_COLOR[worst_severity] if worst_severity is not None else "red")
    return Text(line, style=style)
