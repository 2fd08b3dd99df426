"""`state.json`: what a running stack is (ports, processes by PID, faults, paths), written by `stack up` and read by
`stack status|down|logs` from any shell."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.stack.procs import ProcessRecord
from mlops_trace.stack.topology import Ports


@dataclass(frozen=True)
class StackState:
    state_dir: str
    started_at: str
    faults: tuple[str, ...]
    ports: Ports
    processes: tuple[ProcessRecord, ...]
    prometheus: bool
    ready_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_dir": self.state_dir,
            "started_at": self.started_at,
            "faults": list(self.faults),
            "ports": self.ports.as_dict(),
            "processes": [p.as_dict() for p in self.processes],
            "prometheus": self.prometheus,
            "ready_seconds": self.ready_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        return cls(
            state_dir=str(data["state_dir"]),
            started_at=str(data["started_at"]),
            faults=tuple(str(f) for f in data.get("faults") or ()),
            ports=Ports(**{name: int(data["ports"].get(name, 0)) for name in Ports.names()}),
            processes=tuple(ProcessRecord.from_dict(p) for p in data.get("processes") or ()),
            prometheus=bool(data.get("prometheus")),
            ready_seconds=float(data.get("ready_seconds") or 0.0),
        )


def write_state(path: Path, state: StackState) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.as_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> StackState | None:
    """The recorded state, None when there is none; InputError when the file is damaged."""
    if not path.is_file():
        return None
    try:
        return StackState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: unreadable stack state ({exc}); remove it after stopping the stack's processes")
