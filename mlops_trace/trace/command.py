"""`mlops-trace request` behind the CLI: fill in defaults (the reference stack's, when it is up and nothing says
otherwise), run, render, save, export, and decide the exit code (0 ok, 1 request failed or a finding at or above
--fail-on, 2 could not run — raised as MlopsTraceError for the CLI to print in one line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mlops_trace.errors import InputError, UsageError
from mlops_trace.findings import Finding, Severity
from mlops_trace.trace.record import Protocol
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
    save: Path | None = None
    state_dir: Path | None = None
    no_stack: bool = False
    progress: bool = False
    width: int = 120
    color: bool = False


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
        url, host=host, model=model, experiment=experiment, extra_headers=args.headers, protocol=protocol
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
    from mlops_trace.trace.render import render_summary, render_trace

    options = options_from(args)
    warnings: list[str] = []
    if options.count:
        summary = run_many(options)
        failed = summary.succeeded < summary.count or _failed(summary.findings, args.fail_on)
        traced = [summary.first] if summary.first is not None else []
        document = summary.to_dict()
        text = render_summary(summary, width=args.width, color=args.color) if args.output == "table" else ""
    else:
        trace = run_one(options)
        failed = not trace.ok or _failed(trace.findings, args.fail_on)
        traced = [trace]
        document = trace.to_dict()
        text = render_trace(trace, width=args.width, color=args.color) if args.output == "table" else ""
    if args.output == "json":
        text = json.dumps(document, indent=2) + "\n"
    if args.save is not None:
        try:
            args.save.write_text(json.dumps({"schema_version": 1, **document}, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--save {args.save}: cannot write ({exc.strerror or exc})") from exc
    if args.otlp:
        from mlops_trace.errors import ClusterError
        from mlops_trace.trace.otlp import export

        try:
            sent = export(traced, args.otlp)
            warnings.append(f"exported {sent} spans to {args.otlp}")
        except ClusterError as exc:
            warnings.append(f"OTLP export failed: {exc}")
    return Outcome(text, 1 if failed else 0, tuple(warnings))
