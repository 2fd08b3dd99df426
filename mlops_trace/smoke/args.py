"""The flags of `mlops-trace smoke`, as one value: where doctor reads the cluster(s), where the requests go, and
how the run is judged (see `smoke.run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops_trace.doctor import ServiceLevel
from mlops_trace.findings import Severity
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.smoke.gates import GateSettings

# The split gate fails on an observed share farther than --split-tolerance from its target: at 100 answers a healthy
# 70/30 split lands outside ±5 points by chance 23 % of the time (exact binomial), at 1000 answers 0.05 %.
DEFAULT_COUNT = 1000
DEFAULT_COUNT_UNTIL_DECIDED = 2000  # a cap: the sequential test usually stops far earlier


@dataclass(frozen=True)
class SmokeArgs:
    # where doctor reads the cluster
    bundle: Path | None = None
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    contexts: tuple[str, ...] = ()  # more than one, or all_contexts: doctor per cluster (smoke.fleet)
    all_contexts: bool = False
    parallel: int | None = None  # several contexts: clusters read at once (None: fleet.DEFAULT_PARALLEL)
    request_timeout: float = 10.0
    live_deadline: float | None = None  # the whole live read of the cluster (None: DEFAULT_LIVE_DEADLINE)
    limits: InputLimits = DEFAULT_LIMITS  # on the bundle (or the live collection) doctor reads
    envoy_admin: tuple[str, ...] = ()
    stack: bool = False
    state_dir: Path | None = None
    # the endpoint the requests go to
    url: str | None = None
    host: str | None = None
    model: str | None = None
    experiment: str | None = None
    data: Path | None = None
    headers: tuple[str, ...] = ()
    protocol: str = "rest"
    count: int | None = None  # None: DEFAULT_COUNT (DEFAULT_COUNT_UNTIL_DECIDED with until_decided)
    concurrency: int = 1
    rate: float | None = None
    timeout: float = 10.0
    insecure: bool = False
    cacert: Path | None = None
    log_wait: float = 3.0
    # service level and gates
    service_level: ServiceLevel = field(default_factory=ServiceLevel)
    prometheus_wait_s: float = 30.0
    gates: GateSettings = field(default_factory=GateSettings)
    fail_on: Severity = Severity.WARNING
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    baseline: Path | None = None
    save_baseline: Path | None = None
    regression_margin: float = 0.20
    regression_floor_ms: float = 1.0

    @property
    def request_count(self) -> int:
        if self.count is not None:
            return self.count
        return DEFAULT_COUNT_UNTIL_DECIDED if self.gates.until_decided else DEFAULT_COUNT

    @property
    def several(self) -> bool:
        return self.all_contexts or len(self.contexts) > 1

    def describe_source(self) -> str:
        if self.several:
            named = "every context of the kubeconfig" if self.all_contexts else ", ".join(self.contexts)
            return f"live clusters: {named}"
        if self.stack:
            return f"reference stack ({self.state_dir or 'default state dir'})"
        if self.bundle is not None:
            return str(self.bundle)
        if self.all_namespaces:
            return "live cluster, all namespaces"
        if self.namespaces:
            return f"live cluster, namespaces {', '.join(self.namespaces)}"
        return "no cluster source"
