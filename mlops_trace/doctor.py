"""`doctor`: get a Snapshot (offline bundle or live cluster), run the selected checks, return the Report."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.errors import UsageError
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.findings import Report
from mlops_trace.snapshot.snapshot import Snapshot


@dataclass(frozen=True)
class LiveTarget:
    """Where and how to read a live cluster (all optional: kubeconfig defaults apply)."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = 10.0
    # The whole live run (every API call, log and Envoy read) ends by then; None: DEFAULT_LIVE_DEADLINE.
    deadline: float | None = None
    since: str | None = None
    tail: int | None = None
    envoy_admin: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@contextmanager
def open_snapshot(
    bundle: Path | None, live: LiveTarget | None, limits: InputLimits = DEFAULT_LIMITS
) -> Iterator[Snapshot]:
    if bundle is not None and live is not None and (live.namespaces or live.all_namespaces):
        raise UsageError("--bundle reads an offline bundle; it does not go with -n/-A")
    if bundle is not None:
        from mlops_trace.snapshot.bundle import open_bundle

        with open_bundle(bundle, limits) as snap:
            yield snap
        return
    if live is None or not (live.namespaces or live.all_namespaces):
        raise UsageError("say what to examine: --bundle DIR, -n NAMESPACE (repeatable) or -A")
    from mlops_trace.collect.live import open_live_snapshot

    with open_live_snapshot(live, limits) as snap:
        yield snap


def run_doctor(snap: Snapshot, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Report:
    return run_checks(snap, select(only, skip))
