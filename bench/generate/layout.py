"""The shape of a generated bundle: its sizes, its namespaces and the Models in each, and the names, addresses and
clock every writer shares (so the pods, the Envoy dump and the logs agree on them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BIG_NAMESPACE = "ml-prod"
CONTROL_NAMESPACE = "seldon-system"
CONTROLLER_POD = "seldon-v2-controller-manager-6c9f8d7b54-q2xkp"
START = datetime(2025, 11, 17, 9, 20, 15, tzinfo=UTC)
UNSCHEDULABLE = 3  # Models per big namespace with a scheduling failure (MT106)
UNROUTED = 2  # Ready Models of the big namespace Envoy has no route for (MT302/MT108)


@dataclass(frozen=True)
class Size:
    name: str
    namespaces: int
    models: int
    big_share: float  # share of the Models that live in the big namespace
    big_replicas: int  # server replicas in the big namespace: endpoints per cluster, which sizes the dump
    scheduler_log_bytes: int
    experiments_per_big: int

    def describe(self) -> dict[str, Any]:
        return asdict(self)


SIZES = {
    "tiny": Size(
        "tiny",
        namespaces=4,
        models=120,
        big_share=0.5,
        big_replicas=2,
        scheduler_log_bytes=2_000_000,
        experiments_per_big=4,
    ),
    "full": Size(
        "full",
        namespaces=200,
        models=10_000,
        big_share=0.5,
        big_replicas=6,
        scheduler_log_bytes=1_000_000_000,
        experiments_per_big=250,
    ),
}


@dataclass(frozen=True)
class Namespace:
    name: str
    models: tuple[str, ...]
    experiments: tuple[tuple[str, str, str], ...]  # (name, baseline, candidate)
    replicas: int
    unschedulable: tuple[str, ...]
    unrouted: tuple[str, ...]


def namespaces(size: Size) -> list[Namespace]:
    """The big namespace first (half the Models, the experiments, the unschedulable and unrouted Models), then the
    small ones sharing the rest evenly."""
    big_models = int(size.models * size.big_share)
    small_count = size.namespaces - 1
    rest = size.models - big_models
    spaces: list[Namespace] = []
    models = tuple(f"model-{i:05d}" for i in range(big_models))
    experiments = tuple(
        (f"ab-{i:04d}", models[2 * i], models[2 * i + 1]) for i in range(min(size.experiments_per_big, big_models // 2))
    )
    spaces.append(
        Namespace(
            BIG_NAMESPACE,
            models,
            experiments,
            size.big_replicas,
            unschedulable=models[-UNSCHEDULABLE:],
            unrouted=models[-UNSCHEDULABLE - UNROUTED : -UNSCHEDULABLE],
        )
    )
    for index in range(small_count):
        share = rest // small_count + (1 if index < rest % small_count else 0)
        names = tuple(f"svc-{index:03d}-m{j:03d}" for j in range(share))
        exp = ((f"svc-{index:03d}-ab", names[0], names[1]),) if len(names) >= 2 else ()
        spaces.append(Namespace(f"team-{index:03d}", names, exp, 1, (), ()))
    return spaces


# --- names and addresses -------------------------------------------------------------------------------------------


def namespace_index(namespace: str) -> int:
    """`team-007` → 7; the big namespace is 250 (past the small ones)."""
    return int(namespace.split("-")[1]) if namespace.startswith("team-") else 250


def pod_network(namespace: str) -> str:
    """The first three octets of the namespace's pod IPs (servers at .10 and up, the scheduler .2, Envoy .3)."""
    index = namespace_index(namespace)
    return f"10.{index // 250 + 40}.{index % 250}"


def envoy_dir(root: Path, namespace: str) -> Path:
    return root / "envoy" / namespace / envoy_pod(namespace)


def envoy_pod(namespace: str) -> str:
    return f"seldon-envoy-{_hash(namespace, 10)}-{_hash(namespace + 'p', 5)}"


def _hash(text: str, length: int) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    value = sum((i + 1) * ord(c) for i, c in enumerate(text)) * 2654435761
    out = []
    for _ in range(length):
        out.append(alphabet[value % len(alphabet)])
        value //= len(alphabet)
    return "".join(out)


# --- clock ---------------------------------------------------------------------------------------------------------


def kube_time(when: datetime) -> str:
    """A Kubernetes timestamp: RFC 3339 with `Z`."""
    return when.isoformat().replace("+00:00", "Z")


def zap_time(when: datetime) -> str:
    """The controller manager's (zap) timestamp: milliseconds and `Z`."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def logrus_time(when: datetime) -> str:
    """The scheduler's and agent's (logrus) timestamp: whole seconds and `Z`."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
