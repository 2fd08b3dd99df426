"""Where the stack keeps things: the state directory (`~/.cache/mlops-trace/stack`, or `MLOPS_TRACE_STACK_DIR`),
its component environment, trained models, per-run files, the bundle it serves, and `state.json`."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mlops_trace.stack.ports import StackError
from mlops_trace.stack.topology import (
    CONTROLLER_POD,
    ENVOY_POD,
    INGRESS_NAMESPACE,
    INGRESS_POD,
    NAMESPACE,
    SCHEDULER_POD,
    SERVER_POD,
    SYSTEM_NAMESPACE,
)

STATE_DIR_ENV = "MLOPS_TRACE_STACK_DIR"
VENV_ENV = "MLOPS_TRACE_STACK_VENV"


def cache_state_dir(env: str, name: str) -> Path:
    """A profile's default state directory: `$<env>`, else `<XDG cache>/mlops-trace/<name>`."""
    configured = os.environ.get(env)
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mlops-trace" / name


def default_state_dir() -> Path:
    return cache_state_dir(STATE_DIR_ENV, "stack")


@dataclass(frozen=True)
class ProfilePaths:
    """What every profile of the stack keeps under its state directory; a profile adds its own files."""

    root: Path
    venv_env: ClassVar[str] = VENV_ENV  # the variable that points several state directories at one venv

    @property
    def venv(self) -> Path:
        configured = os.environ.get(self.venv_env)
        return Path(configured).expanduser().resolve() if configured else self.root / "venv"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def request_file(self) -> Path:
        """An example request body (`curl -d @<file>`)."""
        return self.root / "request.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One `stack up` or `stack down` at a time per state directory; a second one fails at once, in one line."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackError(f"another `mlops-trace stack` command is working on {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def process_logs(self) -> Path:
        """Output of processes that are no pod's container (the kube view, Prometheus, the agent proxy)."""
        return self.run / "logs"


@dataclass(frozen=True)
class StackPaths(ProfilePaths):
    @classmethod
    def resolve(cls, state_dir: Path | None = None) -> StackPaths:
        return cls((state_dir or default_state_dir()).expanduser().resolve())

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    # run files

    @property
    def xds_dir(self) -> Path:
        return self.run / "envoy" / "xds"

    @property
    def manifests(self) -> Path:
        return self.run / "manifests"

    @property
    def storage(self) -> Path:
        """Model folders a fault's Model points its storageUri at (what a bucket holds on a cluster)."""
        return self.run / "storage"

    # pod logs inside the bundle

    def pod_log(self, namespace: str, pod: str, container: str) -> Path:
        return self.bundle / "logs" / namespace / pod / f"{container}.log"

    @property
    def scheduler_log(self) -> Path:
        return self.pod_log(NAMESPACE, SCHEDULER_POD, "scheduler")

    @property
    def central_scheduler_log(self) -> Path:
        return self.pod_log(SYSTEM_NAMESPACE, SCHEDULER_POD, "scheduler")

    @property
    def controller_log(self) -> Path:
        return self.pod_log(SYSTEM_NAMESPACE, CONTROLLER_POD, "manager")

    @property
    def agent_log(self) -> Path:
        return self.pod_log(NAMESPACE, SERVER_POD, "agent")

    @property
    def rclone_log(self) -> Path:
        return self.pod_log(NAMESPACE, SERVER_POD, "rclone")

    @property
    def model_status_file(self) -> Path:
        """The namespace scheduler's model states, which become the served Models' status."""
        return self.run / "control" / "model-status.json"

    @property
    def mlserver_log(self) -> Path:
        return self.pod_log(NAMESPACE, SERVER_POD, "mlserver")

    @property
    def envoy_log(self) -> Path:
        return self.pod_log(NAMESPACE, ENVOY_POD, "envoy")

    @property
    def ingress_log(self) -> Path:
        return self.pod_log(INGRESS_NAMESPACE, INGRESS_POD, "controller")

    @property
    def envoy_admin_dir(self) -> Path:
        return self.bundle / "envoy" / NAMESPACE / ENVOY_POD
