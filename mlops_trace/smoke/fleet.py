"""`smoke` over several clusters (`--context A --context B`, `--all-contexts`, `--parallel N`).

The request part runs once: `--url` is the serving endpoint, which may be a global load balancer in front of the
clusters, so its gates (and its baseline) are judged once, and its records are not handed to any one cluster's doctor
(which cluster answered a request is not known from the client). The request run reads no cluster. The doctor part
then runs per context through `fleet.run_fleet` (each context its own namespace unless -n/-A), after the requests so
the logs it reads include them. `--count 0` (or no `--url`): doctor only, over the clusters.
"""

from __future__ import annotations

from dataclasses import replace

from mlops_trace.collect.target import LiveTarget
from mlops_trace.doctor import DoctorRun
from mlops_trace.fleet import DEFAULT_PARALLEL, ClusterDone, FleetRun, fleet_contexts, run_fleet
from mlops_trace.smoke import baseline as baselines
from mlops_trace.smoke.args import SmokeArgs
from mlops_trace.smoke.gates import GateResult
from mlops_trace.smoke.report import SmokeReport
from mlops_trace.smoke.requests import judge_requests, request_run


def run_smoke_fleet(args: SmokeArgs) -> SmokeReport:
    """The requests once, doctor per cluster; raises MlopsTraceError when the run cannot happen (`run_smoke` makes it
    the report's error). Flags were checked by `run._validate`."""
    from mlops_trace.analysis.catalog import select

    contexts = fleet_contexts(args.kubeconfig, args.contexts, args.all_contexts)
    select(args.only, args.skip)  # a bad --only stops the run before any request is sent
    stored = baselines.load(args.baseline) if args.baseline is not None else None
    notes: list[str] = []
    sends = args.url is not None and args.request_count > 0
    # The endpoint is not one cluster's: the request run reads no kubeconfig, context or bundle.
    run = request_run(replace(args, context=None, namespaces=(), bundle=None), None) if sends else None
    if run is None:
        why = "--count 0" if args.request_count == 0 else "no endpoint: give --url"
        notes.append(f"no request was sent ({why}): only doctor ran, over {len(contexts)} contexts, no gate was judged")
    doctor = DoctorRun(
        live=LiveTarget(
            namespaces=args.namespaces,
            all_namespaces=args.all_namespaces,
            kubeconfig=args.kubeconfig,
            request_timeout=args.request_timeout,
            deadline=args.live_deadline,
        ),
        limits=args.limits,
        service_level=args.service_level,
        only=args.only,
        skip=args.skip,
    )
    heard: list[str] = []

    def hear(done: ClusterDone) -> None:
        heard.extend(f"context {done.outcome.cluster}: {note}" for note in done.notes)

    parallel = DEFAULT_PARALLEL if args.parallel is None else args.parallel
    fleet = run_fleet(FleetRun(doctor, contexts, parallel), hear)
    gates: list[GateResult] = judge_requests(args, run, stored, notes) if run is not None else []
    notes += [f"context {cluster}: {check.id} could not run ({check.reason})" for cluster, check in fleet.errored_checks()]
    return SmokeReport(
        source=args.describe_source(),
        report=None,
        gates=tuple(gates),
        fail_on=args.fail_on,
        request=run.summary if run is not None else None,
        target=run.target if run is not None else "",
        notes=tuple(heard + notes),
        fleet=fleet,
    )
