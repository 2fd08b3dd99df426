"""Find one run's requests in the logs a KServe path writes, once, after the run: the Istio gateway pods' access log
(`parsers.logs.istio`; every pass through them: the ingress gateway's, the local gateway's to the entry revision,
and a transformer's call to its predictor), queue-proxy's request log (Knative's `logging.request-log-template`,
whose example prints `traceId` from `X-B3-Traceid`, so each request sends one), and the model server's `kserve.trace`
lines (`parsers.logs.kserve.request_timing`: `requestId: <x-request-id>, preprocess_ms: …`, written with latency
logging on; and the wall time of each predict, written always; kserve 0.21.0 `kserve/model.py`, KSERVE-FACTS §5.2).

A gateway pass is ours when its x-request-id is, or when its User-Agent carries our id: an edge Envoy replaces an
external request's x-request-id unless told to preserve it, never the User-Agent. A pass with the id Envoy gave one
of ours is ours too (a transformer forwards the id it got); a transformer's call without one is matched by time when
exactly one began within the transformer's pass. Files are read from the offsets they had when the run started.
Envoy writes a pass's line when the pass ends (the inner ones first) and flushes on a timer, so `find` polls until
every request has its outermost line or the wait is over."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.analysis.kserve import isvc_of_log
from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.logs import istio as istio_logs
from mlops_trace.parsers.logs import kserve as kserve_logs
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

# kserve/model.py's per-request timing, printed whether or not latency logging is on:
# `kserve.trace kserve.io.v1.models.<m>:predict: 0.0025 ['http_status:200', 'http_method:POST', 'time:wall']`.
_WALL_LINE = re.compile(r"kserve\.trace (?P<route>\S+): (?P<seconds>[-\d.eE+]+) \[.*'time:wall'")
# The request's own id in our User-Agent: an edge Envoy may replace x-request-id (it does unless told to preserve an
# external one: `preserve_external_request_id`), but never the User-Agent.
USER_AGENT = "mlops-trace"
REVISION_LABEL = "serving.knative.dev/revision"
_ROLES = (Role.ISTIO_GATEWAY, Role.QUEUE_PROXY, Role.KSERVE_CONTAINER, Role.TRANSFORMER)


@dataclass(frozen=True)
class GatewayLine:
    where: str
    record: EnvoyAccessRecord


@dataclass(frozen=True)
class QueueLine:
    """A queue-proxy request-log line: `httpRequest.latency` is the time from queue-proxy receiving the request to
    its answer (the container's time and queue-proxy's own)."""

    where: str
    raw: str
    component: str  # predictor / transformer, from the pod
    pod: str
    status: int | None
    latency_ms: float | None
    revision: str | None = None  # the pod's `serving.knative.dev/revision`


@dataclass(frozen=True)
class ServerLine:
    """A model server's `kserve.trace` line: its own handling of the request, in milliseconds."""

    where: str
    raw: str
    component: str
    pod: str
    preprocess_ms: float
    explain_ms: float
    predict_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.explain_ms + self.predict_ms + self.postprocess_ms


@dataclass(frozen=True)
class WallLine:
    """A model server's `kserve.trace <route>: <seconds> [... 'time:wall']` line: one request's handling, no id."""

    where: str
    component: str
    route: str
    ms: float


@dataclass
class RequestLines:
    gateway: list[GatewayLine] = field(default_factory=list)
    queue: list[QueueLine] = field(default_factory=list)
    server: list[ServerLine] = field(default_factory=list)

    def queue_of(self, component: str) -> QueueLine | None:
        return next((line for line in self.queue if line.component == component), None)

    def server_of(self, component: str) -> ServerLine | None:
        return next((line for line in self.server if line.component == component), None)


@dataclass
class KLogs:
    by_request: dict[str, RequestLines] = field(default_factory=dict)
    files: dict[Role, tuple[str, ...]] = field(default_factory=dict)
    walls: list[WallLine] = field(default_factory=list)  # every wall-time line the run's window holds
    by_time: set[str] = field(default_factory=set)  # `where` of gateway lines matched by time, not by an id

    def walls_of(self, component: str) -> list[WallLine]:
        return [line for line in self.walls if line.component == component]

    def of(self, request_id: str) -> RequestLines:
        return self.by_request.get(request_id) or RequestLines()

    def describe(self, role: Role) -> str:
        names = self.files.get(role, ())
        return ", ".join(names) if names else f"no {role.value} log in the snapshot"


def log_sources(snap: Snapshot | None) -> list[LogSource]:
    if snap is None:
        return []
    return [log for role in _ROLES for log in snap.logs_of(role) if not log.previous]


def mark(logs: Iterable[LogSource]) -> dict[Path, int]:
    """Current sizes: where reading starts after the run."""
    offsets: dict[Path, int] = {}
    for log in logs:
        try:
            offsets[log.path] = log.path.stat().st_size
        except OSError:
            offsets[log.path] = 0
    return offsets


def _lines_from(path: Path, offset: int) -> Iterator[tuple[int, str]]:
    """Complete lines from byte `offset` on, numbered in the file; a last line still being written is left."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    if len(data) < offset:  # rotated or truncated since the mark
        offset = 0
    first = data.count(b"\n", 0, offset) + 1
    chunk = data[offset:]
    end = chunk.rfind(b"\n")
    if end < 0:
        return
    for index, line in enumerate(chunk[:end].split(b"\n")):
        yield first + index, line.decode("utf-8", "replace").rstrip("\r")


def _component(snap: Snapshot, log: LogSource) -> str:
    if log.role is Role.TRANSFORMER:
        return "transformer"
    owner = isvc_of_log(snap, log)
    return owner[1] if owner is not None else "predictor"


def _queue_line(where: str, line: str, component: str, pod: str, revision: str | None) -> tuple[str, QueueLine] | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("httpRequest"), dict):
        return None
    trace = str(document.get("traceId") or "").lower()
    request = document["httpRequest"]
    latency = str(request.get("latency") or "").strip()
    latency_ms: float | None = None
    if latency.endswith("s"):
        try:
            latency_ms = round(float(latency[:-1]) * 1000.0, 3)
        except ValueError:
            latency_ms = None
    status = request.get("status")
    return trace, QueueLine(
        where, line, component, pod, int(status) if isinstance(status, int) else None, latency_ms, revision
    )


def _our_id(record: EnvoyAccessRecord, prefix: str) -> str | None:
    if record.request_id is not None and record.request_id.startswith(prefix):
        return record.request_id
    for token in (record.user_agent or "").replace("(", " ").replace(")", " ").split():
        if token.startswith(prefix):
            return token
    return None


def _scan(
    snap: Snapshot,
    log: LogSource,
    offset: int,
    prefix: str,
    traces: Mapping[str, str],
    found: KLogs,
    others: list[GatewayLine],
) -> None:
    component = "" if log.role is Role.ISTIO_GATEWAY else _component(snap, log)
    pod = snap.get("Pod", log.namespace, log.pod)
    revision = pod.labels.get(REVISION_LABEL) if pod is not None else None
    for lineno, line in _lines_from(log.path, offset):
        where = log.where(lineno)
        if log.role is Role.QUEUE_PROXY:
            if '"traceId"' not in line:
                continue
            parsed = _queue_line(where, line, component, log.pod, revision)
            if parsed is not None and parsed[0] in traces:
                found.by_request.setdefault(traces[parsed[0]], RequestLines()).queue.append(parsed[1])
            continue
        if log.role is Role.ISTIO_GATEWAY:
            istio_record = istio_logs.parse_line(lineno, line)
            if istio_record is None:
                continue
            record = istio_record.access
            rid = _our_id(record, prefix) if prefix in line else None
            if rid is not None:
                found.by_request.setdefault(rid, RequestLines()).gateway.append(GatewayLine(where, record))
            else:
                others.append(GatewayLine(where, record))
            continue
        wall = _WALL_LINE.search(line)
        if wall is not None and ("predict" in wall.group("route") or "infer" in wall.group("route")):
            found.walls.append(WallLine(where, component, wall.group("route"), float(wall.group("seconds")) * 1000.0))
            continue
        if prefix not in line:
            continue
        parsed_line = kserve_logs.parse_line(lineno, line)
        timing = kserve_logs.request_timing(parsed_line) if parsed_line is not None else None
        if timing is not None and timing.request_id is not None and timing.request_id.startswith(prefix):
            server = ServerLine(
                where,
                line,
                component,
                log.pod,
                timing.preprocess_ms or 0.0,
                timing.explain_ms or 0.0,
                timing.predict_ms or 0.0,
                timing.postprocess_ms or 0.0,
            )
            found.by_request.setdefault(timing.request_id, RequestLines()).server.append(server)


def _link(found: KLogs, others: list[GatewayLine]) -> None:
    """Gateway passes of a request that carry no id of ours: those with an x-request-id one of its passes had (a
    proxy downstream forwarded the id Envoy gave it), then a transformer's call to its predictor, matched by time when
    exactly one such line began within the transformer's pass."""
    alias = {
        line.record.request_id: rid
        for rid, lines in found.by_request.items()
        for line in lines.gateway
        if line.record.request_id
    }
    left: list[GatewayLine] = []
    for line in others:
        rid = alias.get(line.record.request_id or "")
        if rid is not None:
            found.by_request[rid].gateway.append(line)
        else:
            left.append(line)
    used: set[str] = set()
    for lines in found.by_request.values():
        if any("-predictor." in (g.record.authority or "") for g in lines.gateway):
            continue
        entry = next(
            (
                g
                for g in lines.gateway
                if "-transformer." in (g.record.authority or "")
                and "knative-local-gateway" not in (g.record.upstream_cluster or "")
            ),
            None,
        )
        if entry is None or entry.record.time is None or entry.record.duration_ms is None:
            continue
        start = entry.record.time.timestamp()
        end = start + entry.record.duration_ms / 1000.0
        candidates = [
            g
            for g in left
            if g.where not in used
            and "-predictor." in (g.record.authority or "")
            and g.record.time is not None
            and start <= g.record.time.timestamp() <= end
        ]
        if len(candidates) == 1:
            lines.gateway.append(candidates[0])
            used.add(candidates[0].where)
            found.by_time.add(candidates[0].where)


def is_outer(line: GatewayLine, client_host: str | None) -> bool:
    """The ingress gateway's own pass: to the local gateway (KServe's VirtualService), with the client's Host, or
    answered by Envoy itself (no upstream cluster)."""
    record = line.record
    authority = (record.authority or "").lower()
    authority = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    cluster = record.upstream_cluster or "-"
    return "knative-local-gateway" in cluster or cluster == "-" or (client_host or "").lower() == authority


def find(
    snap: Snapshot | None,
    logs: Iterable[LogSource],
    offsets: Mapping[Path, int],
    prefix: str,
    traces: Mapping[str, str],
    *,
    client_host: str | None = None,
    wait_s: float = 0.0,
    poll_s: float = 0.1,
) -> KLogs:
    """The lines of this run's requests (`prefix` starts every request id; `traces` maps trace id → request id).
    Polls until every request has its outermost gateway line (`is_outer`): Envoy writes a pass's line when the pass
    ends, so the inner passes come first."""
    items = tuple(logs)
    files: dict[Role, tuple[str, ...]] = {}
    for log in items:
        files[log.role] = (*files.get(log.role, ()), log.display)
    deadline = time.monotonic() + wait_s
    wanted = set(traces.values())
    has_gateway = Role.ISTIO_GATEWAY in files
    while True:
        found = KLogs(files=files)
        others: list[GatewayLine] = []
        if snap is not None:
            for log in items:
                _scan(snap, log, offsets.get(log.path, 0), prefix, traces, found, others)
        _link(found, others)
        complete = not has_gateway or all(
            any(is_outer(g, client_host) for g in found.of(rid).gateway) for rid in wanted
        )
        if complete or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)
