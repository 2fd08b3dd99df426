"""The request part of `smoke`: send `--count` requests to the endpoint (`trace.runner.run_many`) and judge them by
the gates and the stored baseline. Shared by the one-cluster run (`smoke.run`) and the run over several clusters
(`smoke.fleet`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.smoke import baseline as baselines
from mlops_trace.smoke.args import SmokeArgs
from mlops_trace.smoke.gates import GateResult, request_gates
from mlops_trace.snapshot.snapshot import RequestRecord


@dataclass(frozen=True)
class RequestRun:
    summary: Mapping[str, Any]
    records: tuple[RequestRecord, ...]  # judged by doctor with the rest
    target: str
    is_experiment: bool
    ended_at: float


def judge_requests(
    args: SmokeArgs, run: RequestRun, stored: baselines.Baseline | None, notes: list[str]
) -> list[GateResult]:
    """The request run's gates (and its baseline comparison); saves the baseline when asked, adding to `notes`."""
    gates = request_gates(run.summary, args.gates, run.is_experiment)
    current = baselines.from_summary(run.summary, run.target)
    if stored is not None:
        gates += baselines.compare(stored, current, args.regression_margin, args.regression_floor_ms)
    if args.save_baseline is not None:
        baselines.save(current, args.save_baseline)
        notes.append(f"baseline written to {args.save_baseline}")
    notes += [str(note) for note in run.summary.get("notes") or ()]
    return gates


def request_run(args: SmokeArgs, kubeconfig: str | None) -> RequestRun:
    from mlops_trace.trace.command import RequestArgs, options_from
    from mlops_trace.trace.runner import run_many

    request = RequestArgs(
        url=args.url,
        host=args.host,
        model=args.model,
        experiment=args.experiment,
        data=args.data,
        headers=args.headers,
        protocol=args.protocol,
        timeout=args.timeout,
        insecure=args.insecure,
        cacert=args.cacert,
        count=args.request_count,
        concurrency=args.concurrency,
        rate=args.rate,
        until_decided=args.gates.until_decided,
        split_tolerance=args.gates.split_tolerance,
        split_alpha=args.gates.split_alpha,
        bundle=None if args.stack else args.bundle,
        kubeconfig=None if args.stack else kubeconfig,
        context=None if args.stack else args.context,
        namespaces=args.namespaces,
        probes=0,
        log_wait=args.log_wait,
        output="json",
        state_dir=args.state_dir,
        no_stack=not args.stack,
    )
    options = options_from(request)
    summary = run_many(options)
    target = options.target
    called = f"experiment {target.name}" if target.is_experiment else f"model {target.name}"
    return RequestRun(
        summary=summary.to_dict(),
        records=summary.records,
        target=f"{target.base_url}{target.infer_path} ({called}, {target.protocol.value})",
        is_experiment=target.is_experiment,
        ended_at=time.time(),
    )
