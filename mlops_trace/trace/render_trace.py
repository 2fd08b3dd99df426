"""Text of one traced request: a compact waterfall. The verdict comes first (the answer, the client's total, the
slowest hop and its share, or where the request died and why), then one line per hop (number, hop, ms at its
source's resolution, share of the total, a bar, a few words of source), the time no source explains on its own line,
and the total. Sources in full, evidence lines, probes and client phases only with `--evidence`.

Every line fits the width without breaking a word: the columns are fixed, the bar takes what the sources leave, and
text that must wrap wraps between words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlops_trace.findings import Finding
from mlops_trace.trace.record import HopStatus, HopTiming, TraceResult
from mlops_trace.trace.render_common import (
    Paint,
    finding_lines,
    first_clause,
    join_parts,
    ms_text,
    note_lines,
    share_text,
    source_label,
    status_text,
    untimed_label,
    wrap,
)

NAME_WIDTH = 18  # the longest hop name: "Kubernetes Service", "server pod / agent"
MS_WIDTH = 6
SHARE_WIDTH = 5
MIN_BAR, MAX_BAR = 8, 32
_GAP = "  "
_CELLS = len(_GAP) + NAME_WIDTH + len(_GAP) + MS_WIDTH + len(_GAP) + SHARE_WIDTH + len(_GAP)  # after the number
_MARK = {HopStatus.FAILED: "✗", HopStatus.NOT_REACHED: "·"}


def bars(durations: Sequence[float | None], total: float | None, width: int) -> list[str]:
    """Waterfall bars: each timed duration is a run of blocks proportional to it, starting where the previous timed
    one ended; an untimed hop gets an empty lane, one at or below zero (a clock's resolution) a single dot."""
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


@dataclass(frozen=True)
class Row:
    """One waterfall line before layout: the cells as plain text, and the bar's duration (None: no bar)."""

    mark: str
    number: str
    name: str
    ms: str
    share: str
    source: str
    bar_ms: float | None
    style: str = ""


def _visible_ms(hop: HopTiming) -> float | None:
    """What the bar draws: nothing for an untimed hop, a dot for a duration below its clock's resolution."""
    if hop.duration_ms is None:
        return None
    if hop.duration_ms < (hop.resolution_ms or 0.0):
        return 0.0
    return hop.duration_ms


def hop_rows(result: TraceResult) -> list[Row]:
    rows: list[Row] = []
    total = result.total_ms
    for hop in result.hops:
        timed = hop.duration_ms is not None
        style = {HopStatus.FAILED: "red", HopStatus.NOT_REACHED: "dim"}.get(hop.status, "")
        rows.append(
            Row(
                mark=_MARK.get(hop.status, " "),
                number=str(hop.hop),
                name=hop.name,
                ms=ms_text(hop.duration_ms, hop.resolution_ms),
                share=share_text(hop.duration_ms, total, hop.resolution_ms),
                source=source_label(hop) if timed else untimed_label(hop),
                bar_ms=_visible_ms(hop),
                style=style,
            )
        )
    unexplained = result.unexplained_ms
    rows.append(
        Row(" ", "", "unexplained", ms_text(unexplained), share_text(unexplained, total),
            "client phases, wire, no log" if unexplained is not None else "no client total",
            None if unexplained is None else max(unexplained, 0.0), "yellow")
    )
    rows.append(Row(" ", "", "total", ms_text(total), "100%" if total else "", "client: request → answer", None,
                    "bold"))
    return rows


def layout(rows: Sequence[Row], total: float | None, width: int, paint: Paint, *, title: str = "waterfall") -> list[str]:
    """The rows as lines of at most `width` characters: the bar gets what the longest source leaves (8 to 32
    columns); a source that still does not fit wraps between words under its column."""
    source_width = max((len(row.source) for row in rows), default=0)
    number_width = max((len(row.number) for row in rows), default=1)  # KServe paths have 12 hops
    name_width = max(NAME_WIDTH, *(len(row.name) for row in rows))
    fixed = 1 + number_width + _CELLS + name_width - NAME_WIDTH
    bar_width = max(MIN_BAR, min(MAX_BAR, width - fixed - len(_GAP) - source_width))
    source_column = fixed + bar_width + len(_GAP)
    lanes = bars([row.bar_ms for row in rows], total, bar_width)
    heading = title if len(title) <= bar_width else "bar"
    lines = [
        paint(f"{'#':>{1 + number_width}}{_GAP}{'hop':<{name_width}}{_GAP}{'ms':>{MS_WIDTH}}{_GAP}{'share':>{SHARE_WIDTH}}{_GAP}"
              f"{heading:<{bar_width}}{_GAP}source".rstrip(), "bold")
    ]
    for row, lane in zip(rows, lanes, strict=True):
        lane_style = "yellow" if row.style == "yellow" else ("red" if row.style == "red" else "green")
        head = (
            f"{row.mark}{row.number:>{number_width}}{_GAP}{paint(f'{row.name:<{name_width}}', row.style)}{_GAP}"
            f"{row.ms:>{MS_WIDTH}}{_GAP}{row.share:>{SHARE_WIDTH}}{_GAP}{paint(lane, lane_style)}{_GAP}"
        )
        source_lines = wrap(row.source, width - source_column) if row.source else [""]
        lines.append((head + source_lines[0]).rstrip())
        lines += [" " * source_column + more for more in source_lines[1:]]
    return lines


def _slowest(result: TraceResult) -> HopTiming | None:
    timed = [
        hop for hop in result.hops
        if hop.duration_ms is not None and hop.duration_ms >= (hop.resolution_ms or 0.0) and hop.duration_ms > 0
    ]
    return max(timed, key=lambda hop: hop.duration_ms or 0.0, default=None)


def verdict_lines(result: TraceResult, width: int, paint: Paint) -> list[str]:
    """The first lines: the answer and the total, then the slowest hop (or where the request died and why)."""
    status = status_text(result.exchange)
    total = f"{ms_text(result.total_ms)} ms" if result.total_ms is not None else "no total"
    failure = result.failure
    if failure is not None:
        hop_name = result.hops[failure.hop - 1].name if 0 < failure.hop <= len(result.hops) else ""
        head = f"{status} · {total} · ✗ failed at hop {failure.hop} {hop_name} ({failure.code})"
        return [*_painted_status(wrap(head, width, indent="  ", first_indent=""), status, "red", paint),
                _why_line(result, width)]
    slowest = _slowest(result)
    colour = "green" if result.ok else "red"
    if slowest is None:
        tail = "no hop timed"
    else:
        ms = ms_text(slowest.duration_ms, slowest.resolution_ms)
        share = share_text(slowest.duration_ms, result.total_ms, slowest.resolution_ms)
        tail = f"slowest: {slowest.name} {ms} ms" + (f" ({share})" if share else "")
    unexplained = result.unexplained_ms
    if slowest is not None and unexplained is not None and unexplained > (slowest.duration_ms or 0.0):
        tail += f" · unexplained {ms_text(unexplained)} ms"
    return _painted_status(wrap(f"{status} · {total} · {tail}", width, indent="  ", first_indent=""), status, colour,
                           paint)


def _painted_status(lines: list[str], status: str, colour: str, paint: Paint) -> list[str]:
    return [paint(status, colour) + lines[0][len(status):], *lines[1:]]


def _why_line(result: TraceResult, width: int) -> str:
    """`why: MT301 slug: message` of the first finding that cites the failed request, else the failure's own words,
    cut at a word to one line (the findings follow in full)."""
    failure = result.failure
    assert failure is not None
    by_id: dict[str, Finding] = {str(finding.id): finding for finding in result.findings}
    cited = [by_id[check] for check in failure.checks if check in by_id]
    if cited:
        first = cited[0]
        more = f" (+{', '.join(f.id for f in cited[1:])})" if len(cited) > 1 else ""
        text = f"why: {first.id} {first.slug}{more}: {first.message}"
    elif failure.checks:
        text = f"why: {', '.join(failure.checks)}: {failure.summary}"
    else:
        text = f"why: {failure.summary}"
    return _one_line(text, width)


def _one_line(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: width - 2].rsplit(" ", 1)[0] + " …"


def context_line(result: TraceResult, width: int) -> list[str]:
    exchange = result.exchange
    served = result.served_model or first_clause(exchange.route or "", 40)
    parts = [f"{result.target}" + (f" → {served}" if served else "")]
    parts.append(exchange.http_version or result.protocol.value)
    parts.append(f"id {exchange.request_id}")
    return join_parts(parts, width)


def render_trace(result: TraceResult, *, width: int = 120, color: bool = False, evidence: bool = False) -> str:
    paint = Paint(color)
    lines = verdict_lines(result, width, paint) + context_line(result, width)
    lines += layout(hop_rows(result), result.total_ms, width, paint)
    failure = result.failure
    if failure is not None:
        lines += wrap(f"at hop {failure.hop}: {failure.summary}", width, indent="  ", first_indent="")
    lines += finding_lines(result.findings, width, paint)
    # Probes are evidence: their own notes (a probe that failed) wait for --evidence like the probes do.
    probe_notes = [note for note in result.notes if note.startswith("probe ")]
    shown = result.notes if evidence else tuple(note for note in result.notes if note not in probe_notes)
    lines += note_lines(shown, width, paint)
    if probe_notes and not evidence:
        lines += note_lines([f"{len(probe_notes)} about the differential probes (-v shows them)"], width, paint)
    if evidence:
        from mlops_trace.trace.render_evidence import evidence_lines

        lines += ["", paint("evidence", "bold")] + evidence_lines(result, width)
    else:
        legend = "ms at source resolution; <1: below a 1 ms clock · -v: sources, evidence"
        lines += [paint(line, "dim") for line in wrap(legend, width)]
    return "\n".join(lines) + "\n"
