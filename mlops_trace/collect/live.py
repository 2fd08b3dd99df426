"""Live `doctor`: collect into a temporary bundle and load it, so a live run and `doctor --bundle` on a collected
bundle read the same files and give the same findings."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.snapshot import Snapshot

if TYPE_CHECKING:
    from mlops_trace.doctor import LiveTarget


@contextmanager
def open_live_snapshot(target: LiveTarget) -> Iterator[Snapshot]:
    """The Snapshot of a live cluster; the temporary bundle behind it is removed when the context ends."""
    work = Path(tempfile.mkdtemp(prefix="mlops-trace-live-"))
    try:
        root = work / "bundle"
        root.mkdir()
        result = collect_to_dir(target, root)
        yield load_bundle_dir(root, display=f"live: {result.source}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
