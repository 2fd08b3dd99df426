"""Where the KServe stack keeps things: its own state directory (`~/.cache/mlops-trace/stack-kserve`, or
`MLOPS_TRACE_KSERVE_STACK_DIR`), apart from the Seldon stack's so both run side by side, with its venv, the model
"bucket", per-run files, the bundle it serves and `state.json`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_trace.stack.kserve.topology import GATEWAY_POD, ISTIO_NAMESPACE, NAMESPACE, pod_name

STATE_DIR_ENV = "MLOPS_TRACE_KSERVE_STACK_DIR"
VENV_ENV = "MLOPS_TRACE_KSERVE_STACK_VENV"


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mlops-trace" / "stack-kserve"


@dataclass(frozen=True)
class KServePaths:
    root: Path

    @classmethod
    def resolve(cls, state_dir: Path | None = None) -> KServePaths:
        return cls((state_dir or default_state_dir()).expanduser().resolve())

    @property
    def venv(self) -> Path:
        configured = os.environ.get(VENV_ENV)
        return Path(configured).expanduser().resolve() if configured else self.root / "venv"

    @property
    def bucket(self) -> Path:
        """What the storageUri points into (a bucket on a cluster): `<bucket>/<model>/model.joblib`."""
        return self.root / "bucket"

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
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def request_file(self) -> Path:
        """An example V1 request (`curl -d @<file>`)."""
        return self.root / "request.json"

    @property
    def process_logs(self) -> Path:
        return self.run / "logs"

    def models_dir(self, rev: str) -> Path:
        """The pod's `/mnt/models` (the storage initializer's destination)."""
        return self.run / "pods" / pod_name(rev) / "mnt" / "models"

    def pod_log(self, pod: str, container: str, namespace: str = NAMESPACE) -> Path:
        return self.bundle / "logs" / namespace / pod / f"{container}.log"

    def container_log(self, rev: str, container: str) -> Path:
        return self.pod_log(pod_name(rev), container)

    @property
    def gateway_log(self) -> Path:
        return self.pod_log(GATEWAY_POD, "istio-proxy", ISTIO_NAMESPACE)

    @property
    def envoy_admin_dir(self) -> Path:
        return self.bundle / "envoy" / ISTIO_NAMESPACE / GATEWAY_POD
