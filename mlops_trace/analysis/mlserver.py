"""MLServer's inference pool as its log tells it: which workers died, which were replaced, what the server serves.

MLServer runs model inference in worker processes (`parallel_workers`, default 1). Since 1.4.0 (PR #1234) the pool
notices a dead worker (SIGCHLD, `os.waitpid`) and replaces it, logging at each step (`mlserver/parallel/pool.py`,
same text 1.4.0–1.7.1); before 1.4.0 a dead worker was neither logged nor replaced and requests routed to it waited
forever while the health endpoints still answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlops_trace.analysis.routing import unversioned
from mlops_trace.findings import evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping, container_env
from mlops_trace.snapshot.snapshot import LogSource

RESPAWN_VERSION = (1, 4, 0)  # first MLServer release that replaces dead inference workers (PR #1234)
# `Worker with PID <pid> on <pool> stopped unexpectedly with exit code <n>. Triggering worker restart...` (warning)
WORKER_DIED = re.compile(r"worker with pid (\d+) on (.+?) stopped unexpectedly with exit code (-?\d+)", re.IGNORECASE)
# `New worker with PID <pid> on <pool> is now ready.` (info), once every model is loaded into the new worker.
WORKER_READY = re.compile(r"new worker with pid (\d+) on (.+?) is now ready", re.IGNORECASE)
# The answer a request in flight on the dead worker gets (mlserver/parallel/errors.py `WorkerStop`, HTTP 500).
WORKER_STOP_ANSWER = "worker process stopped unexpectedly with exit code"
_LOADED = re.compile(r"loaded model '([^']+)' successfully", re.IGNORECASE)
# uvicorn's access line for a served inference: `"POST /v2/models/<m>_<v>/infer HTTP/1.1" 200 OK`.
_SERVED = re.compile(r'"POST /v2/models/([^/ ]+)/(?:versions/[^/ ]+/)?infer[^"]*" 200\b')
_NEEDLES = ("stopped unexpectedly", "is now ready", "loaded model", "/infer")


@dataclass(frozen=True)
class WorkerDeath:
    lineno: int
    pid: str
    pool: str
    exit_code: int
    text: str


@dataclass
class PoolScan:
    """One MLServer log's worker story: deaths, replacements, models loaded and inferences served (line numbers)."""

    deaths: list[WorkerDeath] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)  # pool -> last `is now ready` line
    models: set[str] = field(default_factory=set)  # unversioned names of models loaded
    last_served: int = 0

    def unreplaced(self) -> list[WorkerDeath]:
        """Deaths after which no new worker of the same pool became ready."""
        return [d for d in self.deaths if self.ready.get(d.pool, 0) < d.lineno]

    def serves_after(self, lineno: int) -> bool:
        return self.last_served > lineno


def scan_pool(log: LogSource) -> PoolScan:
    scan = PoolScan()
    for lineno, line in log.lines_mentioning(_NEEDLES):
        died = WORKER_DIED.search(line)
        if died is not None:
            code = int(died.group(3))
            text = evidence_line(line[died.start() :])
            scan.deaths.append(WorkerDeath(lineno, died.group(1), died.group(2), code, text))
            continue
        ready = WORKER_READY.search(line)
        if ready is not None:
            scan.ready[ready.group(2)] = lineno
            continue
        loaded = _LOADED.search(line)
        if loaded is not None:
            scan.models.add(unversioned(loaded.group(1)))
            continue
        if _SERVED.search(line):
            scan.last_served = lineno
    return scan


def exit_meaning(code: int) -> str:
    """What MLServer's `exit code` (the raw `os.waitpid` status) means: a signal number in the low bits, or an exit
    status in the high byte."""
    if 0 < code < 128:
        name = {9: "SIGKILL, e.g. the kernel OOM killer", 11: "SIGSEGV", 15: "SIGTERM", 6: "SIGABRT"}.get(code)
        return f"killed by signal {code}" + (f" ({name})" if name else "")
    if code >= 256 and code % 256 == 0:
        return f"exited with status {code // 256}"
    return f"exit code {code}"


def server_image_version(pod: KubeObject | None, container: str) -> tuple[tuple[int, ...], str] | None:
    """The MLServer version in a container's image tag (`seldonio/mlserver:1.3.5-sklearn` → (1, 3, 5)), or None."""
    if pod is None:
        return None
    for item in as_list(pod.spec.get("containers")):
        spec = as_mapping(item)
        if spec.get("name") != container:
            continue
        image = str(spec.get("image") or "")
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", tag)
        if match is None:
            return None
        return tuple(int(part) for part in match.groups()), image
    return None


def parallel_workers(pod: KubeObject | None, container: str) -> int | None:
    """`MLSERVER_PARALLEL_WORKERS` of the container when set to a number (0 turns the pool off), else None."""
    if pod is None:
        return None
    for item in as_list(pod.spec.get("containers")):
        spec = as_mapping(item)
        if spec.get("name") == container:
            value = container_env(spec).get("MLSERVER_PARALLEL_WORKERS")
            return int(value) if value is not None and value.strip().isdigit() else None
    return None
