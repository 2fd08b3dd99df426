"""The big scheduler log (about 1 GB at full size) in logrus' text format: a fixed, weighted mix of routine lines
(`LOG_MIX`), the scheduling failures of the unschedulable Models, and route-thrash bursts (the SELDON-FACTS §2.3
loop), all drawn from a seeded random generator so the same size gives the same bytes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from bench.generate.layout import START, Namespace, logrus_time

# (weight, template) of the big scheduler log's routine lines; {m} a model, {e} an experiment, {n} a number.
LOG_MIX: tuple[tuple[int, str], ...] = (
    (
        22,
        'level=info msg="Handle vanilla no experiment traffic for {m}" func=handleModelEvent source=IncrementalProcessor',
    ),
    (14, 'level=debug msg="Updating envoy resources for model {m}" func=updateEnvoy source=IncrementalProcessor'),
    (
        12,
        'level=info msg="Received model-status subscribe request from seldon manager" func=SubscribeModelStatus source=SchedulerServer',
    ),
    (10, 'level=debug msg="Snapshot version {n} set for node seldon-envoy" func=updateEnvoy source=SeldonXDSCache'),
    (
        8,
        'level=info msg="Server notification mlserver expectedReplicas {r} shared true" func=ServerNotify source=SchedulerServer',
    ),
    (
        8,
        'level=debug msg="Model {m} version 1 replica mlserver:{i} state Available" func=ModelStatus source=MemoryStore',
    ),
    (6, 'level=info msg="Received agent subscribe request from mlserver:{i}" func=Subscribe source=AgentServer'),
    (4, 'level=info msg="Sending load model request for {m}" func=LoadModel source=AgentServer'),
    (3, 'level=info msg="Updating state for model {m} to Available" func=updateModelState source=MemoryStore'),
    (3, 'level=warning msg="No route found for model {m}" func=RemoveRoute source=SeldonXDSCache'),
    (
        2,
        'level=error msg="Failed to send event" error="rpc error: code = Unavailable desc = \\"transport is closing\\"" source=AgentServer',
    ),
    (
        1,
        'level=info msg="Experiment {e} sync - calling for model {m}" func=handleExperimentEvent source=IncrementalProcessor',
    ),
)
THRASH_BURSTS = 4  # route-thrash loops (MT102) spread through the big log
THRASH_ROUNDS = 6


def write_scheduler_log(path: Path, space: Namespace, target: int, rng: random.Random) -> None:
    """About `target` bytes of `LOG_MIX` lines, 400 a second, with the scheduling failures at 30 % and the
    route-thrash bursts spread evenly through it; `rng` (seeded by the caller) picks the lines and their models."""
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = [w for w, _ in LOG_MIX]
    templates = [t for _, t in LOG_MIX]
    models = space.models
    experiments = [e[0] for e in space.experiments] or ["ab-0000"]
    routable = [m for m in models if m not in space.unschedulable]
    written = 0
    second = 0
    thrash_at = {int(target * (k + 1) / (THRASH_BURSTS + 1)) for k in range(THRASH_BURSTS)}
    failure_at = int(target * 0.3)
    next_mark = sorted(thrash_at | {failure_at})
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        head = _log_header(START)
        handle.write(head)
        written += len(head.encode())
        while written < target:
            block: list[str] = []
            stamp = logrus_time(START + timedelta(seconds=60 + second))
            second += 1
            chosen = rng.choices(templates, weights, k=400)
            for template in chosen:
                line = template.format(
                    m=routable[rng.randrange(len(routable))],
                    e=experiments[rng.randrange(len(experiments))],
                    n=rng.randrange(1, 1_000_000),
                    r=space.replicas,
                    i=rng.randrange(space.replicas),
                )
                block.append(f'time="{stamp}" {line}\n')
            if next_mark and written >= next_mark[0]:
                mark = next_mark.pop(0)
                when = START + timedelta(seconds=60 + second)
                block += list(_failure_lines(space, when) if mark == failure_at else _thrash_lines(space, when))
            text = "".join(block)
            handle.write(text)
            written += len(text)  # ASCII only: characters are bytes


def _log_header(when: datetime) -> str:
    stamp = logrus_time(when)
    return "".join(
        f'time="{stamp}" level=info msg="{text}"\n'
        for text in (
            "Version 2.10.1",
            "Scheduler server running on 9004 mtls:false",
            "Agent server running on 9005 mtls:false",
            "Starting xDS envoy server on port 9002 with secure: false",
        )
    )


def _thrash_lines(space: Namespace, when: datetime) -> Iterator[str]:
    experiment, baseline, _ = space.experiments[0] if space.experiments else ("ab-0000", space.models[0], "")
    for round_ in range(THRASH_ROUNDS):
        stamp = logrus_time(when + timedelta(seconds=2 * round_))
        yield (
            f'time="{stamp}" level=info msg="Experiment {experiment} sync - calling for model {baseline}" '
            "func=handleExperimentEvent source=IncrementalProcessor\n"
        )
        yield f'time="{stamp}" level=info msg="Remove Routes for model {baseline}" func=RemoveRoute source=SeldonXDSCache\n'
        yield (
            f'time="{stamp}" level=info msg="Trying to setup experiment for {baseline}" func=addExperiment '
            "source=IncrementalProcessor\n"
        )
        yield (
            f'time="{stamp}" level=info msg="Remove Routes for model {experiment}.experiment" func=RemoveRoute '
            "source=SeldonXDSCache\n"
        )


def _failure_lines(space: Namespace, when: datetime) -> Iterator[str]:
    stamp = logrus_time(when)
    for model in space.unschedulable:
        yield (
            f'time="{stamp}" level=warning msg="Failed to schedule model {model}" '
            'error="failed to schedule model as no matching servers are available" model='
            + model
            + " source=SimpleScheduler\n"
        )
