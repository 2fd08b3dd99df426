"""Log lines in the formats of the components the stack stands in for, appended to pod log files.

Seldon's scheduler and agent log with logrus' text formatter (`time="…" level=info msg="…" source=…`); the controller
manager uses zap's development console format (tab-separated time, level, logger, message, JSON fields).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _quote(value: str) -> str:
    """logrus quotes a value when it holds anything but letters, digits and `-._/@^+`."""
    if value and all(ch.isalnum() or ch in "-._/@^+" for ch in value):
        return value
    return json.dumps(value)


def logrus_line(level: str, msg: str, **fields: Any) -> str:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    parts = [f'time="{now}"', f"level={level}", f"msg={_quote(msg)}"]
    parts += [f"{key}={_quote(str(value))}" for key, value in fields.items()]
    return " ".join(parts)


def zap_dev_line(level: str, logger: str, msg: str, **fields: Any) -> str:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tail = "\t" + json.dumps(fields) if fields else ""
    return f"{now}\t{level.upper()}\t{logger}\t{msg}{tail}"


class PodLog:
    """One container log file, appended to line by line and flushed at once (other processes tail it live)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._handle.write(line.rstrip("\n") + "\n")
            self._handle.flush()

    def logrus(self, level: str, msg: str, **fields: Any) -> None:
        self.write(logrus_line(level, msg, **fields))

    def zap(self, level: str, logger: str, msg: str, **fields: Any) -> None:
        self.write(zap_dev_line(level, logger, msg, **fields))

    def close(self) -> None:
        with self._lock:
            self._handle.close()
