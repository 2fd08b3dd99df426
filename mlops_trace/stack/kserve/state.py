"""The KServe stack's `state.json`: ports, processes by PID (with kernel start times), faults, and the storage
initializer's outcome per revision, written by `stack up --profile kserve` and read by its status, logs and down."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.stack.kserve.topology import KPorts
from mlops_trace.stack.procs import ProcessRecord


@dataclass(frozen=True)
class InitResult:
    """How a revision pod's storage-initializer ended: exit code and the last line it logged."""

    revision: str
    exit_code: int
    message: str
    started_at: str
    finished_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "exit_code": self.exit_code, "message": self.message,
                "started_at": self.started_at, "finished_at": self.finished_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InitResult:
        return cls(str(data["revision"]), int(data["exit_code"]), str(data["message"]), str(data["started_at"]),
                   str(data["finished_at"]))


@dataclass(frozen=True)
class KState:
    state_dir: str
    started_at: str
    faults: tuple[str, ...]
    ports: KPorts
    processes: tuple[ProcessRecord, ...]
    ready_seconds: float
    inits: tuple[InitResult, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"profile": "kserve", "state_dir": self.state_dir, "started_at": self.started_at,
                "faults": list(self.faults), "ports": self.ports.as_dict(),
                "processes": [p.as_dict() for p in self.processes], "ready_seconds": self.ready_seconds,
                "storage_initializers": [i.as_dict() for i in self.inits]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KState:
        return cls(
            state_dir=str(data["state_dir"]), started_at=str(data["started_at"]),
            faults=tuple(str(f) for f in data.get("faults") or ()),
            ports=KPorts(**{name: int(data["ports"].get(name, 0)) for name in KPorts.names()}),
            processes=tuple(ProcessRecord.from_dict(p) for p in data.get("processes") or ()),
            ready_seconds=float(data.get("ready_seconds") or 0.0),
            inits=tuple(InitResult.from_dict(i) for i in data.get("storage_initializers") or ()),
        )


def write_state(path: Path, state: KState) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.as_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> KState | None:
    if not path.is_file():
        return None
    try:
        return KState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: unreadable stack state ({exc}); remove it after stopping the stack's processes")
