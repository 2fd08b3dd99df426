"""The `--evidence` part of a traced request's text: what the compact waterfall names in a few words, in full —
the client's phases, each hop's component, source sentence (or why it has none), probe estimate and evidence lines,
what the unexplained time holds, and the evidence of a failure. Words are never broken; a path longer than the
line gets a line of its own.
"""

from __future__ import annotations

from mlops_trace.trace.record import HopTiming, TraceResult
from mlops_trace.trace.render_common import ms_text, wrap

_INDENT = "    "
_MORE = "      "


def _phases(result: TraceResult) -> str:
    phases = result.exchange.phases
    parts = [
        f"{name} {ms_text(value)}"
        for name, value in (
            ("dns", phases.dns_ms),
            ("connect", phases.connect_ms),
            ("tls", phases.tls_ms),
            ("send", phases.send_ms),
            ("wait", phases.wait_ms),
            ("receive", phases.receive_ms),
        )
        if value is not None
    ]
    text = "client phases (ms): " + (" · ".join(parts) if parts else "none measured")
    return text + (" · connection reused" if phases.reused_connection else "")


def probe_text(probe_ms: float, source: str | None) -> str:
    """A differential probe is a difference of two medians: below zero it says the hop is lost in their noise."""
    where = f" ({source})" if source else ""
    if probe_ms < 0:
        return f"probe: ≈0 ms, below the probes' noise{where}"
    return f"probe: {ms_text(probe_ms)} ms{where}"


def _hop(hop: HopTiming, width: int) -> list[str]:
    lines = wrap(f"{hop.hop} {hop.name}: {hop.component}", width, indent=_MORE, first_indent="")
    if hop.duration_ms is not None:
        resolution = f" (resolution {hop.resolution_ms:g} ms)" if hop.resolution_ms else ""
        kind = "" if hop.per_request else " — a run mean, not this request's own time"
        lines += wrap(f"source: {hop.source}{resolution}{kind}", width, indent=_MORE, first_indent=_INDENT)
    else:
        lines += wrap(f"why no time: {hop.untimed_reason or 'no source covers it'}", width, indent=_MORE,
                      first_indent=_INDENT)
    if hop.probe_ms is not None:
        lines += wrap(probe_text(hop.probe_ms, hop.probe_source), width, indent=_MORE, first_indent=_INDENT)
    for item in hop.evidence:
        lines += wrap(f"{item.where}: {item.what}", width, indent=_MORE, first_indent=_INDENT)
    return lines


def evidence_lines(result: TraceResult, width: int) -> list[str]:
    exchange = result.exchange
    lines = wrap(_phases(result), width, indent=_INDENT, first_indent="")
    lines += wrap(f"url {exchange.url} · traceparent {exchange.traceparent}", width, indent=_INDENT, first_indent="")
    if exchange.error:
        lines += wrap(f"error: {exchange.error}", width, indent=_INDENT, first_indent="")
    for hop in result.hops:
        lines += _hop(hop, width)
    unexplained = result.unexplained_ms
    if unexplained is not None and unexplained < 0:
        lines += wrap(
            f"unexplained: the timed hops exceed the client total by {ms_text(-unexplained)} ms: their 1 ms clocks "
            "round, so the remainder is ≈0",
            width, indent=_MORE, first_indent="",
        )
    lines += wrap(f"unexplained: {result.unexplained_source}", width, indent=_MORE, first_indent="")
    if result.failure is not None:
        lines += wrap(f"failure evidence ({result.failure.code}):", width, indent=_MORE, first_indent="")
        for item in result.failure.evidence:
            lines += wrap(f"{item.where}: {item.what}", width, indent=_MORE, first_indent=_INDENT)
    if result.path_source:
        lines += wrap(f"path read from {result.path_source}", width, indent=_MORE, first_indent="")
    return lines
