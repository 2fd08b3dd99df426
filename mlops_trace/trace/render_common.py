"""What the `request` text views share: milliseconds printed at their source's resolution (a 1 ms clock never
prints `1.000`, a difference below it never prints negative), short names of sources and of why a hop is untimed,
word wrapping that never breaks a word, colour, and the lines of a finding.
"""

from __future__ import annotations

import http
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlops_trace.findings import Finding
from mlops_trace.trace.record import Exchange, HopStatus, HopTiming, SourceKind

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_INSIDE_HOP = re.compile(r"inside hop (\d)")


@dataclass(frozen=True)
class Paint:
    """ANSI styling, or none: every view builds plain text first and colours whole cells, so widths stay exact."""

    color: bool = False

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not text or style not in _STYLES:
            return text
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"


def ms_text(value: float | None, resolution_ms: float | None = None) -> str:
    """A duration in ms at the precision its source has. With a resolution (1 ms clocks: NGINX's log, Envoy's header)
    whole multiples of it, and `<1` below it — negative differences included, which are the clocks' rounding, not
    time. Without one (the client's socket, MLServer's metric sums) sub-millisecond digits, three significant."""
    if value is None:
        return "—"
    if resolution_ms:
        if value < resolution_ms:
            return f"<{resolution_ms:g}"
        return _trim(round(value / resolution_ms) * resolution_ms)
    if value < 0:
        return "≈0"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def _trim(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def share_text(value: float | None, total: float | None, resolution_ms: float | None = None) -> str:
    """The share of the total a duration is, or empty when it has none (untimed, below its clock's resolution)."""
    if value is None or not total or total <= 0 or value <= 0 or value < (resolution_ms or 0.0):
        return ""
    percent = 100.0 * value / total
    return "<1%" if percent < 1 else f"{percent:.0f}%"


def status_text(exchange: Exchange) -> str:
    """`200 OK`, `404 Not Found`, `grpc UNIMPLEMENTED`, `timeout`: the answer in two or three words."""
    outcome = exchange.outcome()
    if exchange.status is not None and outcome == str(exchange.status):
        try:
            return f"{outcome} {http.HTTPStatus(exchange.status).phrase}"
        except ValueError:
            return outcome
    if exchange.error_kind is not None and exchange.grpc_status is None:
        return f"no answer ({outcome})"
    return outcome


def metric_owner(hop: HopTiming) -> str:
    """Whose metric timed a hop: MLServer's (Seldon) or another model server's (KServe's)."""
    return "MLServer" if hop.source.startswith("MLServer") else "model server"


def source_label(hop: HopTiming) -> str:
    """A few words naming where a timed hop's duration came from; the full sentence is under --evidence."""
    source = hop.source
    mean = "" if hop.per_request else " (run mean)"
    if hop.source_kind is SourceKind.CLIENT or source.startswith("client:"):
        return "client gRPC connect" if "gRPC" in source else "client TCP connect"
    if hop.source_kind is SourceKind.METRIC or source.startswith("MLServer metric"):
        return f"{metric_owner(hop)} metric" + mean
    if hop.source_kind is SourceKind.PROBE or source.startswith("probe"):
        return "direct probe, median"
    if source.startswith("ingress access log"):
        return "NGINX access log"
    if source.startswith("ingress $upstream_response_time - "):
        return "NGINX log − Envoy header"
    if source.startswith("ingress $upstream_response_time"):
        return "NGINX upstream time"
    if source.startswith("Envoy access log"):
        return "Envoy log − header"
    if source.startswith("x-envoy-upstream-service-time - model"):
        # What Envoy waited for beyond the model's own time: the agent, and any queue before the model ran.
        return "header − model (agent, queue)" if hop.per_request else "header − mean model (+queue)"
    if source.startswith("x-envoy-upstream-service-time"):
        return "Envoy header (agent + model)" if "together" in source else "Envoy header"
    return first_clause(source)


def untimed_label(hop: HopTiming) -> str:
    """Why a hop has no duration, in a few words: `inside hop 4`, `not reached`, `connection reused`."""
    reason = hop.untimed_reason or ""
    if hop.status is HopStatus.NOT_REACHED or "did not reach" in reason:
        return "not reached"
    inside = _INSIDE_HOP.search(reason)
    if inside is not None:
        return f"inside hop {inside.group(1)}"
    for needle, label in (
        ("connection was reused", "connection reused"),
        ("no connect phase", "not measured"),
        ("not in the ingress access log", "no ingress log line"),
        ("DNAT", "kernel DNAT, no log"),
        ("no x-envoy-upstream-service-time", "no Envoy header"),
        ("needs ", "no ingress time or header"),
    ):
        if needle in reason:
            return label
    return first_clause(reason) if reason else "not timed"


def first_clause(text: str, limit: int = 28) -> str:
    """The words of `text` before its first `:`, `(` or `;`, cut at a word boundary to about `limit` characters."""
    clause = re.split(r"[:(;]", text, maxsplit=1)[0].strip()
    if len(clause) <= limit:
        return clause
    cut = clause[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def wrap(text: str, width: int, indent: str = "", first_indent: str | None = None) -> list[str]:
    """Lines of at most `width` characters, never breaking a word: a word longer than the line gets a line of its
    own and overflows it."""
    return textwrap.wrap(
        text,
        width=max(width, len(indent) + 8),
        initial_indent=indent if first_indent is None else first_indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def join_parts(parts: Sequence[str], width: int, sep: str = " · ", indent: str = "  ") -> list[str]:
    """`parts` joined by `sep` on as few lines as fit `width`, a part never split from itself unless it alone is
    wider than a line (then it wraps between words)."""
    lines: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{sep}{part}" if current else (indent if lines else "") + part
        if current and len(candidate) > width:
            lines.append(current)
            current = indent + part
        else:
            current = candidate
    if current:
        lines.append(current)
    out: list[str] = []
    for line in lines:
        out += wrap(line.strip(), width, indent=indent, first_indent=line[: len(line) - len(line.lstrip())])
    return out


def finding_lines(findings: Iterable[Finding], width: int, paint: Paint) -> list[str]:
    """Each finding as its id, slug, severity, object and message, then the fix and the playbook hint, wrapped."""
    lines: list[str] = []
    for finding in findings:
        colour = {"critical": "red", "warning": "yellow"}.get(finding.severity.value, "cyan")
        head = f"{finding.id} {finding.slug}"
        text = f"{head} ({finding.severity.value}) {finding.object}: {finding.message}"
        wrapped = wrap(text, width, indent="    ", first_indent="")
        wrapped[0] = wrapped[0].replace(head, paint(head, colour), 1)
        lines += wrapped
        hint = f"fix: {finding.fix}  (playbook: mlops-trace checks explain {finding.playbook})"
        lines += wrap(hint, width, indent="      ", first_indent="    ")
    return lines


def note_lines(notes: Sequence[str], width: int, paint: Paint) -> list[str]:
    lines: list[str] = []
    for note in notes:
        wrapped = wrap(f"note: {note}", width, indent="      ", first_indent="")
        wrapped[0] = wrapped[0].replace("note:", paint("note:", "yellow"), 1)
        lines += wrapped
    return lines
