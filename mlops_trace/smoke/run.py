"""`mlops-trace smoke`: the CI gate. Send `--count N` requests through the serving path, then run doctor (with
Prometheus when there is one), judge the gates, compare with a stored baseline, and give one exit code.

Order matters: the requests go first, so the logs doctor reads and the counters Prometheus scrapes include them
(the Prometheus queries wait, up to `--prometheus-wait`, for a scrape newer than the run plus Envoy's 5 s stats
flush). Sources:

- `--stack`: the reference stack (`mlops-trace stack up`): its kubeconfig for doctor, its ingress and experiment for
  the requests, its Prometheus when it runs one;
- `-n/-A` (live, with `--kubeconfig/--context`) or `--bundle DIR` for doctor, and `--url` (+ `--model` or
  `--experiment`) for the requests.

Anything that keeps the run from happening (bad flags, unreadable bundle or baseline, unreachable endpoint, cluster
or Prometheus) ends as a `SmokeReport` with `error` set: exit 2, with a document in the requested format.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_trace.doctor import ServiceLevel
from mlops_trace.errors import ClusterError, MlopsTraceError, UsageError
from mlops_trace.findings import Report, Severity
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.prometheus.client import PrometheusConfig
from mlops_trace.smoke import baseline as baselines
from mlops_trace.smoke.gates import GateResult, GateSettings, request_gates
from mlops_trace.smoke.report import SmokeReport, could_not_run
from mlops_trace.snapshot.snapshot import RequestRecord

# The split gate fails on an observed share farther than --split-tolerance from its target: at 100 answers a healthy
# 70/30 split lands outside ±5 points by chance 23 % of the time (exact binomial), at 1000 answers 0.05 %.
DEFAULT_COUNT = 1000
WARMUP_REQUESTS = 5  # sent before the measured run when Prometheus judges it; not counted in any gate
# Envoy publishes histograms (not counters) on its stats flush, every 5 s by default: a scrape right after the run
# would see the requests counted but not yet timed.
ENVOY_STATS_FLUSH_S = 5.0
DEFAULT_COUNT_UNTIL_DECIDED = 2000  # a cap: the sequential test usually stops far earlier


@dataclass(frozen=True)
class SmokeArgs:
    # where doctor reads the cluster
    bundle: Path | None = None
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    kubeconfig: str | None = None
    context: str | None = None
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

    def describe_source(self) -> str:
        if self.stack:
            return f"reference stack ({self.state_dir or 'default state dir'})"
        if self.bundle is not None:
            return str(self.bundle)
        if self.all_namespaces:
            return "live cluster, all namespaces"
        if self.namespaces:
            return f"live cluster, namespaces {', '.join(self.namespaces)}"
        return "no cluster source"


@dataclass(frozen=True)
class _RequestRun:
    summary: Mapping[str, Any]
    records: tuple[RequestRecord, ...]  # judged by doctor with the rest
    target: str
    is_experiment: bool
    ended_at: float


def run_smoke(args: SmokeArgs) -> SmokeReport:
    """The whole smoke test; never raises MlopsTraceError (it becomes the report's error, exit 2)."""
    try:
        return _run(args)
    except MlopsTraceError as exc:
        return could_not_run(args.describe_source(), str(exc), args.fail_on)


def _validate(args: SmokeArgs) -> None:
    sources = [args.bundle is not None, bool(args.namespaces or args.all_namespaces) and not args.stack, args.stack]
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

        warmup = _request_run(
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
    run = _request_run(args, kubeconfig) if sends else None
    if not sends:
        why = "--count 0" if args.request_count == 0 else "no endpoint: give --url or --stack"
        notes.append(f"no request was sent ({why}): only doctor ran, no gate was judged")
    report, prometheus_notes = _doctor(args, service_level, kubeconfig, run)
    gates: list[GateResult] = []
    if run is not None:
        gates += request_gates(run.summary, args.gates, run.is_experiment)
        current = baselines.from_summary(run.summary, run.target)
        if stored is not None:
            gates += baselines.compare(stored, current, args.regression_margin, args.regression_floor_ms)
        if args.save_baseline is not None:
            baselines.save(current, args.save_baseline)
            notes.append(f"baseline written to {args.save_baseline}")
        notes += [str(note) for note in run.summary.get("notes") or ()]
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


def _request_run(args: SmokeArgs, kubeconfig: str | None) -> _RequestRun:
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
    return _RequestRun(
        summary=summary.to_dict(),
        records=summary.records,
        target=f"{target.base_url}{target.infer_path} ({called}, {target.protocol.value})",
        is_experiment=target.is_experiment,
        ended_at=time.time(),
    )


def _doctor(
    args: SmokeArgs, service_level: ServiceLevel, kubeconfig: str | None, run: _RequestRun | None
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
