"""Where the KServe stack keeps things: its own state directory (`~/.cache/mlops-trace/stack-kserve`, or
`MLOPS_TRACE_KSERVE_STACK_DIR`), apart from the Seldon stack's so both run side by side, with its venv, the model
"bucket", per-run files, the bundle it serves and `state.json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mlops_trace.stack.kserve.topology import GATEWAY_POD, ISTIO_NAMESPACE, NAMESPACE, pod_name
from mlops_trace.stack.paths import ProfilePaths, cache_state_dir

STATE_DIR_ENV = "MLOPS_TRACE_KSERVE_STACK_DIR"
VENV_ENV = "MLOPS_TRACE_KSERVE_STACK_VENV"


def default_state_dir() -> Path:
    return cache_state_dir(STATE_DIR_ENV, "stack-kserve")


@dataclass(frozen=True)
class KServePaths(ProfilePaths):
    venv_env: ClassVar[str] = VENV_ENV

    @classmethod
    def resolve(cls, state_dir: Path | None = None) -> KServePaths:
        return cls((state_dir or default_state_dir()).expanduser().resolve())

    @property
    def bucket(self) -> Path:
        """What the storageUri points into (a bucket on a cluster): `<bucket>/<model>/model.joblib`."""
        return self.root / "bucket"

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
