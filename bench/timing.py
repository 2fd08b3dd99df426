"""Timing primitives: run a child process and read its wall time and peak RSS (wait4's rusage), repeat it for a
median and a spread, or let hyperfine do the repetitions when it is installed."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    """One child process: wall seconds, CPU seconds, peak resident memory (MiB), exit code."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str = ""


@dataclass(frozen=True)
class Sample:
    """Repeated wall times of one command (seconds), with the peak RSS of the largest run."""

    label: str
    walls: tuple[float, ...]
    peak_rss_mib: float
    tool: str  # "hyperfine" or "timed runs"

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def low(self) -> float:
        return min(self.walls)

    @property
    def high(self) -> float:
        return max(self.walls)

    @property
    def spread(self) -> float:
        """Half the interquartile range, as a share of the median (0.05 = ±5 %)."""
        if len(self.walls) < 4:
            return (self.high - self.low) / 2 / self.median if self.median else 0.0
        quartiles = statistics.quantiles(self.walls, n=4)
        return (quartiles[2] - quartiles[0]) / 2 / self.median if self.median else 0.0


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    stdout_path: Path | None = None,
    timeout_s: float = 3600.0,
) -> Run:
    """Run `argv` to completion; its own rusage (not this process's) gives CPU time and peak RSS."""
    out_handle = None
    if stdout_path is not None:
        out_handle = stdout_path.open("wb")
        stdout: int | object = out_handle
    elif capture:
        stdout = subprocess.PIPE
    else:
        stdout = subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    text = ""
    try:
        if capture:
            assert proc.stdout is not None
            data = proc.stdout.read()
            text = data.decode("utf-8", errors="replace")
            proc.stdout.close()
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
    finally:
        if out_handle is not None:
            out_handle.close()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024.0,  # kilobytes on Linux
        returncode=proc.returncode,
        stdout=text,
    )


def repeat(
    label: str,
    argv: Sequence[str],
    runs: int,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Sample:
    for _ in range(warmup):
        run(argv, env=env, cwd=cwd)
    results = [run(argv, env=env, cwd=cwd) for _ in range(runs)]
    return Sample(label, tuple(r.wall_s for r in results), max(r.peak_rss_mib for r in results), "timed runs")


def hyperfine_available() -> bool:
    return shutil.which("hyperfine") is not None


def hyperfine(
    commands: Mapping[str, Sequence[str]],
    runs: int,
    warmup: int,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Sample]:
    """Let hyperfine time each command (no shell: `-N`); failing exit codes are allowed (`doctor` exits 1 on
    findings). Peak RSS is not hyperfine's to report: one extra timed run gives it."""
    import shlex

    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        export = Path(tmp) / "hyperfine.json"
        argv = [
            "hyperfine",
            "-N",
            "-i",
            "--style",
            "none",
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--export-json",
            str(export),
        ]
        for label, command in commands.items():
            argv += ["--command-name", label, shlex.join(command)]
        subprocess.run(
            argv,
            check=True,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        document = json.loads(export.read_text(encoding="utf-8"))
    samples: dict[str, Sample] = {}
    for result, (label, command) in zip(document["results"], commands.items(), strict=True):
        rss = run(command, env=env, cwd=cwd).peak_rss_mib
        samples[label] = Sample(label, tuple(float(t) for t in result["times"]), rss, "hyperfine")
    return samples
