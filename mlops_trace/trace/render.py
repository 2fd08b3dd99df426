"""Text output of `request`: `render_trace` draws one traced request as a compact waterfall, `render_summary` a run
of many (percentiles where each request has its own value, means where only a run mean exists, errors by hop, the
A/B split). JSON is `TraceResult.to_dict()` / `RunSummary.to_dict()`; these modules only
draw. `_console` and `_findings` print findings through a rich console, for callers that hold one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlops_trace.findings import Finding
from mlops_trace.trace.render_common import Paint, finding_lines
from mlops_trace.trace.render_summary import render_summary
from mlops_trace.trace.render_trace import bars, render_trace

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["bars", "render_summary", "render_trace"]


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


def _findings(console: Console, findings: Sequence[Finding]) -> None:
    for line in finding_lines(findings, console.width, Paint(False)):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
