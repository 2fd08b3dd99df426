"""MT102 scheduler-route-thrash: the scheduler keeps removing and rebuilding the same routes (the experiment
setup/sync cycle), so Envoy's routes are in flux and requests fall into the gaps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from mlops_trace.analysis.check import make_check
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import LogRecord, iter_records
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT102",
    slug="scheduler-route-thrash",
    title="Scheduler keeps removing and rebuilding the same routes",
    severity=Severity.CRITICAL,
    requires=("logs:scheduler",),
    reads=(),
    playbook="scheduler-split-brain",
    fix="Stop the source of repeated model events: remove the second scheduler or controller, fix flapping server "
    "replicas, or stop re-applying the Models; then the experiment's routes stay put.",
    explained_by=("MT101", "MT113"),
)

MIN_REMOVALS = 3  # one model update removes a route once or twice; three quick removals are a loop
MAX_GAP_SECONDS = 60.0
EVIDENCE_LINES = 3
_MESSAGE_LIMIT = 200

# v2.9.1 and earlier print "Remove routes", later versions "Remove Routes".
_REMOVE = re.compile(r"remove routes for model (\S+)", re.IGNORECASE)
_SETUP = re.compile(r"trying to setup experiment for (\S+)", re.IGNORECASE)
_SYNC = re.compile(r"experiment (\S+) sync - calling for (?:model|pipeline) (\S+)", re.IGNORECASE)
# Text each pattern above cannot match without: only lines holding one are read and parsed (scheduler logs get large).
_NEEDLES = ("remove routes for model", "trying to setup experiment for", " sync - calling for ")


@dataclass
class _Removal:
    lineno: int
    time: datetime | None
    message: str


@dataclass
class _LogScan:
    removals: dict[str, list[_Removal]] = field(default_factory=dict)
    experiment_lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Churn:
    route: str
    run: tuple[_Removal, ...]
    total: int


def run(snap: Snapshot) -> Iterator[Finding]:
    for log in snap.logs_of(Role.SCHEDULER):
        finding = _judge(log, _scan(log))
        if finding is not None:
            yield finding


def _scan(log: LogSource) -> _LogScan:
    scan = _LogScan()
    for record in iter_records(log.lines_mentioning(_NEEDLES)):
        text = _text(record)
        removed = _REMOVE.search(text)
        if removed is not None:
            route = _clean(removed.group(1))
            scan.removals.setdefault(route, []).append(_Removal(record.lineno, record.time, _short(text)))
            continue
        if _SETUP.search(text) is not None or _SYNC.search(text) is not None:
            scan.experiment_lines.append((record.lineno, _short(text)))
    return scan


def _judge(log: LogSource, scan: _LogScan) -> Finding | None:
    churned: list[_Churn] = []
    for route, removals in sorted(scan.removals.items()):
        run = _longest_run(removals)
        if len(run) < MIN_REMOVALS:
            continue
        first, last = run[0].lineno, run[-1].lineno
        # The thrash signature interleaves the removals with experiment setup/sync lines; removals alone are a
        # model that flaps, not this loop.
        if not any(first <= lineno <= last for lineno, _ in scan.experiment_lines):
            continue
        churned.append(_Churn(route, tuple(run), len(removals)))
    if not churned:
        return None
    described = ", ".join(f"{c.route} ({len(c.run)} removals{_span(c.run)})" for c in churned)
    message = (
        f"Scheduler {log.pod} keeps removing and re-adding routes: {described}, interleaved with experiment "
        "setup/sync lines. Envoy's routes for these names are rebuilt continuously; requests in the gaps get 404."
    )
    evidence: list[Evidence] = []
    for churn in churned:
        evidence += [Evidence(log.where(r.lineno), r.message) for r in churn.run[:EVIDENCE_LINES]]
    first_line = churned[0].run[0].lineno
    experiment = next(((n, t) for n, t in scan.experiment_lines if n >= first_line), None)
    if experiment is not None:
        evidence.append(Evidence(log.where(experiment[0]), experiment[1]))
    return CHECK.finding(namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence)


def _longest_run(removals: list[_Removal]) -> list[_Removal]:
    """The longest stretch of removals whose consecutive gaps are at most MAX_GAP_SECONDS (unknown times join)."""
    best: list[_Removal] = []
    current: list[_Removal] = []
    for removal in removals:
        if current and _gap_too_long(current[-1], removal):
            current = []
        current.append(removal)
        if len(current) > len(best):
            best = list(current)
    return best


def _gap_too_long(before: _Removal, after: _Removal) -> bool:
    if before.time is None or after.time is None:
        return False
    if (before.time.tzinfo is None) != (after.time.tzinfo is None):
        return False
    return abs((after.time - before.time).total_seconds()) > MAX_GAP_SECONDS


def _span(run: tuple[_Removal, ...]) -> str:
    start, end = run[0].time, run[-1].time
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return ""
    return f" in {int(abs((end - start).total_seconds()))}s"


def _text(record: LogRecord) -> str:
    return record.message if record.message else record.raw


def _clean(name: str) -> str:
    return name.strip().strip("\"',;")


def _short(text: str) -> str:
    return evidence_line(text, _MESSAGE_LIMIT)
