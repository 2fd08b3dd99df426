"""Container logs of the components the checks read (scheduler, controller, agent, MLServer, Envoy, ingress, model
gateway), streamed line by line through the redactor into `logs/<namespace>/<pod>/<container>.log`.

The three names of that path come from the API: a container whose names are not valid Kubernetes names is skipped
(names.py). Each log is one call, bounded as a whole by `--request-timeout` and by the run's `--timeout`; a log cut
by either is not written (its newest lines would be missing), and is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.collect.client import ApiStatusError, KubeApi
from mlops_trace.collect.deadline import RunDeadlinePassed
from mlops_trace.collect.names import NameRule, UnsafePathError, bundle_path, name_problem, shown
from mlops_trace.collect.outcome import FetchError, Forbidden, SkippedName
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.redaction import LineRedactor, Redaction
from mlops_trace.snapshot.roles import Role, container_role

DEFAULT_TAIL = 10000
WANTED_ROLES = frozenset(
    {Role.SCHEDULER, Role.CONTROLLER, Role.AGENT, Role.MLSERVER, Role.ENVOY, Role.INGRESS, Role.MODELGATEWAY}
)
_PARALLEL = 8

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(value: str | None) -> int | None:
    """`--since` as kubectl takes it (`90s`, `30m`, `1h`, `1h30m`, `2d`) in whole seconds (at least 1)."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isdigit():
        raise UsageError(f"--since needs a unit, e.g. {text}s, {text}m or {text}h (got {value!r})")
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise UsageError(f"--since must be a duration such as 90s, 30m, 1h or 1h30m (got {value!r})")
    if seconds <= 0:
        raise UsageError(f"--since must be above zero (got {value!r})")
    return max(1, int(seconds))


@dataclass(frozen=True)
class LogTarget:
    namespace: str
    pod: str
    container: str
    role: Role

    @property
    def path_parts(self) -> tuple[str, ...]:
        return ("logs", self.namespace, self.pod, f"{self.container}.log")

    @property
    def rel_path(self) -> str:
        return "/".join(self.path_parts)


@dataclass(frozen=True)
class LogResult:
    target: LogTarget
    lines: int
    redactions: tuple[Redaction, ...]
    error: FetchError | None = None
    forbidden: Forbidden | None = None
    deadline: RunDeadlinePassed | None = None  # the run's --timeout passed before this log was read

    @property
    def written(self) -> bool:
        return self.error is None and self.forbidden is None and self.deadline is None


def log_targets(pods: Iterable[Mapping[str, Any]], skipped: list[SkippedName] | None = None) -> list[LogTarget]:
    """The containers whose logs the checks read, by role (labels first, names otherwise). A container whose
    namespace, pod or container name is not a valid Kubernetes name is left out and added to `skipped`."""
    targets: list[LogTarget] = []
    for pod in pods:
        metadata = pod.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        if not isinstance(name, str) or not isinstance(namespace, str):
            continue
        raw_labels = metadata.get("labels")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
        for container in _containers(pod):
            role = container_role(name, container, labels)
            if role not in WANTED_ROLES:
                continue
            problem = (
                name_problem(namespace, NameRule.LABEL)
                or name_problem(name, NameRule.SUBDOMAIN)
                or name_problem(container, NameRule.LABEL)
            )
            if problem is not None:
                if skipped is not None:
                    where = f"of pod {shown(name)} in namespace {shown(namespace)}"
                    skipped.append(SkippedName(f"the log of container {shown(container)} {where}", problem))
                continue
            targets.append(LogTarget(namespace, name, container, role))
    return targets


def _containers(pod: Mapping[str, Any]) -> list[str]:
    """Container names from the spec, and from the status when a (hand-written) Pod has no spec."""
    names: list[str] = []
    spec = pod.get("spec")
    status = pod.get("status")
    sources: list[tuple[str, Any]] = []
    if isinstance(spec, Mapping):
        sources += [("containers", spec.get("containers")), ("initContainers", spec.get("initContainers"))]
    if isinstance(status, Mapping):
        sources.append(("containerStatuses", status.get("containerStatuses")))
    for key, entries in sources:
        for container in entries if isinstance(entries, list) else []:
            if not isinstance(container, Mapping) or not isinstance(container.get("name"), str):
                continue
            # Init containers only count when they run beside the app (native sidecars, restartPolicy Always).
            if key == "initContainers" and container.get("restartPolicy") != "Always":
                continue
            if container["name"] not in names:
                names.append(str(container["name"]))
    return names


def fetch_logs(
    api: KubeApi, targets: list[LogTarget], root: Path, tail: int | None, since_seconds: int | None
) -> list[LogResult]:
    """Fetch every target (a few at a time); results come back in target order."""
    if not targets:
        return []
    workers = min(_PARALLEL, len(targets))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-trace-logs") as pool:
        futures = [pool.submit(_fetch_one, api, t, root, tail, since_seconds) for t in targets]
        return [f.result() for f in futures]


def _fetch_one(api: KubeApi, target: LogTarget, root: Path, tail: int | None, since_seconds: int | None) -> LogResult:
    query: list[tuple[str, str | int]] = [("container", target.container)]
    limit = DEFAULT_TAIL if tail is None else tail
    if limit >= 0:
        query.append(("tailLines", limit))
    if since_seconds is not None:
        query.append(("sinceSeconds", since_seconds))
    path = f"/api/v1/namespaces/{target.namespace}/pods/{target.pod}/log"
    try:
        out_path = bundle_path(root, *target.path_parts)
    except UnsafePathError as exc:
        return LogResult(target, 0, (), error=FetchError(target.namespace, target.pod, target.container, str(exc)))
    part_path = out_path.with_name(out_path.name + ".part")
    redactor = LineRedactor()
    count = 0
    try:
        part_path.parent.mkdir(parents=True, exist_ok=True)
        with part_path.open("w", encoding="utf-8", newline="") as handle:
            for raw in api.stream_lines(path, query):
                count += 1
                handle.write(redactor.line(count, raw.decode("utf-8", "replace")))
        part_path.replace(out_path)
    except ApiStatusError as exc:
        part_path.unlink(missing_ok=True)
        if exc.status == 403:
            forbidden = Forbidden(
                permission=f"get pods/log in namespace {target.namespace} (core)",
                verb="get",
                resource="pods/log",
                group="",
                namespace=target.namespace,
                kind=None,
                message=exc.message,
            )
            return LogResult(target, 0, (), forbidden=forbidden)
        error = FetchError(target.namespace, target.pod, target.container, f"HTTP {exc.status}: {exc.message}")
        return LogResult(target, 0, (), error=error)
    except RunDeadlinePassed as exc:
        part_path.unlink(missing_ok=True)
        return LogResult(target, 0, (), deadline=exc)
    except ClusterError as exc:
        part_path.unlink(missing_ok=True)
        return LogResult(target, 0, (), error=FetchError(target.namespace, target.pod, target.container, str(exc)))
    return LogResult(target, count, tuple(redactor.redactions))
