"""The short logs of a bundle: the controller manager's (zap), each server replica's agent log, and the small
namespaces' scheduler logs (logrus). The big namespace's scheduler log is `scheduler_log`'s job."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bench.generate.layout import (
    BIG_NAMESPACE,
    CONTROL_NAMESPACE,
    CONTROLLER_POD,
    START,
    Namespace,
    logrus_time,
    zap_time,
)


def write_controller_log(root: Path, spaces: list[Namespace]) -> None:
    """The controller manager in clusterwide mode, connecting to each namespace's scheduler."""
    log = root / "logs" / CONTROL_NAMESPACE / CONTROLLER_POD / "manager.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as handle:
        handle.write(f"{zap_time(START)}\tINFO\tsetup\tClusterwide mode enabled, watching all namespaces\n")
        for i, space in enumerate(spaces):
            when = START + timedelta(seconds=2 + i * 0.01)
            handle.write(
                f"{zap_time(when)}\tINFO\tschedulerClient\tConnected to scheduler\t"
                f'{{"namespace": "{space.name}", "host": "seldon-scheduler.{space.name}:9004"}}\n'
            )


def write_small_logs(root: Path, space: Namespace) -> None:
    """Agent logs (subscription, then a load success for each Model placed on that replica) and, for the small
    namespaces, a short scheduler log."""
    ns = space.name
    for replica in range(space.replicas):
        path = root / "logs" / ns / f"mlserver-{replica}" / "agent.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            t = START + timedelta(seconds=30)
            handle.write(
                f'time="{logrus_time(t)}" level=info msg="Connecting (non-blocking) to scheduler at '
                f'seldon-scheduler:9005" source=Client\n'
            )
            handle.write(f'time="{logrus_time(t)}" level=info msg="Subscribed to scheduler" source=Client\n')
            for j, model in enumerate(space.models):
                if j % space.replicas != replica or model in space.unschedulable:
                    continue
                when = logrus_time(t + timedelta(seconds=1 + j // 50))
                handle.write(f'time="{when}" level=info msg="Load model {model}:1 success" source=Client\n')
    if ns == BIG_NAMESPACE:
        return
    path = root / "logs" / ns / "seldon-scheduler-0" / "scheduler.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        t = START
        handle.write(
            f'time="{logrus_time(t)}" level=info msg="Scheduler server running on 9004 mtls:false" '
            "source=SchedulerServer\n"
        )
        handle.write(
            f'time="{logrus_time(t)}" level=info msg="Received agent subscribe request from mlserver:0" '
            "func=Subscribe source=AgentServer\n"
        )
        for j, model in enumerate(space.models):
            when = logrus_time(t + timedelta(seconds=20 + j))
            handle.write(
                f'time="{when}" level=info msg="Sending load model request for {model}" func=LoadModel '
                "source=AgentServer\n"
            )
            handle.write(
                f'time="{when}" level=info msg="Updating state for model {model} to Available" '
                "func=updateModelState source=MemoryStore\n"
            )
            handle.write(
                f'time="{when}" level=info msg="Handle vanilla no experiment traffic for {model}" '
                "func=handleModelEvent source=IncrementalProcessor\n"
            )
