"""Find our requests in the ingress-nginx and Envoy access logs, once, after the run.

Log files of a bundle on disk (the reference stack's live bundle, or a collected one) are read from the offset
they had when the run started, so a long log costs only what the run appended. A line is parsed only when it
contains the run's request-id prefix, so a scan of a busy log is a substring search per line. Logs are flushed by
their writers at their own pace (Envoy buffers its access log), so `find` polls until every id is found or the
wait is over.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mlops_trace.limits import DEFAULT_LIMITS
from mlops_trace.parsers import envoy_access, nginx_access, nginx_error
from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.logs import read_line_pieces
from mlops_trace.parsers.nginx_access import NginxAccessRecord
from mlops_trace.parsers.nginx_error import NginxErrorRecord
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Snapshot

_COUNT_CHUNK = 1 << 20
# nginx error-log levels as they stand in a line (`2021/03/27 01:58:00 [error] 318#318: *75161 upstream ...`)
_ERROR_MARKS = (" [error] ", " [crit] ", " [alert] ", " [emerg] ", " [warn] ")


class LogKind(StrEnum):
    INGRESS = "ingress"
    ENVOY = "envoy"


@dataclass(frozen=True)
class LogFile:
    kind: LogKind
    path: Path
    display: str  # bundle-relative path, for evidence
    max_line_chars: int = DEFAULT_LIMITS.line_chars  # a longer line is read in pieces of this many characters


@dataclass(frozen=True)
class Found:
    """A log line of one of our requests."""

    where: str  # `logs/ingress-nginx/ctl/controller.log:1234`
    line: str
    nginx: NginxAccessRecord | None = None
    envoy: EnvoyAccessRecord | None = None
    nginx_error: NginxErrorRecord | None = None


@dataclass
class AccessLogs:
    """What the logs said about our requests: request id → the ingress line and the Envoy line; and the ingress
    controller's upstream errors written during the run (an error line carries no request id, only the request)."""

    ingress: dict[str, Found] = field(default_factory=dict)
    envoy: dict[str, Found] = field(default_factory=dict)
    files: tuple[LogFile, ...] = ()
    ingress_errors: list[Found] = field(default_factory=list)

    def ingress_error_for(self, path: str, status: int) -> Found | None:
        """The last upstream error of the ingress for a request to `path` that explains `status` (502, 504)."""
        for found in reversed(self.ingress_errors):
            record = found.nginx_error
            if record is None or record.path != path:
                continue
            cause = record.cause
            if cause is not None and cause.status == status:
                return found
        return None

    def describe_files(self, kind: LogKind) -> str:
        names = [f.display for f in self.files if f.kind is kind]
        return ", ".join(names) if names else "none"


def log_files(snap: Snapshot) -> list[LogFile]:
    """Ingress controller logs and Envoy access logs of a Snapshot (container logs and `envoy/*/access.log`)."""
    files: list[LogFile] = []
    for log in snap.logs_of(Role.INGRESS):
        files.append(LogFile(LogKind.INGRESS, log.path, log.display, log.max_line_chars))
    seen: set[Path] = set()
    for env in snap.envoys:
        if env.access_log is not None:
            seen.add(env.access_log.path)
            files.append(
                LogFile(LogKind.ENVOY, env.access_log.path, env.access_log.display, env.access_log.max_line_chars)
            )
    for log in snap.logs_of(Role.ENVOY):
        if log.path not in seen:
            files.append(LogFile(LogKind.ENVOY, log.path, log.display, log.max_line_chars))
    return files


def mark(files: Iterable[LogFile]) -> dict[Path, int]:
    """Current sizes: where reading starts after the run."""
    offsets: dict[Path, int] = {}
    for item in files:
        try:
            offsets[item.path] = item.path.stat().st_size
        except OSError:
            offsets[item.path] = 0
    return offsets


def _count_lines(path: Path, limit: int) -> int:
    """Newlines in the first `limit` bytes: the line number the unread part starts after."""
    count = 0
    with path.open("rb") as handle:
        remaining = limit
        while remaining > 0:
            chunk = handle.read(min(_COUNT_CHUNK, remaining))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count


def _lines_from(path: Path, offset: int, max_line_chars: int) -> Iterator[tuple[int, str]]:
    """Lines (a long one in pieces) from byte `offset` on; a last line still being written is left to the next poll."""
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size < offset:  # truncated or rotated since the mark: read it all
        offset = 0
    first = _count_lines(path, offset) + 1 if offset else 1
    with path.open("rb") as handle:
        handle.seek(offset)
        # LF only ends a line, as in the line count above.
        with io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="\n") as text:
            yield from read_line_pieces(text, max_line_chars, first_lineno=first, partial_last=False)


def _scan(item: LogFile, offset: int, prefix: str, wanted: set[str], found: AccessLogs) -> None:
    target = found.ingress if item.kind is LogKind.INGRESS else found.envoy
    for lineno, line in _lines_from(item.path, offset, item.max_line_chars):
        if prefix not in line:
            if item.kind is LogKind.INGRESS and "upstream" in line and any(m in line for m in _ERROR_MARKS):
                record = nginx_error.parse_line(lineno, line)
                if record is not None and record.cause is not None:
                    found.ingress_errors.append(Found(f"{item.display}:{lineno}", line, nginx_error=record))
            continue
        where = f"{item.display}:{lineno}"
        if item.kind is LogKind.INGRESS:
            nginx = nginx_access.parse_line(lineno, line)
            if nginx is not None and nginx.request_id in wanted and nginx.request_id not in target:
                target[nginx.request_id] = Found(where, line, nginx=nginx)
        else:
            envoy = envoy_access.parse_line(lineno, line)
            if envoy is not None and envoy.request_id in wanted and envoy.request_id not in target:
                target[envoy.request_id] = Found(where, line, envoy=envoy)


def find(
    files: Iterable[LogFile],
    offsets: Mapping[Path, int],
    prefix: str,
    request_ids: Iterable[str],
    *,
    wait_s: float = 0.0,
    envoy_logs_everything: bool = True,
    poll_s: float = 0.1,
) -> AccessLogs:
    """Lines of `request_ids` (which all start with `prefix`) in `files`, read from `offsets`.

    Polls up to `wait_s` for lines not yet written. Envoy's access log in Seldon holds only errors, so with
    `envoy_logs_everything` False the wait does not hold out for Envoy lines of successful requests."""
    items = tuple(files)
    wanted = set(request_ids)
    found = AccessLogs(files=items)
    deadline = time.monotonic() + wait_s
    while True:
        found.ingress.clear()
        found.envoy.clear()
        found.ingress_errors.clear()
        for item in items:
            _scan(item, offsets.get(item.path, 0), prefix, wanted, found)
        has_ingress = any(f.kind is LogKind.INGRESS for f in items)
        has_envoy = any(f.kind is LogKind.ENVOY for f in items)
        complete = (not has_ingress or len(found.ingress) >= len(wanted)) and (
            not has_envoy or not envoy_logs_everything or len(found.envoy) >= len(wanted)
        )
        if complete or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)
