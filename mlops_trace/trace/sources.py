"""Where a run reads the cluster from: an offline or live bundle directory (`--bundle`; the reference stack's
bundle holds its live logs), a live cluster (`--kubeconfig/--context`, collected into a temporary bundle after the
run so the logs hold our requests), or nothing. And the defaults the reference stack offers when it is up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_trace.errors import MlopsTraceError
from mlops_trace.snapshot.snapshot import Snapshot


@dataclass(frozen=True)
class StackDefaults:
    """What `stack status` says about a running reference stack, as far as `request` uses it."""

    ingress_url: str
    ingress_grpc: str | None
    host: str | None
    experiment: str | None
    experiment_weights: Mapping[str, float]
    envoy_weights: Mapping[str, float]
    models: tuple[str, ...]
    bundle: Path | None
    kubeconfig: str | None
    envoy_admin_url: str | None
    entry_points: Mapping[str, str]  # envoy, agent, mlserver base URLs
    metrics_url: str | None
    example_input: Mapping[str, Any] | None = None  # a V2 input when the model's metadata declares none
    faults: tuple[str, ...] = field(default_factory=tuple)


def stack_defaults_from(info: Mapping[str, Any]) -> StackDefaults | None:
    """Defaults from a `stack status -o json` document; None when the stack is not running."""
    if not info.get("running") or not info.get("ingress_url"):
        return None
    experiment = info.get("experiment") if isinstance(info.get("experiment"), Mapping) else {}
    assert isinstance(experiment, Mapping)
    entries = info.get("entry_points") if isinstance(info.get("entry_points"), Mapping) else {}
    assert isinstance(entries, Mapping)
    models = [str(m.get("name")) for m in info.get("models") or [] if isinstance(m, Mapping) and m.get("name")]
    bundle = info.get("bundle")
    return StackDefaults(
        ingress_url=str(info["ingress_url"]),
        ingress_grpc=str(info["ingress_grpc"]) if info.get("ingress_grpc") else None,
        host=str(info["host"]) if info.get("host") else None,
        experiment=str(experiment["name"]) if experiment.get("name") else None,
        experiment_weights={str(k): float(v) for k, v in (experiment.get("weights") or {}).items()},
        envoy_weights={str(k): float(v) for k, v in (experiment.get("envoy_weights") or {}).items()},
        models=tuple(models),
        bundle=Path(str(bundle)) if bundle else None,
        kubeconfig=str(info["kubeconfig"]) if info.get("kubeconfig") else None,
        envoy_admin_url=str(info["envoy_admin_url"]) if info.get("envoy_admin_url") else None,
        entry_points={k: str(entries[k]) for k in ("envoy", "agent", "mlserver") if entries.get(k)},
        metrics_url=str(entries["mlserver_metrics"]) if entries.get("mlserver_metrics") else None,
        example_input=_example_input(),
        faults=tuple(str(f) for f in info.get("faults") or ()),
    )


def _example_input() -> Mapping[str, Any] | None:
    try:
        from mlops_trace.stack.topology import INPUT_NAME, INPUT_SHAPE
    except ImportError:
        return None
    return {"name": INPUT_NAME, "datatype": "FP32", "shape": list(INPUT_SHAPE)}


def stack_defaults(state_dir: Path | None = None) -> StackDefaults | None:
    """The running reference stack's defaults, or None (not installed, not running, or unreadable state)."""
    try:
        from mlops_trace.stack.status import status
    except ImportError:
        return None
    try:
        info = status(state_dir, refresh=True)
    except (MlopsTraceError, OSError, ValueError, KeyError):
        return None
    return stack_defaults_from(info)


@dataclass(frozen=True)
class ClusterSource:
    """How to read the cluster: a bundle directory, or a live kubeconfig (context, namespaces)."""

    bundle: Path | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    request_timeout: float = 10.0
    envoy_admin: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.bundle is None and (self.kubeconfig is not None or self.context is not None)

    @property
    def any(self) -> bool:
        return self.bundle is not None or self.live


@contextlib.contextmanager
def open_source(source: ClusterSource, *, since_s: float | None = None) -> Iterator[Snapshot | None]:
    """The Snapshot of `source` (None when there is no source). A live cluster is collected now, logs limited to
    the last `since_s` seconds."""
    if source.bundle is not None:
        from mlops_trace.snapshot.bundle import open_bundle

        with open_bundle(source.bundle) as snap:
            yield snap
        return
    if not source.live:
        yield None
        return
    from mlops_trace.collect.live import open_live_snapshot
    from mlops_trace.collect.target import LiveTarget

    target = LiveTarget(
        namespaces=source.namespaces,
        all_namespaces=not source.namespaces,
        kubeconfig=source.kubeconfig,
        context=source.context,
        request_timeout=source.request_timeout,
        since=f"{int(since_s) + 30}s" if since_s is not None else None,
        envoy_admin=source.envoy_admin,
    )
    with open_live_snapshot(target) as snap:
        yield snap
