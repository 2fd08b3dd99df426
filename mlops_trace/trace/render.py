"""Text output of `request`: a rich waterfall of one traced request (a row per hop: component, duration, a bar
proportional to it, source and evidence), and the summary of a run of many (percentiles per hop, errors by hop,
the A/B split). JSON is `TraceResult.to_dict()` / `RunSummary.to_dict()`; this module only draws.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlops_trace.findings import Finding
from mlops_trace.trace.record import HopStatus, RunSummary, TraceResult

if TYPE_CHECKING:
    from rich.console import Console

BAR_WIDTH = 28


def _console(width: int, color: bool) -> tuple[Console, io.StringIO]:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        highlight=False,
        force_terminal=color,
        no_color=not color,
        emoji=False,
    )
    return console, buffer


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def bars(durations: Sequence[float | None], total: float | None, width: int = BAR_WIDTH) -> list[str]:
    """Waterfall bars: each timed duration is a run of blocks proportional to it, starting where the previous timed
    one ended; an untimed hop gets an empty lane, a negative one (clock resolution) a single dot."""
    timed_sum = sum(d for d in durations if d is not None and d > 0)
    scale_total = max(total or 0.0, timed_sum)
    scale = width / scale_total if scale_total > 0 else 0.0
    cursor = 0.0
    lanes: list[str] = []
    for duration in durations:
        if duration is None:
            lanes.append(" " * width)
            continue
        start = round(cursor * scale)
        if duration <= 0:
            lane = " " * min(start, width - 1) + "·"
        else:
            length = max(1, round(duration * scale))
            start = min(start, width - length)
            lane = " " * start + "█" * length
            cursor += duration
        lanes.append(lane.ljust(width)[:width])
    return lanes


def render_trace(result: TraceResult, *, width: int = 120, color: bool = False) -> str:
    from rich.table import Table
    from rich.text import Text

    console, buffer = _console(width, color)
    exchange = result.exchange
    state = "[green]ok[/]" if result.ok else "[red]failed[/]"
    console.print(
        f"[bold]{result.target}[/] via {exchange.url} — {exchange.outcome()} {state} in {_fmt(result.total_ms)} ms"
        f" ({exchange.http_version or result.protocol.value})"
    )
    console.print(f"request id {exchange.request_id} · traceparent {exchange.traceparent}")
    if exchange.route or result.served_model:
        console.print(f"route {exchange.route or '—'} · served by {result.served_model or '—'}")
    phases = exchange.phases
    console.print(
        "client: "
        + " · ".join(
            f"{name} {_fmt(value)} ms"
            for name, value in (
                ("dns", phases.dns_ms),
                ("connect", phases.connect_ms),
                ("tls", phases.tls_ms),
                ("send", phases.send_ms),
                ("wait", phases.wait_ms),
                ("receive", phases.receive_ms),
            )
            if value is not None
        )
        + (" · connection reused" if phases.reused_connection else "")
    )
    table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False, box=None)
    table.add_column("#", justify="right")
    table.add_column("hop")
    table.add_column("component", overflow="fold", max_width=max(24, width // 4))
    table.add_column("ms", justify="right")
    table.add_column("waterfall", no_wrap=True)
    table.add_column("source / evidence", overflow="fold")
    lanes = bars([hop.duration_ms for hop in result.hops] + [result.unexplained_ms], result.total_ms)
    for hop, lane in zip(result.hops, lanes, strict=False):
        marker = {HopStatus.FAILED: "✗ ", HopStatus.NOT_REACHED: "· "}.get(hop.status, "")
        detail = Text(hop.source if hop.duration_ms is not None else f"not timed: {hop.untimed_reason}")
        if hop.probe_ms is not None:
            detail.append(f"\nprobe: {hop.probe_ms:.3f} ms", style="cyan")
        if hop.evidence:
            first = hop.evidence[0]
            detail.append(f"\n{first.where}: {first.what}", style="dim")
        style = "red" if hop.status is HopStatus.FAILED else ("dim" if hop.status is HopStatus.NOT_REACHED else "")
        table.add_row(
            str(hop.hop),
            Text(marker + hop.name, style=style),
            hop.component,
            _fmt(hop.duration_ms),
            Text(lane, style="green" if hop.duration_ms is not None else ""),
            detail,
        )
    table.add_row(
        "",
        "unexplained",
        "",
        _fmt(result.unexplained_ms),
        Text(lanes[-1], style="yellow"),
        Text(result.unexplained_source, style="dim"),
    )
    table.add_row("", Text("total", style="bold"), "", _fmt(result.total_ms), "", "client: request sent → answer read")
    console.print(table)
    if result.failure is not None:
        failure = result.failure
        console.print(
            f"[red]✗ failed at hop {failure.hop}[/] ({result.hops[failure.hop - 1].name}): "
            f"[bold]{failure.code}[/] {failure.summary}"
        )
        for item in failure.evidence[:4]:
            console.print(f"    [dim]{item.where}: {item.what}[/]")
        if failure.checks:
            console.print(f"    why: {', '.join(failure.checks)} (below)")
    _findings(console, result.findings)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    return buffer.getvalue()


def _findings(console: Console, findings: Sequence[Finding]) -> None:
    for finding in findings:
        colour = {"critical": "red", "warning": "yellow"}.get(finding.severity.value, "cyan")
        console.print(
            f"[{colour}]{finding.id} {finding.slug}[/] ({finding.severity.value}) {finding.object}: {finding.message}"
        )
        console.print(f"    fix: {finding.fix}  (playbook: mlops-trace checks explain {finding.playbook})")


def render_summary(summary: RunSummary, *, width: int = 120, color: bool = False) -> str:
    from rich.table import Table

    console, buffer = _console(width, color)
    rate = f"{summary.count / summary.duration_s:.1f} req/s" if summary.duration_s > 0 else "—"
    console.print(
        f"[bold]{summary.count} requests[/] in {summary.duration_s:.2f} s ({rate}, concurrency {summary.concurrency}) — "
        f"success {100.0 * summary.success_rate:.2f}% ({summary.succeeded}/{summary.count})"
    )
    latency = summary.latency
    if latency is not None:
        console.print(
            f"latency ms: p50 {latency['p50']} · p95 {latency['p95']} · p99 {latency['p99']} · "
            f"min {latency['min']} · max {latency['max']}"
        )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column, justify in (
        ("#", "right"),
        ("hop", "left"),
        ("p50", "right"),
        ("p95", "right"),
        ("p99", "right"),
        ("n", "right"),
        ("probe", "right"),
        ("source", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for hop in summary.hops:
        source = hop.source if hop.samples else f"not timed: {hop.untimed_reason}"
        table.add_row(
            str(hop.hop),
            hop.name,
            _fmt(hop.p50),
            _fmt(hop.p95),
            _fmt(hop.p99),
            str(hop.samples),
            _fmt(hop.probe_ms),
            source,
        )
    console.print(table)
    if summary.errors:
        console.print("[bold]errors by hop[/]")
        for hop_name, outcomes in summary.errors.items():
            console.print(f"  {hop_name}: " + ", ".join(f"{outcome} ×{count}" for outcome, count in outcomes.items()))
    split = summary.split
    if split is not None:
        total = sum(split.observed.values())
        table = Table(title="A/B split", show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("candidate", "experiment", "envoy", "observed", "95% CI"):
            table.add_column(column, justify="left" if column == "candidate" else "right")
        for key in sorted(split.observed):
            share = split.observed[key] / total if total else 0.0
            low, high = split.intervals.get(key, (0.0, 1.0))
            table.add_row(
                key,
                _pct(split.expected.get(key)),
                _pct(split.envoy.get(key)),
                f"{split.observed[key]} ({100.0 * share:.1f}%)",
                f"{100 * low:.1f}–{100 * high:.1f}%",
            )
        console.print(table)
        verdict = {True: "[green]consistent[/]", False: "[red]inconsistent[/]", None: "not tested"}[split.consistent]
        p_text = f"p = {split.p_value:.4g}" if split.p_value is not None else "no p-value"
        console.print(
            f"split vs {split.reference} weights: {verdict} ({split.method}, {p_text})"
            + (f"; sequential test: {split.sequential}" if split.sequential else "")
        )
    _findings(console, summary.findings)
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    if summary.first is not None:
        console.print("\n[bold]first request, traced in full[/]")
        buffer.write(render_trace(summary.first, width=width, color=color))
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.1f}%"
