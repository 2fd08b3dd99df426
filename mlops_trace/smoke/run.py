"""`mlops-trace smoke`: the CI gate. Send `--count N` requests through the serving path, then run doctor (with
Prometheus when there is one), judge the gates, compare with a stored baseline, and give one exit code.

Order matters: the requests go first, so the logs doctor reads and the counters Prometheus scrapes include them
(the Prometheus queries wait, up to `--prometheus-wait`, for a scrape newer than the run plus Envoy's 5 s stats
flush). Sources:

- `--stack`: the reference stack (`mlops-trace stack up`): its kubeconfig for doctor, its ingress and experiment for
  the requests, its Prometheus when it runs one;
- `-n/-A` (live, with `--kubeconfig/--context`) or `--bundle DIR` for doctor, and `--url` (+ `--model` or
  `--experiment`) for the requests;
- several contexts (`--context A --context B`, `--all-contexts`): doctor per cluster, the requests once to `--url`
  (see `smoke.fleet`).

Anything that keeps the run from happening (bad flags, unreadable bundle or baseline, unreachable endpoint, cluster
or Prometheus) ends as a `SmokeReport` with `error` set: exit 2, with a document in the requested format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlops_trace.doctor import ServiceLevel
from mlops_trace.errors import ClusterError, MlopsTraceError, UsageError
from mlops_trace.findings import Report
from mlops_trace.prometheus.client import PrometheusConfig
from mlops_trace.smoke import baseline as baselines
from mlops_trace.smoke.args import SmokeArgs
from mlops_trace.smoke.report import SmokeReport, could_not_run
from mlops_trace.smoke.requests import RequestRun, judge_requests, request_run

__all__ = ["SmokeArgs", "run_smoke"]

WARMUP_REQUESTS = 5  # sent before the measured run when Prometheus judges it; not counted in any gate
# Envoy publishes histograms (not counters) on its stats flush, every 5 s by default: a scrape right after the run
# would see the requests counted but not yet timed.
ENVOY_STATS_FLUSH_S = 5.0


def run_smoke(args: SmokeArgs) -> SmokeReport:
    """The whole smoke test; never raises MlopsTraceError (it becomes the report's error, exit 2)."""
    try:
        return _run(args)
    except MlopsTraceError as exc:
        return could_not_run(args.describe_source(), str(exc), args.fail_on)


def _validate(args: SmokeArgs) -> None:
    if args.several:
        _validate_several(args)
    sources = [args.several, args.bundle is not None, bool(args.namespaces or args.all_namespaces) and not args.stack, args.stack]
    if args.stack and args.bundle is not None:
        raise UsageError("--stack reads the reference stack; it does not go with --bundle")
    if sum(sources) == 0:
        raise UsageError("say what doctor examines: --stack, --bundle DIR, or -n NAMESPACE / -A (live)")
    if args.bundle is not None and (args.namespaces or args.all_namespaces):
        raise UsageError("--bundle reads an offline bundle; it does not go with -n/-A")
    if args.count is not None and args.count < 0:
        raise UsageError("--count must be 0 (no requests) or more")
    if not 0.0 <= args.gates.min_success <= 1.0:
        raise UsageError("--min-success must be a fraction between 0 and 1 (e.g. 0.99)")
    for flag, value in (("--max-p95", args.gates.max_p95_ms), ("--max-p99", args.gates.max_p99_ms)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be above 0 ms")
    if not 0.0 < args.gates.split_tolerance < 1.0:
        raise UsageError("--split-tolerance must be a share between 0 and 1 (e.g. 0.05)")
    if args.regression_margin < 0 or args.regression_floor_ms < 0:
        raise UsageError("--regression-margin and --regression-floor must not be negative")
    if args.prometheus_wait_s < 0:
        raise UsageError("--prometheus-wait must not be negative")
    if args.baseline is not None and args.save_baseline is not None and args.baseline == args.save_baseline:
        raise UsageError("--baseline and --save-baseline name the same file")
    endpoint = args.url is not None or args.stack
    if not endpoint or args.request_count == 0:
        asked = [
            flag
            for flag, given in (
                ("--max-p95", args.gates.max_p95_ms is not None),
                ("--max-p99", args.gates.max_p99_ms is not None),
                ("--until-decided", args.gates.until_decided),
                ("--baseline", args.baseline is not None),
                ("--save-baseline", args.save_baseline is not None),
            )
            if given
        ]
        if asked:
            why = "no endpoint (give --url or --stack)" if not endpoint else "--count 0 sends no request"
            raise UsageError(f"{', '.join(asked)} judge(s) the request run, but {why}")


def _validate_several(args: SmokeArgs) -> None:
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.fleet import check_live_only, check_parallel

    if args.stack:
        raise UsageError("--stack tests the reference stack's one cluster; it does not go with several contexts")
    if args.bundle is not None:
        raise UsageError("--bundle reads one offline bundle; it does not go with several contexts")
    check_live_only(LiveTarget(envoy_admin=args.envoy_admin), args.service_level.prometheus is not None)
    if args.parallel is not None:
        check_parallel(args.parallel)


def _stack_info(state_dir: Path | None) -> dict[str, Any]:
    try:
        from mlops_trace.stack.status import status
    except ImportError as exc:  # an install without the reference stack's package
        raise UsageError(f"--stack needs the reference stack ({exc})") from exc
    info = status(state_dir)
    if not info.get("running"):
        raise ClusterError(
            f"the reference stack is not running (state dir {info.get('state_dir')}): run `mlops-trace stack up`"
        )
    return info


def _run(args: SmokeArgs) -> SmokeReport:
    _validate(args)
    if args.several:
        from mlops_trace.smoke.fleet import run_smoke_fleet

        return run_smoke_fleet(args)
    service_level = args.service_level
    kubeconfig = args.kubeconfig
    notes: list[str] = []
    if args.stack:
        info = _stack_info(args.state_dir)
        kubeconfig = str(info["kubeconfig"])
        if service_level.prometheus is None:
            if info.get("prometheus_url"):
                service_level = ServiceLevel(
                    PrometheusConfig(str(info["prometheus_url"])), service_level.window, service_level.objectives
                )
            else:
                notes.append(
                    f"the reference stack runs without Prometheus ({info.get('prometheus')}): MT401-MT403 are skipped"
                )
    stored = baselines.load(args.baseline) if args.baseline is not None else None
    sends = (args.url is not None or args.stack) and args.request_count > 0
    if sends and service_level.prometheus is not None:
        from mlops_trace.prometheus.attach import wait_for_first_scrapes

        if not wait_for_first_scrapes(service_level.prometheus, args.prometheus_wait_s):
            notes.append(
                f"Prometheus had not scraped all its targets within {args.prometheus_wait_s:g}s: its "
                "counters may miss the run's first requests"
            )
        # Warm-up: a few requests, then a scrape after Envoy's next stats flush, so every series the measured run
        # feeds already has a baseline sample in Prometheus (see wait_for_baseline).
        from mlops_trace.prometheus.attach import wait_for_baseline

        warmup = request_run(
            replace(args, count=WARMUP_REQUESTS, gates=replace(args.gates, until_decided=False)), kubeconfig
        )
        if not wait_for_baseline(
            service_level.prometheus,
            service_level.window,
            warmup.ended_at + ENVOY_STATS_FLUSH_S,
            args.prometheus_wait_s,
        ):
            notes.append(
                "Prometheus did not scrape the warm-up requests in time: latency series born during the "
                "run may read as empty"
            )
    run = request_run(args, kubeconfig) if sends else None
    if not sends:
        why = "--count 0" if args.request_count == 0 else "no endpoint: give --url or --stack"
        notes.append(f"no request was sent ({why}): only doctor ran, no gate was judged")
    report, prometheus_notes = _doctor(args, service_level, kubeconfig, run)
    gates = judge_requests(args, run, stored, notes) if run is not None else []
    return SmokeReport(
        source=args.describe_source(),
        report=report,
        gates=tuple(gates),
        fail_on=args.fail_on,
        request=run.summary if run is not None else None,
        target=run.target if run is not None else "",
        prometheus=tuple(prometheus_notes),
        notes=tuple(notes),
    )


def _doctor(
    args: SmokeArgs, service_level: ServiceLevel, kubeconfig: str | None, run: RequestRun | None
) -> tuple[Report, Sequence[str]]:
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.doctor import DoctorRun, run_doctor

    live = LiveTarget(
        namespaces=args.namespaces,
        all_namespaces=args.all_namespaces or (args.stack and not args.namespaces),
        kubeconfig=kubeconfig,
        context=None if args.stack else args.context,
        request_timeout=args.request_timeout,
        deadline=args.live_deadline,
        envoy_admin=args.envoy_admin,
    )
    result = run_doctor(
        DoctorRun(
            bundle=args.bundle,
            live=None if args.bundle is not None else live,
            limits=args.limits,
            service_level=service_level,
            only=args.only,
            skip=args.skip,
            requests=run.records if run is not None else (),
            fresh_after=run.ended_at + ENVOY_STATS_FLUSH_S if run is not None else None,
            prometheus_wait_s=args.prometheus_wait_s,
        )
    )
    return result.report, result.notes
