"""Text of a `request --count` run: the verdict first (requests, successes, the client's total percentiles, the
slowest hop by mean), then one line per hop. Percentiles only where every request has its own value; a hop whose
duration is a run mean (MLServer's metric over many inferences, and the agent's share computed from it) shows that
mean alone, never as p50 = p95 = p99. The time no hop explains is its own line. Then errors by hop, the A/B split
(or that no answer named a candidate), findings and notes; sources in full and the first request traced in full only
with `--evidence`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from mlops_trace.trace.attribution import HEADER_RESOLUTION_MS, NGINX_RESOLUTION_MS
from mlops_trace.trace.record import HopStats, HopStatus, HopTiming, RunSummary, SourceKind, SplitReport
from mlops_trace.trace.render_common import (
    Paint,
    finding_lines,
    metric_owner,
    ms_text,
    note_lines,
    share_text,
    source_label,
    status_text,
    untimed_label,
    wrap,
)
from mlops_trace.trace.render_evidence import probe_text
from mlops_trace.trace.render_trace import NAME_WIDTH, render_trace

NUMBER_WIDTH = 5
COUNT_WIDTH = 5
_COLUMNS = ("p50", "p95", "p99", "mean")


# When the first request did not time a hop the others timed, its resolution is the attribution's for that hop.
_RESOLUTION_BY_HOP = {2: NGINX_RESOLUTION_MS, 4: HEADER_RESOLUTION_MS, 6: HEADER_RESOLUTION_MS}


def _like(stats: HopStats, first: Mapping[int, HopTiming]) -> HopTiming:
    """The hop as a waterfall row carrying this run's source, for the source's short name and resolution: the first
    request's row says of which kind the source is and whether it is per request. When the first request did not
    time the hop, the source's words say it: a mean or a median is not per request."""
    row = first.get(stats.hop)
    if row is not None and row.duration_ms is not None:
        return dataclasses.replace(row, source=stats.source, duration_ms=stats.mean,
                                   untimed_reason=stats.untimed_reason)
    per_request = "mean over" not in stats.source and "median" not in stats.source
    status = row.status if row is not None and stats.samples == 0 else HopStatus.OK
    return HopTiming(stats.hop, stats.name, stats.component, stats.mean, stats.source, SourceKind.NONE,
                     untimed_reason=stats.untimed_reason, status=status,
                     resolution_ms=_RESOLUTION_BY_HOP.get(stats.hop), per_request=per_request)



def _cells(stats: HopStats, row: HopTiming) -> tuple[list[str], str]:
    """p50, p95, p99, mean at the source's resolution, and the source's few words. A run mean (or one request)
    has no percentiles; a hop no successful request timed has nothing."""
    resolution = row.resolution_ms
    if stats.samples == 0:
        reason = untimed_label(row) if stats.untimed_reason else "no successful request timed it"
        return ["—", "—", "—", "—"], reason
    mean = ms_text(stats.mean, resolution)
    label = source_label(row)
    if not row.per_request:
        return ["", "", "", mean], f"{metric_owner(row)} run mean" if row.source_kind is SourceKind.METRIC else label
    if stats.samples == 1:
        return ["", "", "", mean], label
    return [ms_text(value, resolution) for value in (stats.p50, stats.p95, stats.p99)] + [mean], label


def _line(mark: str, number: str, name: str, cells: Sequence[str], count: str, source: str, width: int) -> list[str]:
    numbers = " ".join(f"{cell:>{NUMBER_WIDTH}}" for cell in cells)
    head = f"{mark}{number:>1}  {name:<{NAME_WIDTH}}  {numbers} {count:>{COUNT_WIDTH}}  "
    source_lines = wrap(source, width - len(head)) if source else [""]
    return [(head + source_lines[0]).rstrip()] + [" " * len(head) + more for more in source_lines[1:]]


def _timed_mean_per_request(summary: RunSummary) -> float | None:
    """The mean over successful requests of the sum of the timed hops: each hop's mean weighted by the share of
    requests it timed (a connect happens once per connection, not once per request)."""
    latency = summary.latency or {}
    count = latency.get("count")
    if not isinstance(count, int | float) or count <= 0:
        return None
    return sum((hop.mean or 0.0) * hop.samples for hop in summary.hops if hop.samples) / float(count)


def hop_table(summary: RunSummary, width: int, paint: Paint) -> list[str]:
    first = {row.hop: row for row in summary.first.hops} if summary.first is not None else {}
    header = " ".join(f"{column:>{NUMBER_WIDTH}}" for column in _COLUMNS)
    lines = [paint(f"{'#':>2}  {'hop (ms)':<{NAME_WIDTH}}  {header} {'n':>{COUNT_WIDTH}}  source", "bold")]
    for stats in summary.hops:
        row = _like(stats, first)
        cells, source = _cells(stats, row)
        lines += _line(" ", str(stats.hop), stats.name, cells, str(stats.samples), source, width)
    latency = summary.latency or {}
    total_mean = latency.get("mean")
    timed = _timed_mean_per_request(summary)
    unexplained = (
        float(total_mean) - timed if isinstance(total_mean, int | float) and timed is not None else None
    )
    lines += _line(" ", "", "unexplained", ["", "", "", ms_text(unexplained)], "", "total − timed hops",
                   width)
    totals = [latency.get(key) for key in ("p50", "p95", "p99", "mean")]
    count = latency.get("count")
    lines += _line(
        " ", "", "total", [ms_text(float(v)) if isinstance(v, int | float) else "—" for v in totals],
        str(count) if count is not None else "0", "client: request → answer", width,
    )
    return lines


def verdict_lines(summary: RunSummary, width: int, paint: Paint) -> list[str]:
    ok = summary.succeeded == summary.count
    head = f"{summary.count} requests · {summary.succeeded} ok ({100.0 * summary.success_rate:.1f}%)"
    latency = summary.latency
    if latency is not None:
        head += " · total " + " · ".join(
            f"{key} {ms_text(float(value))}" for key in ("p50", "p95", "p99")
            if isinstance(value := latency.get(key), int | float)
        ) + " ms"
    else:
        head += " · no successful request to time"
    lines = wrap(head, width, indent="  ", first_indent="")
    lines[0] = paint(lines[0], "green" if ok else "red")
    first = {row.hop: row for row in summary.first.hops} if summary.first is not None else {}
    resolutions = {hop.hop: _like(hop, first).resolution_ms or 0.0 for hop in summary.hops}
    timed = [hop for hop in summary.hops
             if hop.samples and hop.mean is not None and hop.mean > 0 and hop.mean >= resolutions[hop.hop]]
    rate = f"{summary.count / summary.duration_s:.0f} req/s" if summary.duration_s > 0 else "—"
    tail = f"{rate}, concurrency {summary.concurrency}, {summary.duration_s:.2f} s"
    if summary.errors:
        hop_name, outcomes = max(summary.errors.items(), key=lambda item: sum(item[1].values()))
        outcome, count = max(outcomes.items(), key=lambda item: item[1])
        text = f"most failed at {hop_name}: {outcome} ×{count}"
        lines += wrap(f"{text} · {tail}", width, indent="  ", first_indent="")
    elif timed:
        slowest = max(timed, key=lambda hop: hop.mean or 0.0)
        resolution = resolutions[slowest.hop] or None
        total_mean = latency.get("mean") if latency is not None else None
        share = share_text(slowest.mean, float(total_mean) if isinstance(total_mean, int | float) else None,
                           resolution)
        text = f"slowest hop: {slowest.name} mean {ms_text(slowest.mean, resolution)} ms" + (
            f" ({share} of the mean total)" if share else "")
        lines += wrap(f"{text} · {tail}", width, indent="  ", first_indent="")
    else:
        lines += wrap(f"no hop timed · {tail}", width, indent="  ", first_indent="")
    return lines


def _error_lines(errors: Mapping[str, Mapping[str, int]], width: int, paint: Paint) -> list[str]:
    lines: list[str] = []
    for hop_name, outcomes in errors.items():
        text = f"errors at {hop_name}: " + ", ".join(f"{outcome} ×{count}" for outcome, count in outcomes.items())
        wrapped = wrap(text, width, indent="  ", first_indent="")
        wrapped[0] = paint(wrapped[0], "red")
        lines += wrapped
    return lines


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.1f}%"


def _weights(split: SplitReport) -> str:
    parts = []
    for name, weights in ((split.labels.expected, split.expected), (split.labels.envoy, split.envoy)):
        if weights:
            parts.append(f"{name} " + ", ".join(f"{key} {_pct(value)}" for key, value in sorted(weights.items())))
    return "; ".join(parts) or "weights unknown"


def split_lines(split: SplitReport, width: int, paint: Paint) -> list[str]:
    total = sum(split.observed.values())
    labels = split.labels
    if total == 0:
        return wrap(f"{labels.title}: no successful answer named a {labels.candidate}, so there is no split to show "
                    f"(weights: {_weights(split)})", width, indent="  ", first_indent="")
    name_width = max(len(labels.candidate), *(len(key) for key in split.observed))
    # widths: the label, at least as wide as a share ("100.0%") or the old fixed columns
    expected_width, envoy_width = max(len(labels.expected), 10), max(len(labels.envoy), 6)
    lines = [paint(f"{labels.candidate:<{name_width}}  {labels.expected:>{expected_width}}  "
                   f"{labels.envoy:>{envoy_width}}  {'observed':>12}  95% CI", "bold")]
    for key in sorted(split.observed):
        count = split.observed[key]
        interval = split.intervals.get(key)
        ci = f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}%" if interval is not None else "—"
        observed = f"{count} ({100.0 * count / total:.1f}%)"
        lines.append(f"{key:<{name_width}}  {_pct(split.expected.get(key)):>{expected_width}}  "
                     f"{_pct(split.envoy.get(key)):>{envoy_width}}  {observed:>12}  {ci}")
    verdict = {True: paint("consistent", "green"), False: paint("inconsistent", "red"), None: "not tested"}[
        split.consistent]
    p_text = f"p = {split.p_value:.4g}" if split.p_value is not None else "no p-value"
    text = f"split vs {split.reference} weights: {verdict} ({split.method}, {p_text})"
    if split.sequential:
        text += f"; sequential test: {split.sequential}"
    return lines + wrap(text, width, indent="  ", first_indent="")


def _sources_in_full(summary: RunSummary, width: int) -> list[str]:
    lines: list[str] = []
    for stats in summary.hops:
        what = stats.source if stats.samples else f"why no time: {stats.untimed_reason or 'no successful request'}"
        lines += wrap(f"{stats.hop} {stats.name}: {what}", width, indent="      ", first_indent="")
        if stats.probe_ms is not None:
            lines += wrap(probe_text(stats.probe_ms, None), width, indent="      ", first_indent="    ")
    return lines


def _first_line(summary: RunSummary, width: int) -> list[str]:
    first = summary.first
    if first is None:
        return []
    total = f"{ms_text(first.total_ms)} ms" if first.total_ms is not None else "no total"
    text = (f"first request {first.exchange.request_id}: {status_text(first.exchange)} in {total} "
            "· -v traces it in full")
    return wrap(text, width, indent="  ", first_indent="")


def render_summary(summary: RunSummary, *, width: int = 120, color: bool = False, evidence: bool = False) -> str:
    paint = Paint(color)
    lines = verdict_lines(summary, width, paint) + hop_table(summary, width, paint)
    lines += _error_lines(summary.errors, width, paint)
    if summary.split is not None:
        lines += split_lines(summary.split, width, paint)
    lines += finding_lines(summary.findings, width, paint)
    lines += note_lines(summary.notes, width, paint)
    if not evidence:
        lines += _first_line(summary, width)
        text = "\n".join(lines) + "\n"
        return text
    lines += ["", paint("hop sources", "bold")] + _sources_in_full(summary, width)
    text = "\n".join(lines) + "\n"
    if summary.first is not None:
        text += "\n" + paint("first request, traced in full", "bold") + "\n"
        text += render_trace(summary.first, width=width, color=color, evidence=True)
    return text
