"""Live `doctor`: collect into a temporary bundle and load it, so a live run and `doctor --bundle` on a collected
bundle read the same files and give the same findings.

What the collection left out on purpose (objects under names that are not valid Kubernetes names) and the run's
`--timeout` passing are shown as input problems of the live input; forbidden and missing inputs are already named
in the skip reasons of the checks that needed them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.findings import InputProblem
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.snapshot import Snapshot

if TYPE_CHECKING:
    from mlops_trace.collect.target import LiveTarget


@contextmanager
def open_live_snapshot(target: LiveTarget, limits: InputLimits = DEFAULT_LIMITS) -> Iterator[Snapshot]:
    """The Snapshot of a live cluster, read back within `limits` (a hostile API server is as untrusted as a
    bundle); the temporary bundle behind it is removed when the context ends, however it ends."""
    work = Path(tempfile.mkdtemp(prefix="mlops-trace-live-"))
    try:
        root = work / "bundle"
        root.mkdir()
        result = collect_to_dir(target, root)
        snap = load_bundle_dir(root, display=f"live: {result.source}", limits=limits)
        snap.problems.extend(InputProblem("live collection", notice) for notice in result.notices)
        yield snap
    finally:
        shutil.rmtree(work, ignore_errors=True)

