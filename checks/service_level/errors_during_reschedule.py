"""MT405 errors-during-reschedule: Envoy answered 503 for a model (flags `UH` no healthy upstream, `UF` upstream
connection failure, `URX` retries exhausted) while the scheduler was moving or scaling that model's replicas: its log
says `Updating state for model <m> to <state>`, `Sending load model request for <m>` or `Sending unload model
request for <m>:<v>` (scheduler/pkg/agent/server.go, seldon-core v2.7-v2.10) within a margin of the 503. The
requests fell into the gap between a replica going away and Envoy's cluster catching up; a 503 outside every such
window is another problem and is not reported here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.objectives import DEFAULT_RESCHEDULE_MARGIN_S
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    envoy_access_logs,
    lua_effective_headers,
    model_of_cluster,
    unversioned,
)
from mlops_trace.analysis.timeline import Window, utc, windows_around
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access
from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT405",
    slug="errors-during-reschedule",
    title="Envoy answered 503 while the scheduler rescheduled the model",
    severity=Severity.WARNING,
    requires=("envoy:access", "logs:scheduler"),
    reads=(),
    playbook="reschedule-errors",
    fix="Scale Models and Servers so a replica stays available through the change (minReplicas >= 2 on the Model, "
    "Server replicas above Model replicas), drain server pods before they stop, and retry idempotent inference "
    "calls on 503 in the client.",
)

SAMPLES = 3
RESCHEDULE_FLAGS = frozenset({"UH", "UF", "URX"})
# The scheduler's per-model lines of a replica change (agent/server.go; same wording v2.7.0-v2.10.2 and HEAD).
_EVENTS = (
    re.compile(r"updating state for model (\S+) to (\S+)", re.IGNORECASE),
    re.compile(r"sending load model request for (\S+)", re.IGNORECASE),
    re.compile(r"sending unload model request for (\S+?)(?::\d+)?(?=\s|$|\")", re.IGNORECASE),
)
_NEEDLES = ("updating state for model", "sending load model request", "sending unload model request")


@dataclass
class _Event:
    time: datetime
    where: str
    what: str


@dataclass
class _Hit:
    model: str
    namespace: str
    window: Window
    lines: list[Evidence] = field(default_factory=list)
    count: int = 0


def run(snap: Snapshot, *, reschedule_margin_s: float = DEFAULT_RESCHEDULE_MARGIN_S) -> Iterator[Finding]:
    margin = timedelta(seconds=reschedule_margin_s)
    events, untimed = _scheduler_events(snap)
    if not events and untimed:
        raise SkipCheck(
            f"{untimed} scheduler line(s) of model replica changes carry no time, so 503s cannot be placed in them"
        )
    windows = {key: windows_around([e.time for e in found], margin) for key, found in events.items()}
    hits: dict[tuple[str, str, Window], _Hit] = {}
    for log in envoy_access_logs(snap):
        for record in envoy_access.iter_records(log.lines_mentioning(sorted(RESCHEDULE_FLAGS))):
            if record.status != 503 or not RESCHEDULE_FLAGS & set(record.response_flags) or record.time is None:
                continue
            placed = _place(record, log.namespace, windows)
            if placed is None:
                continue
            model, window = placed
            hit = hits.setdefault((log.namespace, model, window), _Hit(model, log.namespace, window))
            hit.count += 1
            if len(hit.lines) < SAMPLES:
                hit.lines.append(Evidence(log.where(record.lineno), evidence_line(record.raw)))
    for (namespace, model, window), hit in sorted(hits.items(), key=lambda item: (item[0][0], item[0][1], item[0][2].start)):
        yield _finding(hit, [e for e in events[(namespace, model)] if window.holds(e.time)], reschedule_margin_s)


def _scheduler_events(snap: Snapshot) -> tuple[dict[tuple[str, str], list[_Event]], int]:
    """Per (namespace, model): the scheduler's replica-change lines with their times; and how many lines had none."""
    events: dict[tuple[str, str], list[_Event]] = {}
    untimed = 0
    for log in snap.logs_of(Role.SCHEDULER):
        for record in iter_records(log.lines_mentioning(_NEEDLES)):
            text = f"{record.message} {' '.join(record.fields.values())}"
            match = next((m for pattern in _EVENTS if (m := pattern.search(text)) is not None), None)
            if match is None:
                continue
            if record.time is None:
                untimed += 1
                continue
            model = unversioned(match.group(1).strip("\"'"))
            events.setdefault((log.namespace, model), []).append(
                _Event(utc(record.time), log.where(record.lineno), evidence_line(record.message))
            )
    return events, untimed


def _model_of(record: EnvoyAccessRecord) -> str | None:
    """The model a 503 was for: the upstream cluster (`<m>_<v>_http`) when the line names it, else `seldon-model`
    or the REST path's model name (Seldon's default access format has neither cluster nor header)."""
    if record.upstream_cluster:
        model = model_of_cluster(record.upstream_cluster)
        if model is not None:
            return model
    path = record.path or ""
    value = lua_effective_headers(path, record.headers, path.startswith("/inference.")).get(SELDON_MODEL)
    if value and "." not in value:
        return unversioned(value)
    return None


def _place(
    record: EnvoyAccessRecord, namespace: str, windows: dict[tuple[str, str], list[Window]]
) -> tuple[str, Window] | None:
    """(model, window) a 503 falls in: its own model's window; a line that names no model only when exactly one
    model of the namespace was being rescheduled then."""
    assert record.time is not None
    model = _model_of(record)
    if model is not None:
        window = next((w for w in windows.get((namespace, model), []) if w.holds(record.time)), None)
        return (model, window) if window is not None else None
    candidates = [
        (key[1], window)
        for key, found in windows.items()
        if key[0] == namespace
        for window in found
        if window.holds(record.time)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _finding(hit: _Hit, events: list[_Event], margin_s: float) -> Finding:
    window = hit.window
    span = (window.last - window.first).total_seconds()
    more = f" (showing {SAMPLES})" if hit.count > len(hit.lines) else ""
    shown = events[:2] + (events[-1:] if len(events) > 2 else [])
    return CHECK.finding(
        namespace=hit.namespace,
        object=f"Model/{hit.model}",
        message=f"Envoy answered {hit.count} request(s){more} for model {hit.model} with 503 (UH/UF/URX) while the "
        f"scheduler changed its replicas ({len(events)} state line(s) over {span:g} s from "
        f"{window.first.isoformat()}, margin {margin_s:g} s): requests fell into the gap of the reschedule",
        evidence=[*hit.lines, *(Evidence(event.where, event.what) for event in shown)],
    )
