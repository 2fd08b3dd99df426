"""Processes the stack starts: each in its own session (process group), remembered by PID and kernel start time so
that `stack down` from another shell stops exactly those, and never a later process that reused a PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: with the PID, names one process for good
    log: str
    argv: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks, "log": self.log,
                "argv": list(self.argv)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(str(data["name"]), int(data["pid"]), int(data["start_ticks"]), str(data["log"]),
                   tuple(str(a) for a in data.get("argv") or ()))


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    after_comm = text.rsplit(")", 1)[-1].split()
    # after_comm[0] is field 3 (state); field 22 (starttime) is after_comm[19].
    return after_comm[0], int(after_comm[19])


def start(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start `argv` detached in a new session, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=str(cwd) if cwd else None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    stat = _stat(proc.pid)
    return ProcessRecord(name, proc.pid, stat[1] if stat else 0, str(log), tuple(argv))


def alive(record: ProcessRecord) -> bool:
    stat = _stat(record.pid)
    return stat is not None and stat[1] == record.start_ticks and stat[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect a child of this process (tests start the stack in-process), so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(records: Iterable[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """SIGTERM each live process group, SIGKILL what is left after `timeout`; returns names that had to be killed."""
    live = [r for r in records if alive(r)]
    for record in live:
        try:
            os.killpg(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in live:
            _reap(record.pid)
        if not any(alive(r) for r in live):
            break
        time.sleep(0.05)
    killed = []
    for record in live:
        if alive(record):
            killed.append(record.name)
            try:
                os.killpg(record.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for record in live:
        for _ in range(100):
            _reap(record.pid)
            if not alive(record):
                break
            time.sleep(0.02)
    return killed


def tail(path: str | Path, lines: int = 5) -> str:
    """The last lines of a log, on one line, for error messages."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)
