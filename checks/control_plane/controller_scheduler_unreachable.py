"""MT104 controller-scheduler-unreachable: the controller manager keeps failing to reach or subscribe to a scheduler,
so Model/Experiment changes never reach it and CR status goes stale."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.seldon import controller_workloads
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.parsers.logs import LogRecord, iter_records
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT104",
    slug="controller-scheduler-unreachable",
    title="Controller manager cannot reach the scheduler",
    severity=Severity.CRITICAL,
    requires=("logs:controller",),
    reads=("kube:Deployment", "kube:Experiment", "kube:Model", "kube:Pipeline", "kube:Server"),
    playbook="scheduler-connectivity",
    fix="Make seldon-scheduler.<namespace>:9004 reachable from the controller: run the local scheduler or add the "
    "seldon-scheduler ExternalName alias, and allow the traffic in NetworkPolicies (env vars on the controller do "
    "nothing on v2.6+).",
    explained_by=("MT103", "MT201"),
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
    code: str | None = None  # the gRPC status code in the line's error, when it has one
    logger: str | None = None
    error: str = ""

    @property
    def fatal(self) -> bool:
        """A failure whose gRPC status no retry changes (the scheduler, or a proxy in front of it, refuses)."""
        return self.kind is Kind.FAILURE and self.code in _NON_TRANSIENT


# (needle, label); matched case-insensitively on the message.
_FAILURES = (
    ("failed to connect to scheduler", "Failed to connect to scheduler"),
    ("scheduler not ready", "Scheduler not ready"),
    ("failed smoke test on scheduler", "Failed smoke test on scheduler"),
    ("subscribe ended for", "Subscribe ended"),
    # A subscription stream that broke: operator/scheduler/{model,server,experiment}.go (v2.5+, and control_plane.go
    # in v2.8.x-v2.9.x) log `event recv failed`, pipeline.go `failed to receive pipeline event`, each with the gRPC
    # status in `error`.
    ("event recv failed", "event recv failed"),
    ("failed to receive pipeline event", "failed to receive pipeline event"),
)
_RECV = frozenset({"event recv failed", "failed to receive pipeline event"})
# A subscription stream that broke comes back silently or with events that name no namespace; a failed connection or
# smoke test only counts as mended by a `Connected`/`Starting event handling` line for the same namespace.
_STREAM = frozenset({"Scheduler not ready", "Subscribe ended"}) | _RECV
# gRPC statuses that retrying cannot change: one line is enough. `RBAC: access denied` (PermissionDenied) is a mesh
# authorization policy refusing the controller; Unauthenticated is mTLS or a token; Unimplemented and InvalidArgument
# are a scheduler of another version or something else answering on :9004. Unavailable, Canceled, DeadlineExceeded
# and the rest also happen while a scheduler restarts, so they count only when they repeat.
_NON_TRANSIENT = frozenset({"PermissionDenied", "Unauthenticated", "Unimplemented", "InvalidArgument"})
_GRPC_CODE = re.compile(r"\bcode = ([A-Za-z]+)")
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
            event = replace(event, key=logger_namespace[record.logger])
        elif event.key is None and event.kind is Kind.SUCCESS:
            owner = _owner_namespace(record, owners)
            if owner is not None:
                event = replace(event, key=owner)
        if _repeats_recv_failure(event, events):
            continue
        events.append(event)
    named = {e.key for e in events if e.key is not None}
    if len(named) == 1:
        # A controller that talks to one scheduler: every line is about it, also those that do not name it.
        only = next(iter(named))
        events = [replace(e, key=only) for e in events]
    return _drop_failed_connects(events)


def _repeats_recv_failure(event: _Event, events: list[_Event]) -> bool:
    """v2.8+ retries a broken stream with a backoff whose notify logs `Scheduler not ready` with the very error the
    stream's `event recv failed` line just logged: one failure, written twice. The first line is the one kept."""
    if event.label != "Scheduler not ready" or not event.error or event.logger is None:
        return False
    for earlier in reversed(events):
        if earlier.logger != event.logger:
            continue
        return earlier.label in _RECV and earlier.error == event.error
    return False


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
            error = record.fields.get("error") or record.fields.get("err") or ""
            code = _GRPC_CODE.search(error or record.raw)
            return _Event(
                record.lineno,
                Kind.FAILURE,
                label,
                _key(record),
                _describe(record),
                code.group(1) if code else None,
                record.logger,
                error,
            )
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
    # A refused stream is only mended by events arriving on a stream: `Connected to scheduler` and `Starting event
    # handling` come before any stream is opened (≤v2.7 dials again after every broken stream), so they prove nothing.
    unpinned_stream = max((e.lineno for e in events if _on_stream(e) and e.key is None), default=0)
    # A log whose only scheduler lines are failures: nothing says the controller ever got through.
    nothing_worked = not any(e.kind is Kind.SUCCESS for e in events)
    for key in keys:
        # Lines that name no namespace are judged against every success.
        mine = [e for e in events if e.kind is Kind.SUCCESS and (key is None or e.key == key)]
        own = max((e.lineno for e in mine), default=0)
        own_stream = max((e.lineno for e in mine if _on_stream(e)), default=0)
        after = [
            e
            for e in events
            if e.kind is Kind.FAILURE
            and e.key == key
            and e.lineno > own
            and (e.label not in _STREAM or e.lineno > unpinned)
        ]
        refused = [e for e in events if e.fatal and e.key == key and e.lineno > max(own_stream, unpinned_stream)]
        failures = sorted(set(after) | set(refused), key=lambda e: e.lineno)
        hard = [e for e in after if e.label == "Failed to connect to scheduler"]
        if not refused and not hard and len(after) < MIN_FAILURES and not (nothing_worked and after):
            continue
        first = failures[0].lineno
        last_success = max(
            (
                e.lineno
                for e in events
                if e.kind is Kind.SUCCESS
                and e.lineno < first
                and (key is None or e.key == key or (e.key is None and all(f.label in _STREAM for f in failures)))
            ),
            default=0,
        )
        yield _finding(snap, log, key, failures, refused, last_success, events)


def _on_stream(event: _Event) -> bool:
    return event.kind is Kind.SUCCESS and event.label == "stream event"


def _finding(
    snap: Snapshot,
    log: LogSource,
    key: str | None,
    failures: list[_Event],
    refused: list[_Event],
    last_success: int,
    events: list[_Event],
) -> Finding:
    labels = sorted({f.label for f in failures})
    target = f"seldon-scheduler.{key}:9004" if key else "its scheduler"
    since = f"since the last success at line {last_success}" if last_success else "and never succeeded in this log"
    scope = f"of namespace {key} " if key else ""
    changes = f"Model, Server and Experiment changes {scope}do not reach the scheduler"
    fix = None
    if refused:
        codes = ", ".join(sorted({e.code for e in refused if e.code}))
        message = (
            f"Controller {log.pod}'s subscription to {target} is refused with gRPC {codes} "
            f"({len(refused)} line(s) {since}, first at line {refused[0].lineno}): no retry changes that answer, so "
            f"{changes} and the resources' status is not updated."
        )
        fix = (
            "Let the controller through to seldon-scheduler:9004: `RBAC: access denied` is a service-mesh "
            "authorization policy (e.g. an Istio AuthorizationPolicy) on the scheduler; Unauthenticated is "
            "control-plane mTLS or credentials; Unimplemented means something other than a matching scheduler "
            "answers on :9004."
        )
    else:
        message = (
            f"Controller {log.pod} failed {len(failures)} time(s) to reach {target} {since} "
            f"({', '.join(labels)}): {changes}."
        )
    evidence = [Evidence(log.where(f.lineno), f.text) for f in failures[:EVIDENCE_LINES]]
    if len(failures) > EVIDENCE_LINES:
        tail = failures[-1]
        evidence.append(Evidence(log.where(tail.lineno), f"(last of {len(failures)}) {tail.text}"))
    success = next((e for e in reversed(events) if e.lineno == last_success), None)
    if success is not None:
        evidence.insert(0, Evidence(log.where(success.lineno), f"last success: {success.text}"))
    return CHECK.finding(namespace=key, object=_object(snap, log), message=message, evidence=evidence, fix=fix)


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
