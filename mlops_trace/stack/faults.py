"""The failures `stack up --fault NAME[=VALUE]` reproduces, with their one-line descriptions and option checks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mlops_trace.errors import UsageError


class Fault(StrEnum):
    SPLIT_BRAIN = "split-brain"
    ALIAS_MISSING = "alias-missing"
    NETPOL_INTRA = "netpol-intra"
    INGRESS_PREFIX = "ingress-prefix"
    STALE_WEIGHTS = "stale-weights"
    NO_ROUTE = "no-route"
    MISSING_HEADER = "missing-header"
    SLOW_MODEL = "slow-model"
    SLOW_ENVOY = "slow-envoy"
    MODEL_LOAD_FAIL = "model-load-fail"
    RUNTIME_DEPS = "runtime-deps"
    WORKER_CRASH = "worker-crash"
    ROUTE_TIMEOUT = "route-timeout"
    GRPC_MAX_MESSAGE = "grpc-max-message"
    REPLICAS_EXCEED_SERVER = "replicas-exceed-server"


DESCRIPTIONS: dict[Fault, str] = {
    Fault.SPLIT_BRAIN: "a central scheduler in seldon-system and the namespace's own both write Envoy's routes: "
    "real route thrash (MT101, MT102)",
    Fault.ALIAS_MISSING: "local scheduler scaled to 0 and no seldon-scheduler alias Service: controller, agent and "
    "Envoy cannot find a scheduler (MT103)",
    Fault.NETPOL_INTRA: "a NetworkPolicy admits only the ingress namespace, so pods of the namespace cannot reach "
    "their scheduler (MT201)",
    Fault.INGRESS_PREFIX: "the Ingress serves /<namespace>/ without a rewrite: NGINX forwards the prefix and Envoy "
    "answers 404 (MT204)",
    Fault.STALE_WEIGHTS: "Envoy splits 50/50 while the Experiment says 70/30 (MT303)",
    Fault.NO_ROUTE: "the Experiment says Ready but Envoy has no <exp>.experiment route (MT302)",
    Fault.MISSING_HEADER: "the ingress does not derive seldon-model for the experiment path: requests without the "
    "header get Envoy's 404 (MT301)",
    Fault.SLOW_MODEL: "the model sleeps a known time per request, e.g. slow-model=20ms (default 20ms)",
    Fault.SLOW_ENVOY: "Envoy's fault filter delays every request a fixed time, e.g. slow-envoy=20ms (default 20ms)",
    Fault.MODEL_LOAD_FAIL: "a Model whose storageUri points where nothing is: rclone's copy fails, the agent's load "
    "fails, the Model is ModelFailed and never routed (MT109)",
    Fault.RUNTIME_DEPS: "a Model whose MLServer runtime imports a module the server's environment lacks: MLServer's "
    "load raises ModuleNotFoundError (MT110)",
    Fault.WORKER_CRASH: "MLServer runs one inference worker, which gets SIGKILL after start-up: MLServer logs the "
    "dead worker and starts another (MT601)",
    Fault.ROUTE_TIMEOUT: "Envoy's route timeout below the model's time, e.g. route-timeout=200ms (default 200ms; the "
    "model sleeps 1s unless slow-model says more): 504 with flag UT (MT308)",
    Fault.GRPC_MAX_MESSAGE: "MLServer's gRPC receive limit set to 1024 bytes: the example gRPC request fails with "
    "RESOURCE_EXHAUSTED through the ingress and Envoy (MT309)",
    Fault.REPLICAS_EXCEED_SERVER: "a Model with 2 replicas on the 1-replica Server: one replica is scheduled and "
    "serves, the Model is ScheduleFailed and not Ready (MT111)",
}

DELAY_FAULTS = frozenset({Fault.SLOW_MODEL, Fault.SLOW_ENVOY, Fault.ROUTE_TIMEOUT})
DEFAULT_DELAY_MS = 20.0
DEFAULT_ROUTE_TIMEOUT_MS = 200.0
# The model's time under route-timeout when slow-model does not set it: well above any timeout this fault accepts
# (at most 10 s), so a 504 is Envoy's timeout and not the model's scheduling noise.
ROUTE_TIMEOUT_MODEL_DELAY_MS = 1000.0
GRPC_MAX_MESSAGE_BYTES = 1024
MAX_DELAY_MS = 10_000.0

# Faults that describe incompatible control planes (local scheduler up with a central one vs. scaled to 0), or that
# leave nothing for the other to act on.
_CONFLICTS: tuple[frozenset[Fault], ...] = (
    frozenset({Fault.SPLIT_BRAIN, Fault.ALIAS_MISSING}),
    frozenset({Fault.STALE_WEIGHTS, Fault.NO_ROUTE}),
)

_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)?\s*$")


@dataclass(frozen=True)
class FaultSpec:
    """One requested fault; `delay_ms` is set for the latency faults only."""

    fault: Fault
    delay_ms: float | None = None

    @property
    def text(self) -> str:
        if self.delay_ms is None:
            return self.fault.value
        return f"{self.fault.value}={self.delay_ms:g}ms"


@dataclass(frozen=True)
class FaultSet:
    specs: tuple[FaultSpec, ...] = ()

    def has(self, fault: Fault) -> bool:
        return any(spec.fault is fault for spec in self.specs)

    def delay_ms(self, fault: Fault) -> float:
        """The configured delay of a latency fault, 0 when it is not requested."""
        for spec in self.specs:
            if spec.fault is fault and spec.delay_ms is not None:
                return spec.delay_ms
        return 0.0

    def model_delay_ms(self) -> float:
        """How long the model sleeps per request: slow-model's value, else route-timeout's slow model, else 0."""
        if self.has(Fault.SLOW_MODEL):
            return self.delay_ms(Fault.SLOW_MODEL)
        return max(ROUTE_TIMEOUT_MODEL_DELAY_MS, 2 * self.delay_ms(Fault.ROUTE_TIMEOUT)) if self.has(
            Fault.ROUTE_TIMEOUT) else 0.0

    @property
    def names(self) -> list[str]:
        return [spec.text for spec in self.specs]


def _parse_delay(name: str, value: str) -> float:
    match = _DURATION.match(value)
    if match is None:
        raise UsageError(f"--fault {name}={value}: the delay must look like 20ms or 0.5s")
    amount = float(match.group("value")) * (1000.0 if match.group("unit") == "s" else 1.0)
    if amount <= 0 or amount > MAX_DELAY_MS:
        raise UsageError(f"--fault {name}={value}: the delay must be above 0 and at most {MAX_DELAY_MS:g}ms")
    return amount


def parse_faults(values: Iterable[str]) -> FaultSet:
    """`NAME` or `NAME=VALUE` items (repeatable, also comma-separated) into a FaultSet; UsageError when wrong."""
    specs: dict[Fault, FaultSpec] = {}
    for raw in values:
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, _, value = item.partition("=")
            try:
                fault = Fault(name.strip())
            except ValueError:
                known = ", ".join(f.value for f in Fault)
                raise UsageError(f"unknown fault {name.strip()!r} (known: {known})") from None
            if fault in DELAY_FAULTS:
                default = DEFAULT_ROUTE_TIMEOUT_MS if fault is Fault.ROUTE_TIMEOUT else DEFAULT_DELAY_MS
                delay = _parse_delay(fault.value, value) if value else default
                specs[fault] = FaultSpec(fault, delay)
            elif value:
                raise UsageError(f"--fault {fault.value} takes no value (got {item!r})")
            else:
                specs[fault] = FaultSpec(fault)
    chosen = frozenset(specs)
    for pair in _CONFLICTS:
        if pair <= chosen:
            first, second = sorted(f.value for f in pair)
            raise UsageError(f"faults {first} and {second} cannot be combined")
    timeout, model = specs.get(Fault.ROUTE_TIMEOUT), specs.get(Fault.SLOW_MODEL)
    if timeout is not None and model is not None and (model.delay_ms or 0.0) <= (timeout.delay_ms or 0.0):
        raise UsageError(f"faults {model.text} and {timeout.text} cannot be combined: the model must be slower than "
                         "the route timeout for the timeout to fire")
    order = list(Fault)
    return FaultSet(tuple(sorted(specs.values(), key=lambda spec: order.index(spec.fault))))
