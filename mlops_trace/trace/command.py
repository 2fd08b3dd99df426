"""`mlops-trace request` behind the CLI: fill in defaults (the reference stack's, when it is up and nothing says
otherwise), run, render, save, export, and decide the exit code (0 ok, 1 request failed or a finding at or above
--fail-on, 2 could not run — raised as MlopsTraceError for the CLI to print in one line).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_trace.errors import InputError, UsageError
from mlops_trace.findings import Finding, Severity
from mlops_trace.trace.otlp.config import resolve as resolve_otlp
from mlops_trace.trace.record import Protocol, RunSummary, TraceResult
from mlops_trace.trace.rest import TlsOptions
from mlops_trace.trace.runner import RunOptions, run_many, run_one
from mlops_trace.trace.sources import ClusterSource, StackDefaults, stack_defaults
from mlops_trace.analysis.objectives import DEFAULT_SPLIT_ALPHA, DEFAULT_SPLIT_TOLERANCE
from mlops_trace.trace.target import build_target

OUTPUTS = ("table", "json")
ENTRY_NAMES = ("envoy", "agent", "mlserver")


@dataclass(frozen=True)
class RequestArgs:
    url: str | None = None
    host: str | None = None
    model: str | None = None
    experiment: str | None = None
    data: Path | None = None
    headers: Sequence[str] = ()
    as_is: bool = False  # send only the user's headers (reproduce a client's request exactly)
    protocol: str = "rest"
    http2: bool = False
    timeout: float = 10.0
    insecure: bool = False
    cacert: Path | None = None
    count: int = 0
    concurrency: int = 1
    rate: float | None = None
    until_decided: bool = False
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    split_alpha: float | None = None  # None: the objectives' default
    bundle: Path | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: Sequence[str] = ()
    probes: int | None = None  # None: 20 for one request, 0 with --count
    metrics_url: str | None = None
    envoy_admin: str | None = None
    entries: Sequence[str] = ()  # NAME=URL for envoy, agent, mlserver
    log_wait: float = 3.0
    output: str = "table"
    fail_on: Severity = Severity.WARNING
    otlp: str | None = None
    otlp_sample: str | None = None  # a ratio (0.1) or 1/N; None: OTEL_TRACES_SAMPLER, else every request
    save: Path | None = None
    state_dir: Path | None = None
    no_stack: bool = False
    progress: bool = False
    width: int = 120
    color: bool = False
    evidence: bool = False  # -v/--evidence: full sources, evidence lines, probes; with --count the first request too
    isvc: str | None = None  # --isvc NAME: a KServe InferenceService instead of a Seldon Model or Experiment
    isvc_protocol: str | None = None  # --isvc-protocol v1|v2; None: the InferenceService's protocolVersion, else v1


@dataclass(frozen=True)
class Outcome:
    text: str
    exit_code: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _parse_entries(values: Sequence[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or name not in ENTRY_NAMES or not url.startswith(("http://", "https://")):
            raise UsageError(f"--probe-url {value!r}: expected NAME=URL with NAME one of {', '.join(ENTRY_NAMES)}")
        entries[name] = url
    return entries


def _same_endpoint(url: str, stack: StackDefaults, protocol: Protocol) -> bool:
    wanted = urlsplit(url).netloc
    if protocol is Protocol.GRPC and stack.ingress_grpc:
        return wanted == stack.ingress_grpc
    return wanted == urlsplit(stack.ingress_url).netloc


def options_from(args: RequestArgs) -> RunOptions:
    """RunOptions from the flags, with the reference stack's defaults where the flags leave a gap."""
    if args.output not in OUTPUTS:
        raise UsageError(f"--output must be one of {', '.join(OUTPUTS)} (got {args.output!r})")
    try:
        protocol = Protocol(args.protocol)
    except ValueError:
        raise UsageError(f"--protocol must be rest or grpc (got {args.protocol!r})") from None
    if args.count < 0 or args.concurrency < 1:
        raise UsageError("--count must be >= 1 and --concurrency >= 1")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be above 0 requests per second")
    if args.timeout <= 0:
        raise UsageError("--timeout must be above 0 seconds")
    if args.bundle is not None and (args.kubeconfig or args.context):
        raise UsageError("--bundle reads an offline bundle; it does not go with --kubeconfig/--context")
    if args.cacert is not None and not args.cacert.is_file():
        raise InputError(f"--cacert {args.cacert}: no such file")
    stack = None
    explicit_source = args.bundle is not None or args.kubeconfig is not None or args.context is not None
    if not args.no_stack:
        stack = stack_defaults(args.state_dir)
    url = args.url
    if url is None:
        if stack is None:
            raise UsageError("give --url (the ingress URL), or start the reference stack (`mlops-trace stack up`)")
        url = f"http://{stack.ingress_grpc}" if protocol is Protocol.GRPC and stack.ingress_grpc else stack.ingress_url
    elif stack is not None and not _same_endpoint(url, stack, protocol):
        stack = None  # the stack is up, but this request goes elsewhere: none of its defaults apply
    model, experiment = args.model, args.experiment
    if model is None and experiment is None and stack is not None and stack.experiment:
        experiment = stack.experiment
    host = args.host if args.host is not None else (stack.host if stack is not None else None)
    target = build_target(
        url, host=host, model=model, experiment=experiment, extra_headers=args.headers, protocol=protocol,
        as_is=args.as_is,
    )
    entries = _parse_entries(args.entries)
    source = ClusterSource(
        bundle=args.bundle,
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespaces=tuple(args.namespaces),
        envoy_admin=(args.envoy_admin,) if args.envoy_admin else (),
    )
    metrics_url, envoy_admin = args.metrics_url, args.envoy_admin
    if stack is not None:
        if not explicit_source and stack.bundle is not None:
            source = ClusterSource(bundle=stack.bundle)
        entries = {**stack.entry_points, **entries}
        metrics_url = metrics_url or stack.metrics_url
        envoy_admin = envoy_admin or stack.envoy_admin_url
    probes = args.probes if args.probes is not None else (0 if args.count else 20)
    if args.split_alpha is not None and not 0.0 < args.split_alpha < 1.0:
        raise UsageError("--split-alpha must be between 0 and 1 (e.g. 0.01)")
    if args.until_decided and not target.is_experiment:
        raise UsageError("--until-decided tests an A/B split: use it with --experiment")
    return RunOptions(
        target=target,
        data=args.data,
        http2=args.http2,
        timeout=args.timeout,
        tls=TlsOptions(insecure=args.insecure, cacert=args.cacert),
        count=args.count or (10_000 if args.until_decided else 0),
        concurrency=args.concurrency,
        rate=args.rate,
        until_decided=args.until_decided,
        split_tolerance=args.split_tolerance,
        split_alpha=DEFAULT_SPLIT_ALPHA if args.split_alpha is None else args.split_alpha,
        probes=max(0, probes),
        log_wait_s=args.log_wait,
        source=source,
        entry_points=entries,
        metrics_url=metrics_url,
        envoy_admin_url=envoy_admin,
        stack=stack,
        progress=args.progress,
    )


def _failed(findings: Sequence[Finding], threshold: Severity) -> bool:
    return any(finding.severity.at_least(threshold) for finding in findings)


def execute(args: RequestArgs) -> Outcome:
    options: Any
    runners: _Runners
    if args.isvc is not None:
        from mlops_trace.trace.kserve.command import kserve_run
        from mlops_trace.trace.kserve.runner import run_many as run_many_isvc
        from mlops_trace.trace.kserve.runner import run_one as run_one_isvc

        options, runners = kserve_run(args), (run_one_isvc, run_many_isvc)
    else:
        options, runners = options_from(args), (run_one, run_many)
    otlp = resolve_otlp(args.otlp, args.otlp_sample)  # a bad flag stops here, before any request is sent
    warnings: list[str] = list(otlp.warnings)
    exporter = None
    if otlp.config is not None:
        from mlops_trace.trace.otlp.exporter import BatchExporter

        exporter = BatchExporter(otlp.config)
    try:
        failed, document, text = _run(args, options, exporter.add if exporter is not None else None, runners)
    finally:
        if exporter is not None:
            # Export problems are reported, never the request's exit code: the request's outcome is the answer.
            warnings.append(exporter.close().line())
    if args.output == "json":
        text = json.dumps(document, indent=2) + "\n"
    if args.save is not None:
        try:
            args.save.write_text(json.dumps({"schema_version": 1, **document}, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--save {args.save}: cannot write ({exc.strerror or exc})") from exc
    return Outcome(text, 1 if failed else 0, tuple(warnings))


_Runners = tuple[Callable[[Any], TraceResult], Callable[[Any, Callable[[TraceResult], None] | None], RunSummary]]


def _run(
    args: RequestArgs,
    options: Any,
    on_trace: Callable[[TraceResult], None] | None,
    runners: _Runners = (run_one, run_many),
) -> tuple[bool, dict[str, Any], str]:
    """(failed, the JSON document, the table) of one request or a `--count` run; every TraceResult to `on_trace`.
    `runners` are (run_one, run_many): the Seldon path's, or the KServe path's for `--isvc`."""
    run_one_, run_many_ = runners
    from mlops_trace.trace.render import render_summary, render_trace

    if options.count:
        summary = run_many_(options, on_trace)
        failed = summary.succeeded < summary.count or _failed(summary.findings, args.fail_on)
        document = summary.to_dict()
        text = render_summary(summary, width=args.width, color=args.color, evidence=args.evidence) if args.output == "table" else ""
    else:
        trace = run_one_(options)
        if on_trace is not None:
            on_trace(trace)
        failed = not trace.ok or _failed(trace.findings, args.fail_on)
        document = trace.to_dict()
        text = render_trace(trace, width=args.width, color=args.color, evidence=args.evidence) if args.output == "table" else ""
    return failed, document, text
