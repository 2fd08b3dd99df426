"""What the reference stack is made of: names, namespaces, models, the A/B experiment, ports, and what each fault
changes about who runs where. Pure values; nothing here starts or writes anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum

from mlops_trace.stack.faults import GRPC_MAX_MESSAGE_BYTES, Fault, FaultSet

NAMESPACE = "financial-inference"
SYSTEM_NAMESPACE = "seldon-system"
INGRESS_NAMESPACE = "ingress-nginx"
DNS_NAMESPACE = "kube-system"
HOST = "ml-api.local"

SERVER = "mlserver"
SERVER_POD = "mlserver-0"
SCHEDULER = "seldon-scheduler"
SCHEDULER_POD = "seldon-scheduler-0"
ENVOY_POD = "seldon-envoy-7d9c5b8f6c-q4x2m"
CONTROLLER = "seldon-v2-controller-manager"
CONTROLLER_POD = "seldon-v2-controller-manager-5c7d8b9f4-k8x2p"
INGRESS_CONTROLLER = "ingress-nginx-controller"
INGRESS_POD = "ingress-nginx-controller-6b9d8c7f5-m2n4p"

EXPERIMENT = "financial-ab-test-experiment"
EXPERIMENT_ROUTE = f"{EXPERIMENT}.experiment"
MODEL_VERSION = 1
INPUT_SHAPE = (1, 10, 35)
INPUT_NAME = "input_data"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weight: int  # the Experiment's weight
    stale_weight: int  # what Envoy keeps under the stale-weights fault

    @property
    def internal(self) -> str:
        """`<model>_<version>`: Envoy clusters, seldon-internal-model, x-seldon-route, MLServer's model name."""
        return f"{self.name}_{MODEL_VERSION}"


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("baseline-predictor", 70, 50),
    ModelSpec("enhanced-predictor", 30, 50),
)
DEFAULT_MODEL = MODELS[0].name
SERVER_REPLICAS = 1


class Storage(StrEnum):
    """Where a fault's extra Model's storageUri points."""

    MISSING = "missing"  # a directory where nothing is: rclone's copy fails
    DEPS_RUNTIME = "deps-runtime"  # a model folder whose model-settings name a runtime with a missing import
    BASELINE = "baseline"  # the baseline's trained artifacts


@dataclass(frozen=True)
class ExtraModel:
    """A Model outside the experiment that a fault adds to the namespace."""

    name: str
    storage: Storage
    replicas: int = 1

    @property
    def internal(self) -> str:
        return f"{self.name}_{MODEL_VERSION}"


EXTRA_MODELS: dict[Fault, ExtraModel] = {
    Fault.MODEL_LOAD_FAIL: ExtraModel("fraud-detector", Storage.MISSING),
    Fault.RUNTIME_DEPS: ExtraModel("feature-store-predictor", Storage.DEPS_RUNTIME),
    Fault.REPLICAS_EXCEED_SERVER: ExtraModel("risk-scorer", Storage.BASELINE, replicas=SERVER_REPLICAS + 1),
}


@dataclass(frozen=True)
class Ports:
    """Host ports on 127.0.0.1 chosen at start, one per entry point (in-cluster ports stay Seldon's defaults)."""

    ingress_http: int
    ingress_grpc: int
    envoy_http: int
    envoy_admin: int
    agent_http: int
    agent_grpc: int
    agent_admin: int
    mlserver_http: int
    mlserver_grpc: int
    mlserver_metrics: int
    scheduler_api: int
    scheduler_agent: int
    central_scheduler_api: int
    central_scheduler_agent: int
    prometheus: int
    kube_api: int
    rclone: int

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """Who runs and who points where, for one set of faults."""

    faults: FaultSet
    local_scheduler: bool  # the namespace's own scheduler has replicas 1 and runs
    local_scheduler_service: bool  # a seldon-scheduler Service exists in the namespace
    central_scheduler: bool  # a scheduler runs in seldon-system
    agent_scheduler_host: str  # SELDON_SCHEDULER_HOST of the agent container
    thrash: bool  # two schedulers rewrite Envoy's routes with different views
    experiment_route: bool  # the scheduler adds the <exp>.experiment route
    stale_weights: bool
    ingress_prefix: bool
    netpol_intra: bool  # the namespace's policies admit only the ingress namespace
    header_derivation: bool  # the ingress adds seldon-model for the experiment path when a client did not
    model_delay_ms: float
    envoy_delay_ms: float
    route_timeout_ms: float  # Envoy's route timeout; 0 is Seldon's default (none)
    parallel_workers: int  # MLServer's inference workers (0: inference in the main process)
    kill_worker: bool  # SIGKILL MLServer's inference worker once the stack is up
    grpc_max_message: int | None  # MLServer's grpc_max_message_length, None for its default
    extra_models: tuple[ExtraModel, ...]

    @classmethod
    def for_faults(cls, faults: FaultSet) -> Plan:
        split = faults.has(Fault.SPLIT_BRAIN)
        alias_missing = faults.has(Fault.ALIAS_MISSING)
        return cls(
            faults=faults,
            local_scheduler=not alias_missing,
            local_scheduler_service=not alias_missing,
            central_scheduler=split or alias_missing,
            agent_scheduler_host=f"{SCHEDULER}.{SYSTEM_NAMESPACE}" if split else SCHEDULER,
            thrash=split,
            experiment_route=not faults.has(Fault.NO_ROUTE),
            stale_weights=faults.has(Fault.STALE_WEIGHTS),
            ingress_prefix=faults.has(Fault.INGRESS_PREFIX),
            netpol_intra=faults.has(Fault.NETPOL_INTRA),
            header_derivation=not faults.has(Fault.MISSING_HEADER),
            model_delay_ms=faults.model_delay_ms(),
            envoy_delay_ms=faults.delay_ms(Fault.SLOW_ENVOY),
            route_timeout_ms=faults.delay_ms(Fault.ROUTE_TIMEOUT),
            parallel_workers=1 if faults.has(Fault.WORKER_CRASH) else 0,
            kill_worker=faults.has(Fault.WORKER_CRASH),
            grpc_max_message=GRPC_MAX_MESSAGE_BYTES if faults.has(Fault.GRPC_MAX_MESSAGE) else None,
            extra_models=tuple(model for fault, model in EXTRA_MODELS.items() if faults.has(fault)),
        )

    def envoy_weights(self) -> dict[str, int]:
        """The weights the scheduler programs into Envoy."""
        return {m.name: (m.stale_weight if self.stale_weights else m.weight) for m in MODELS}


def experiment_weights() -> dict[str, int]:
    """The weights the Experiment resource declares."""
    return {m.name: m.weight for m in MODELS}


def model_by_name(name: str) -> ModelSpec:
    return next(m for m in MODELS if m.name == name)
