"""The exporter's optional synthetic probe (blackbox_exporter style, `--probe-experiment`): each round, a burst of
requests to one Seldon Experiment through `request`'s own runner (`trace.runner.run_many`: send, read the access
logs, time every hop, measure the split), reduced to what the series need: the requests that succeeded, the
Experiment's target shares against the shares its candidates answered, and each hop's p50/p95."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import MlopsTraceError, UsageError

DEFAULT_PROBE_COUNT = 50


@dataclass(frozen=True)
class ProbeSettings:
    experiment: str
    url: str | None = None  # the ingress URL; None: the reference stack's, when it is up
    host: str | None = None  # the Host header the ingress routes by
    count: int = DEFAULT_PROBE_COUNT
    request_timeout: float = 10.0
    source: LiveTarget = field(default_factory=LiveTarget)  # where the path and the logs are read from

    def __post_init__(self) -> None:
        if not self.experiment.strip():
            raise UsageError("--probe-experiment needs an Experiment name")
        if not 1 <= self.count <= 10_000:
            raise UsageError(f"--probe-count must be between 1 and 10000 (got {self.count})")


@dataclass(frozen=True)
class HopLatency:
    name: str
    p50_s: float
    p95_s: float


@dataclass(frozen=True)
class ProbeOutcome:
    experiment: str
    started: float  # Unix time
    duration: float
    count: int = 0
    succeeded: int = 0
    target_shares: Mapping[str, float] = field(default_factory=dict)  # candidate → the Experiment's share (0-1)
    answered: Mapping[str, int] = field(default_factory=dict)  # candidate → requests it answered
    hops: tuple[HopLatency, ...] = ()
    error: str = ""  # the probe could not run

    @property
    def ran(self) -> bool:
        return not self.error


def run_probe(settings: ProbeSettings) -> ProbeOutcome:
    """One burst of `count` requests; a probe that cannot run is an outcome with its error, never an exception."""
    from mlops_trace.trace.command import RequestArgs, options_from
    from mlops_trace.trace.runner import run_many

    started, clock = time.time(), time.monotonic()
    source = settings.source
    try:
        options = options_from(RequestArgs(
            url=settings.url, host=settings.host, experiment=settings.experiment, count=settings.count,
            timeout=settings.request_timeout, kubeconfig=source.kubeconfig, context=source.context,
            namespaces=source.namespaces, probes=0,
        ))
        summary = run_many(options)
    except MlopsTraceError as exc:
        return ProbeOutcome(settings.experiment, started, time.monotonic() - clock, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a long-running service outlives one bad probe, which counts as failed
        return ProbeOutcome(settings.experiment, started, time.monotonic() - clock,
                            error=f"{type(exc).__name__}: {exc}")
    hops = tuple(
        HopLatency(hop.name, hop.p50 / 1000.0, hop.p95 / 1000.0)
        for hop in summary.hops
        if hop.p50 is not None and hop.p95 is not None
    )
    split = summary.split
    return ProbeOutcome(
        settings.experiment, started, time.monotonic() - clock, summary.count, summary.succeeded,
        dict(split.expected) if split is not None else {}, dict(split.observed) if split is not None else {}, hops,
    )
