"""What every benchmark part needs to know about this run."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.generate import Size

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    size: Size
    cache: Path  # generated data and the benchmark's own stack state: never in git
    runs: int  # repetitions of each timed command
    python: Path
    baseline_tree: Path | None = None  # an older source tree to time the doctor-at-scale children against
    stack_venv: Path | None = None

    @property
    def tiny(self) -> bool:
        return self.size.name == "tiny"

    def mlops_trace(self) -> list[str]:
        """The CLI as users start it: the console script beside this interpreter, else `python -m mlops_trace`.
        Shims (pyenv's bash wrappers) are bypassed so they are not timed."""
        script = self.python.parent / "mlops-trace"
        if script.is_file():
            return [str(script)]
        return [str(self.python), "-m", "mlops_trace"]

    def child_env(self, tree: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        root = tree or REPO
        env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env


def default_cache() -> Path:
    configured = os.environ.get("MLOPS_TRACE_BENCH_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "mlops-trace" / "bench"


def default_stack_venv() -> Path | None:
    """The stack venv to share (read-only) so the benchmark does not install MLServer again: the one the tests share
    ($MLOPS_TRACE_STACK_VENV), else the default stack's, when it is complete."""
    configured = os.environ.get("MLOPS_TRACE_STACK_VENV")
    candidates = [Path(configured).expanduser()] if configured else []
    candidates.append(Path.home() / ".cache" / "mlops-trace" / "stack" / "venv")
    for venv in candidates:
        if (venv / ".mlops-trace-stack.json").is_file():
            return venv
    return None


def current_python() -> Path:
    return Path(sys.executable)
