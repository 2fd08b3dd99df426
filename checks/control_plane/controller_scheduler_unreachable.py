"""MT104 controller-scheduler-unreachable: the controller manager keeps failing to reach or subscribe to a scheduler,
so Model/Experiment changes never reach it and CR status goes stale."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.seldon import controller_workloads
from mlops_trace.model.findings import Evidence, Finding, Severity
from mlops_trace.parsers.logs import LogRecord, iter_records
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT104",
    slug="controller-scheduler-unreachable",
    title="Controller manager cannot reach the scheduler",
    severity=Severity.CRITICAL,
    requires=("logs:controller",),
    playbook="scheduler-connectivity",
    fix="Make seldon-scheduler.<namespace>:9004 reachable from the controller: run the local scheduler or add the "
    "seldon-scheduler ExternalName alias, and allow the traffic in NetworkPolicies (env vars on the controller do "
    "nothing on v2.6+).",
)

MIN_FAILURES = 2  # one retry while the scheduler starts is normal
EVIDENCE_LINES = 4
_MESSAGE_LIMIT = 200

_NS = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_SCHEDULER_HOST = re.compile(rf"seldon-scheduler\.({_NS})\b", re.IGNORECASE)


class Kind(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class _Event:
    lineno: int
    kind: Kind
    label: str  # which log string it was
    key: str | None  # the namespace whose scheduler the line is about, when the line says
    text: str


# (needle, label); matched case-insensitively on the message.
_FAILURES = (
    ("failed to connect to scheduler", "Failed to connect to scheduler"),
    ("scheduler not ready", "Scheduler not ready"),
    ("failed smoke test on scheduler", "Failed smoke test on scheduler"),
    ("subscribe ended for", "Subscribe ended"),
)
# A subscription stream that broke comes back silently or with events that name no namespace; a failed connection or
# smoke test only counts as mended by a `Connected`/`Starting event handling` line for the same namespace.
_STREAM = frozenset({"Scheduler not ready", "Subscribe ended"})
_SUCCESSES = (
    ("connected to scheduler", "Connected to scheduler"),
    ("starting event handling", "Starting event handling"),
    # Events arriving on the subscription streams: proof that they work again after a retry.
    ("received control plane event", "stream event"),
    ("handled control plane event", "stream event"),
    ("sent notify server to scheduler", "stream event"),
    ("received event", "stream event"),
)


# Lines that say which namespace a subscription logger is (re)connecting for: the `Scheduler not ready` lines that
# follow on the same logger name no namespace themselves (the operator logs only the error), so they inherit it.
_CONTEXT = ("retrying to connect", "subscribe ended for", "dialing scheduler", "connecting to scheduler")
# Fields of stream events that name a Seldon resource, which tells the namespace when the name is unique.
_RESOURCE_FIELDS = (
    ("name", ("Model", "Server")),
    ("model", ("Model",)),
    ("experiment", ("Experiment",)),
    ("pipeline", ("Pipeline",)),
    ("server", ("Server",)),
)


def run(snap: Snapshot) -> Iterator[Finding]:
    owners = _resource_namespaces(snap)
    for log in snap.logs_of(Role.CONTROLLER):
        yield from _judge(snap, log, _events(log, owners))


def _resource_namespaces(snap: Snapshot) -> dict[tuple[str, str], set[str]]:
    owners: dict[tuple[str, str], set[str]] = {}
    for kind in ("Model", "Server", "Experiment", "Pipeline"):
        for obj in snap.objects_of(kind):
            if obj.namespace:
                owners.setdefault((kind, obj.name), set()).add(obj.namespace)
    return owners


def _events(log: LogSource, owners: dict[tuple[str, str], set[str]]) -> list[_Event]:
    events: list[_Event] = []
    logger_namespace: dict[str, str] = {}
    for record in iter_records(log.lines()):
        event = _classify(record)
        message = (record.message or record.raw).lower()
        line_namespace = _key(record)
        if line_namespace is not None and record.logger and any(needle in message for needle in _CONTEXT):
            logger_namespace[record.logger] = line_namespace
        if event is None:
            continue
        if event.key is None and event.kind is Kind.FAILURE and record.logger in logger_namespace:
            event = _Event(event.lineno, event.kind, event.label, logger_namespace[record.logger], event.text)
        elif event.key is None and event.kind is Kind.SUCCESS:
            owner = _owner_namespace(record, owners)
            if owner is not None:
                event = _Event(event.lineno, event.kind, event.label, owner, event.text)
        events.append(event)
    named = {e.key for e in events if e.key is not None}
    if len(named) == 1:
        # A controller that talks to one scheduler: every line is about it, also those that do not name it.
        only = next(iter(named))
        events = [_Event(e.lineno, e.kind, e.label, only, e.text) for e in events]
    return _drop_failed_connects(events)


def _owner_namespace(record: LogRecord, owners: dict[tuple[str, str], set[str]]) -> str | None:
    """The namespace of the resource a stream event names, when only one namespace has a resource of that name."""
    for field_name, kinds in _RESOURCE_FIELDS:
        resource = record.fields.get(field_name)
        if not resource:
            continue
        found: set[str] = set()
        for kind in kinds:
            found |= owners.get((kind, resource), set())
        if len(found) == 1:
            return next(iter(found))
    return None


def _classify(record: LogRecord) -> _Event | None:
    message = (record.message or record.raw).lower()
    for needle, label in _FAILURES:
        if needle in message:
            return _Event(record.lineno, Kind.FAILURE, label, _key(record), _describe(record))
    for needle, label in _SUCCESSES:
        if needle in message:
            return _Event(record.lineno, Kind.SUCCESS, label, _key(record), _describe(record))
    return None


def _key(record: LogRecord) -> str | None:
    namespace = record.fields.get("namespace")
    if namespace:
        return namespace
    for name in ("host", "error", "err"):
        found = _SCHEDULER_HOST.search(record.fields.get(name, ""))
        if found:
            return found.group(1).lower()
    found = _SCHEDULER_HOST.search(record.raw)
    return found.group(1).lower() if found else None


def _drop_failed_connects(events: list[_Event]) -> list[_Event]:
    """`Connected to scheduler` only means the client was created; a smoke-test failure right after it undoes it."""
    kept: list[_Event] = []
    for event in events:
        if event.label == "Failed smoke test on scheduler":
            for index in range(len(kept) - 1, -1, -1):
                earlier = kept[index]
                if earlier.key == event.key and earlier.label == "Connected to scheduler":
                    del kept[index]
                    break
                if earlier.key == event.key and earlier.kind is Kind.SUCCESS:
                    break
        kept.append(event)
    return kept


def _judge(snap: Snapshot, log: LogSource, events: list[_Event]) -> Iterator[Finding]:
    keys = sorted({e.key for e in events if e.kind is Kind.FAILURE}, key=lambda k: (k is None, k or ""))
    unpinned = max((e.lineno for e in events if e.kind is Kind.SUCCESS and e.key is None), default=0)
    for key in keys:
        # Lines that name no namespace are judged against every success.
        own = max((e.lineno for e in events if e.kind is Kind.SUCCESS and (key is None or e.key == key)), default=0)
        after = [
            e
            for e in events
            if e.kind is Kind.FAILURE
            and e.key == key
            and e.lineno > own
            and (e.label not in _STREAM or e.lineno > unpinned)
        ]
        hard = [e for e in after if e.label == "Failed to connect to scheduler"]
        if len(after) < MIN_FAILURES and not hard:
            continue
        yield _finding(
            snap, log, key, after, max(own, unpinned if all(e.label in _STREAM for e in after) else 0), events
        )


def _finding(
    snap: Snapshot, log: LogSource, key: str | None, failures: list[_Event], last_success: int, events: list[_Event]
) -> Finding:
    labels = sorted({f.label for f in failures})
    target = f"seldon-scheduler.{key}:9004" if key else "its scheduler"
    since = f"since the last success at line {last_success}" if last_success else "and never succeeded in this log"
    message = (
        f"Controller {log.pod} failed {len(failures)} time(s) to reach {target} {since} "
        f"({', '.join(labels)}): Model, Server and Experiment changes "
        f"{'of namespace ' + key + ' ' if key else ''}do not reach the scheduler."
    )
    evidence = [Evidence(log.where(f.lineno), f.text) for f in failures[:EVIDENCE_LINES]]
    if len(failures) > EVIDENCE_LINES:
        tail = failures[-1]
        evidence.append(Evidence(log.where(tail.lineno), f"(last of {len(failures)}) {tail.text}"))
    success = next((e for e in reversed(events) if e.lineno == last_success), None)
    if success is not None:
        evidence.insert(0, Evidence(log.where(success.lineno), f"last success: {success.text}"))
    return CHECK.finding(namespace=key, object=_object(snap, log), message=message, evidence=evidence)


def _object(snap: Snapshot, log: LogSource) -> str:
    for dep in controller_workloads(snap):
        if dep.namespace == log.namespace and log.pod.startswith(dep.name + "-"):
            return dep.ref
    return f"Pod/{log.pod}"


def _describe(record: LogRecord) -> str:
    text = record.message or record.raw
    error = record.fields.get("error") or record.fields.get("err")
    if error:
        text = f"{text}: {error}"
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _MESSAGE_LIMIT else one_line[: _MESSAGE_LIMIT - 1] + "…"
