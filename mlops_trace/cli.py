"""The `mlops-trace` command line: parse flags, call the library, render, map the result to an exit code.

Exit codes (DESIGN.md), the same for every output format: 0 nothing at or above --fail-on, 1 findings at or above
it, 2 could not run (bad arguments, unreadable bundle, cluster unreachable). Errors are one line on stderr, never a
traceback (set MLOPS_TRACE_DEBUG=1 to see one).
"""

# No `from __future__ import annotations` here: Typer reads every option from these signatures, and string
# annotations would make it compile and eval each one again on every start (~55 ms of `--help` on a fresh install).

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from mlops_trace import __version__
from mlops_trace.errors import MlopsTraceError
from mlops_trace.prometheus.options import (
    MaxP95,
    MinSuccess,
    PrometheusCacert,
    PrometheusInsecure,
    PrometheusPassword,
    PrometheusToken,
    PrometheusUrl,
    PrometheusUser,
    SplitAlpha,
    Window,
)

if TYPE_CHECKING:
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.doctor import DoctorRun
    from mlops_trace.findings import InputProblem, Severity
    from mlops_trace.fleet import ClusterDone
    from mlops_trace.limits import InputLimits

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_COULD_NOT_RUN = 2

# kubectl habits: `-h` is `--help` everywhere (sub-commands inherit it from the root context).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
# Help is click's plain text, as kubectl's is: Typer's rich panels import rich's Markdown and Syntax machinery
# (~100 ms, most of `--help`'s time), for boxes around the same words.
HELP_MARKUP = None

# Help shows what a value is (NAMESPACE, SECONDS, PATH), never a Python type (`<list[str]>`); flags show nothing.
# An option not listed here is named after itself (--namespace: NAMESPACE); a Path-typed one is PATH.
METAVARS: dict[str, str] = {
    "--request-timeout": "SECONDS",
    "--timeout": "SECONDS",
    "--doctor-timeout": "SECONDS",
    "--duration": "SECONDS",
    "--log-wait": "SECONDS",
    "--prometheus-wait": "SECONDS",
    "--since": "DURATION",
    "--window": "DURATION",
    "--for": "DURATION",
    "--tail": "LINES",
    "--output": "FORMAT",
    "--fail-on": "SEVERITY",
    "--only": "CHECK",
    "--skip": "CHECK",
    "--kubeconfig": "PATH",
    "--envoy-admin": "URL",
    "--prometheus": "URL",
    "--metrics-url": "URL",
    "--otlp": "URL",
    "--otlp-sample": "RATIO",
    "--runbook-url-base": "URL",
    "--probe-url": "NAME=URL",
    "--label": "KEY=VALUE",
    "--header": "HEADER",
    "--prometheus-token": "TOKEN",
    "--prometheus-user": "USER",
    "--prometheus-password": "PASSWORD",
    "--max-p95": "MS",
    "--max-p99": "MS",
    "--regression-floor": "MS",
    "--min-success": "RATIO",
    "--split-tolerance": "RATIO",
    "--regression-margin": "RATIO",
    "--split-alpha": "ALPHA",
    "--count": "N",
    "--concurrency": "N",
    "--parallel": "N",
    "--probes": "N",
    "--min-requests": "N",
    "--rate": "PER_SECOND",
}


class _BareArgument(TyperArgument):
    """A positional argument named by its metavar (CHECK), in usage and help, without a type column."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.display_name_raw if self.required else f"[{self.display_name_raw}]"]


def _bare_help(option: TyperOption | None) -> TyperOption | None:
    if option is not None:
        option.metavar = ""
    return option


class _PlainCommand(TyperCommand):
    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _bare_help(super().get_help_option(ctx))


class _PlainGroup(TyperGroup):
    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _bare_help(super().get_help_option(ctx))


def _plain_metavars(command: TyperCommand | TyperGroup) -> None:
    """Give every parameter of `command` and its sub-commands a metavar (see METAVARS)."""
    command.__class__ = _PlainGroup if isinstance(command, TyperGroup) else _PlainCommand
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or (param.name or "value").upper()
            param.__class__ = _BareArgument
        elif isinstance(param, TyperOption) and param.metavar is None:
            long_name = max(param.opts, key=len)
            if param.is_flag:
                param.metavar = ""
            elif long_name in METAVARS:
                param.metavar = METAVARS[long_name]
            elif param.type_descriptor.is_path:
                param.metavar = "PATH"
            else:
                param.metavar = long_name.lstrip("-").replace("-", "_").upper()
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if isinstance(sub, TyperCommand | TyperGroup):
                _plain_metavars(sub)


class _RootGroup(_PlainGroup):
    """The `mlops-trace` group; typer builds the sub-commands first, so they are all here to name their values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for sub in self.commands.values():
            if isinstance(sub, TyperCommand | TyperGroup):
                _plain_metavars(sub)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:  # --version, and --install-completion/--show-completion that typer adds later
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return list(params)


app = typer.Typer(
    name="mlops-trace",
    help="Follow one prediction request through a Kubernetes ML serving stack and name the root cause.",
    cls=_RootGroup,
    context_settings=CONTEXT_SETTINGS,
    rich_markup_mode=HELP_MARKUP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
checks_app = typer.Typer(
    help="The check catalog: list the checks, explain one (or a playbook).",
    context_settings=CONTEXT_SETTINGS,
    rich_markup_mode=HELP_MARKUP,
    no_args_is_help=True,
)
app.add_typer(checks_app, name="checks")
bundle_app = typer.Typer(
    help="Offline bundles: serve one over the Kubernetes API.",
    context_settings=CONTEXT_SETTINGS,
    rich_markup_mode=HELP_MARKUP,
    no_args_is_help=True,
)
app.add_typer(bundle_app, name="bundle")

# Live-cluster options shared by doctor, collect, alerts and smoke.
KubeconfigOption = Annotated[str | None, typer.Option("--kubeconfig", help="Live: kubeconfig file.")]
ContextOption = Annotated[str | None, typer.Option("--context", help="Live: kubeconfig context.")]
# doctor, collect and smoke: several clusters in one run (mlops_trace/fleet.py).
ContextsOption = Annotated[
    list[str] | None,
    typer.Option("--context", help="Live: kubeconfig context; repeat it to read several clusters in one run."),
]
AllContextsOption = Annotated[
    bool, typer.Option("--all-contexts", help="Live: every context of the kubeconfig, each its own cluster.")
]
ParallelOption = Annotated[
    int | None, typer.Option("--parallel", help="Several contexts: clusters read at once (default 4).")
]
RequestTimeoutOption = Annotated[
    float, typer.Option("--request-timeout", help="Live: seconds to wait for each API call.")
]

LimitOption = Annotated[
    list[str] | None,
    typer.Option(
        "--limit",
        metavar="NAME=VALUE",
        help="Raise or lower an input limit (repeatable): archive-bytes, archive-entries, file-bytes, "
        "yaml-alias-nodes, nesting-depth, line-chars; sizes take KiB/MiB/GiB. Defaults: docs/SECURITY.md.",
    ),
]
LiveTimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Live: seconds the whole run may take (default 300), on top of --request-timeout."),
]

OUTPUT_HELP = "Output format: table, json, yaml, junit, sarif, markdown."
FAIL_ON_HELP = "Exit 1 when a finding is at or above this severity: critical, warning, info."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlops-trace {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mlops-trace: trace, diagnose and gate ML serving request paths."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"mlops-trace: error: {message}", err=True)
    raise typer.Exit(EXIT_COULD_NOT_RUN)


def _severity(value: str) -> "Severity":
    from mlops_trace.findings import Severity

    try:
        return Severity(value.lower())
    except ValueError:
        _fail(f"--fail-on must be one of critical, warning, info (got {value!r})")


def _check_format(fmt: str) -> str:
    from mlops_trace.render import FORMATS

    if fmt not in FORMATS:
        _fail(f"--output must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return fmt


@app.command()
def doctor(
    bundle: Annotated[
        Path | None, typer.Option("--bundle", "-b", help="Offline bundle: a directory or a .tar.gz.")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Live: namespace to examine (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Live: every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextsOption = None,
    all_contexts: AllContextsOption = False,
    parallel: ParallelOption = None,
    request_timeout: RequestTimeoutOption = 10.0,
    since: Annotated[str | None, typer.Option("--since", help="Live: only logs newer than this (e.g. 1h).")] = None,
    tail: Annotated[int | None, typer.Option("--tail", help="Live: last N lines of each log.")] = None,
    envoy_admin: Annotated[
        list[str] | None, typer.Option("--envoy-admin", help="Live: Envoy admin URL to read (repeatable).")
    ] = None,
    timeout: LiveTimeoutOption = None,
    limit: LimitOption = None,
    output: Annotated[str, typer.Option("--output", "-o", help=OUTPUT_HELP)] = "table",
    fail_on: Annotated[str, typer.Option("--fail-on", help=FAIL_ON_HELP)] = "warning",
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these checks (ids, slugs, or MT1/MT2/MT3).")
    ] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Do not run these checks.")] = None,
    prometheus: PrometheusUrl = None,
    prometheus_token: PrometheusToken = None,
    prometheus_user: PrometheusUser = None,
    prometheus_password: PrometheusPassword = None,
    prometheus_cacert: PrometheusCacert = None,
    prometheus_insecure: PrometheusInsecure = False,
    window: Window = "5m",
    max_p95: MaxP95 = None,
    min_success: MinSuccess = None,
    split_alpha: SplitAlpha = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Table: every finding's evidence and fix, and every check (passed, skipped)."
        ),
    ] = False,
) -> None:
    """Run the check catalog on a cluster or an offline bundle.

    Live: -n NS (repeatable), -A, or by default the kubeconfig context's namespace. Offline: --bundle DIR|FILE.tar.gz.
    """
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.doctor import DoctorRun, run_doctor, service_level
    from mlops_trace.render import render

    fmt = _check_format(output)
    threshold = _severity(fail_on)
    contexts = list(context or ())
    several = all_contexts or len(contexts) > 1
    live = LiveTarget(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        context=contexts[0] if contexts else None,
        request_timeout=request_timeout,
        deadline=_positive("--timeout", timeout),
        since=since,
        tail=tail,
        envoy_admin=tuple(envoy_admin or ()),
    )
    try:
        limits = _limits(limit)
        if bundle is None and not several:
            live = _scoped(live)
        slo = service_level(
            prometheus=prometheus, token=prometheus_token, user=prometheus_user, password=prometheus_password,
            cacert=prometheus_cacert, insecure=prometheus_insecure, window=window, max_p95_ms=max_p95,
            min_success=min_success, split_alpha=split_alpha,
        )
        run = DoctorRun(
            bundle=bundle, live=live, limits=limits, service_level=slo, only=only or (), skip=skip or ()
        )
        if several:
            _doctor_fleet(run, contexts, all_contexts, parallel, fmt, threshold, verbose)
        report = run_doctor(run, on_input=_tell_input).report
    except MlopsTraceError as exc:
        _fail(str(exc))
    color = fmt == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(render(report, fmt, color=color, width=_width(), verbose=verbose))
    errored = report.errored_checks()
    if errored:
        names = ", ".join(f"{c.id} ({c.reason})" for c in errored)
        typer.echo(f"mlops-trace: error: not every check could run: {names}", err=True)
        raise typer.Exit(EXIT_COULD_NOT_RUN)
    raise typer.Exit(EXIT_FINDINGS if report.failed(threshold) else EXIT_OK)


def _doctor_fleet(
    run: "DoctorRun", contexts: list[str], all_contexts: bool, parallel: int | None, fmt: str, threshold: "Severity",
    verbose: bool,
) -> NoReturn:
    """doctor over several contexts: exit 1 when an examined cluster has a finding at or above --fail-on, 2 only when
    no cluster could be examined (the others' reasons are on stderr and in the output)."""
    from mlops_trace.fleet import DEFAULT_PARALLEL, FleetRun, fleet_contexts, run_fleet
    from mlops_trace.render.fleet import render_fleet

    assert run.live is not None
    names = fleet_contexts(run.live.kubeconfig, contexts, all_contexts)
    fleet = run_fleet(FleetRun(run, names, DEFAULT_PARALLEL if parallel is None else parallel), _tell_cluster)
    color = fmt == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(render_fleet(fleet, fmt, color=color, width=_width(), verbose=verbose))
    for cluster, check in fleet.errored_checks():
        typer.echo(f"mlops-trace: error: context {cluster}: {check.id} could not run ({check.reason})", err=True)
    if not fleet.any_examined():
        typer.echo(f"mlops-trace: error: none of the {len(names)} contexts could be examined", err=True)
        raise typer.Exit(EXIT_COULD_NOT_RUN)
    raise typer.Exit(EXIT_FINDINGS if fleet.failed(threshold) else EXIT_OK)


def _tell_cluster(done: "ClusterDone") -> None:
    outcome = done.outcome
    if outcome.report is None:
        typer.echo(f"mlops-trace: error: context {outcome.cluster}: could not run: {outcome.reason}", err=True)
        return
    if outcome.namespace is not None:
        typer.echo(f"mlops-trace: context {outcome.cluster}: namespace {outcome.namespace} (the context's)", err=True)
    for note in done.notes:
        typer.echo(f"mlops-trace: context {outcome.cluster}: {note}", err=True)
    for problem in done.problems:
        typer.echo(f"mlops-trace: warning: context {outcome.cluster}: {problem.path}: {problem.reason}", err=True)


def _scoped(live: "LiveTarget") -> "LiveTarget":
    """With neither -n nor -A, read the kubeconfig context's namespace, as kubectl does, and say so."""
    from mlops_trace.collect.target import with_default_namespace

    scoped, chosen = with_default_namespace(live)
    if chosen is not None:
        typer.echo(f"mlops-trace: namespace {chosen} (the kubeconfig context's; -n NS or -A for others)", err=True)
    return scoped


def _tell_input(notes: Sequence[str], problems: "Sequence[InputProblem]") -> None:
    for note in notes:
        typer.echo(f"mlops-trace: {note}", err=True)
    for problem in problems:
        typer.echo(f"mlops-trace: warning: {problem.path}: {problem.reason}", err=True)


def _json_text(value: Any, indent: int | None = 2) -> str:
    import json

    return json.dumps(value, indent=indent)


def _limits(assignments: list[str] | None) -> "InputLimits":
    from mlops_trace.limits import parse_limits

    return parse_limits(assignments or ())


def _positive(flag: str, value: float | None) -> float | None:
    if value is not None and not value > 0:
        _fail(f"{flag} must be a positive number of seconds (got {value})")
    return value


def _width() -> int:
    """The terminal's width (or $COLUMNS, as rich and kubectl honour it), kept between 80 and 160; 120 when piped."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return max(80, min(int(columns), 160))
    try:
        return max(80, min(os.get_terminal_size().columns, 160))
    except OSError:
        return 120


@checks_app.command("list")
def checks_list(
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or markdown.")] = "table",
) -> None:
    """List every check: id, slug, severity, inputs (requires: the skip gate; reads: what else it reads), title.

    `-o markdown` prints the catalog table of README.md, exactly (tests/test_readme_catalog.py holds them equal)."""
    from mlops_trace.analysis.catalog import load_catalog, markdown_table

    entries = load_catalog()
    if output == "json":

        rows = [
            {
                "id": e.check.id,
                "slug": e.check.slug,
                "severity": e.check.severity.value,
                "area": e.area,
                "requires": list(e.check.requires),
                "reads": list(e.check.reads),
                "playbook": e.check.playbook,
                "title": e.check.title,
            }
            for e in entries
        ]
        typer.echo(_json_text(rows, indent=2))
        return
    if output == "markdown":
        typer.echo(markdown_table(entries), nl=False)
        return
    if output != "table":
        _fail(f"--output must be table, json or markdown (got {output!r})")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mlops-trace checks ({len(entries)})")
    for column in ("id", "slug", "severity"):
        table.add_column(column, no_wrap=True)
    table.add_column("requires", overflow="fold", max_width=34)
    table.add_column("reads", overflow="fold", max_width=34)
    table.add_column("title", overflow="fold")
    for e in entries:
        requires = "\n".join(req.replace("|", " | ") for req in e.check.requires)
        reads = "\n".join(e.check.reads) or "-"
        table.add_row(e.check.id, e.check.slug, e.check.severity.value, requires, reads, e.check.title)
    Console(width=_width()).print(table)


@checks_app.command("explain")
def checks_explain(
    check: Annotated[str, typer.Argument(help="Check id (MT101), check slug, or playbook name (envoy-404).")],
) -> None:
    """Print a check's documentation and its playbook, or a playbook and the checks that point to it."""
    from mlops_trace.analysis.catalog import CatalogEntry, find_check_or_playbook, find_playbook

    try:
        found = find_check_or_playbook(check)
        if isinstance(found, CatalogEntry):
            c = found.check
            typer.echo(f"{c.id} {c.slug} ({c.severity.value})")
            typer.echo(f"requires: {', '.join(c.requires) or '-'}")
            typer.echo(f"reads: {', '.join(c.reads) or '-'}")
            typer.echo(f"playbook: {c.playbook}")
            typer.echo("")
            typer.echo(found.doc().rstrip())
            typer.echo("")
            typer.echo("---")
            typer.echo("")
            playbook = find_playbook(c.playbook)
        else:
            playbook = found
            pointing = ", ".join(f"{e.check.id} {e.check.slug}" for e in playbook.checks) or "-"
            typer.echo(f"playbook: {playbook.name}")
            typer.echo(f"checks: {pointing}")
            typer.echo("")
        typer.echo(playbook.text().rstrip())
    except MlopsTraceError as exc:
        _fail(str(exc))


@app.command()
def collect(
    destination: Annotated[
        Path, typer.Argument(metavar="DEST", help="Where to write the bundle: a new directory, or FILE.tar.gz.")
    ],
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Namespace to collect (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextsOption = None,
    all_contexts: AllContextsOption = False,
    parallel: ParallelOption = None,
    request_timeout: RequestTimeoutOption = 10.0,
    since: Annotated[str | None, typer.Option("--since", help="Only logs newer than this (e.g. 1h).")] = None,
    tail: Annotated[int | None, typer.Option("--tail", help="Last N lines of each log (default 10000).")] = None,
    envoy_admin: Annotated[
        list[str] | None,
        typer.Option("--envoy-admin", help="Envoy admin URL to read, or NAMESPACE/POD=URL (repeatable)."),
    ] = None,
    timeout: LiveTimeoutOption = None,
    output: Annotated[str, typer.Option("--output", "-o", help="The summary's format: text or json.")] = "text",
) -> None:
    """Collect a redacted bundle from a live cluster.

    Objects, logs and Envoy admin dumps of -n NS (repeatable), -A, or by default the kubeconfig context's namespace,
    written to DEST (a new directory or FILE.tar.gz). Several contexts: one bundle each, DEST/CONTEXT/ (or
    FILE-CONTEXT.tar.gz).
    """
    from mlops_trace.collect.bundle_writer import collect_bundle
    from mlops_trace.collect.target import LiveTarget

    if output not in ("text", "json"):
        hint = " (the bundle's destination is the argument: mlops-trace collect DEST)" if _looks_like_path(output) else ""
        _fail(f"--output must be text or json (got {output!r}){hint}")

    contexts = list(context or ())
    live = LiveTarget(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        context=contexts[0] if contexts else None,
        request_timeout=request_timeout,
        deadline=_positive("--timeout", timeout),
        since=since,
        tail=tail,
        envoy_admin=tuple(envoy_admin or ()),
    )
    if all_contexts or len(contexts) > 1:
        _collect_fleet(live, contexts, all_contexts, parallel, destination, output)
    try:
        result = collect_bundle(_scoped(live), destination)
    except MlopsTraceError as exc:
        _fail(str(exc))
    for warning in result.warnings:
        typer.echo(f"mlops-trace: warning: {warning}", err=True)
    if output == "json":
        typer.echo(_json_text(result.to_dict(str(destination)), indent=2))
    else:
        typer.echo(result.describe(str(destination)))


def _collect_fleet(
    live: "LiveTarget", contexts: list[str], all_contexts: bool, parallel: int | None, destination: Path, output: str
) -> NoReturn:
    """collect over several contexts, one bundle each: exit 0 when every context was collected, 1 when some could
    not be (the others were written), 2 when none could."""
    from mlops_trace.fleet import DEFAULT_PARALLEL, collect_fleet, fleet_contexts

    try:
        names = fleet_contexts(live.kubeconfig, contexts, all_contexts)
        collected = collect_fleet(live, names, destination, DEFAULT_PARALLEL if parallel is None else parallel)
    except MlopsTraceError as exc:
        _fail(str(exc))
    for item in collected:
        if item.result is None:
            typer.echo(f"mlops-trace: error: context {item.context}: could not collect: {item.error}", err=True)
            continue
        for warning in item.result.warnings:
            typer.echo(f"mlops-trace: warning: context {item.context}: {warning}", err=True)
    if output == "json":
        typer.echo(_json_text({"contexts": [item.to_dict() for item in collected]}, indent=2))
    else:
        for item in collected:
            if item.result is not None:
                typer.echo(f"context {item.context}: {item.result.describe(str(item.destination))}")
    failed = sum(1 for item in collected if item.result is None)
    if failed == len(collected):
        raise typer.Exit(EXIT_COULD_NOT_RUN)
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.endswith((".tar.gz", ".tgz")) or value.startswith(".")


@bundle_app.command("serve")
def bundle_serve(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory or .tar.gz.")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    kubeconfig_out: Annotated[
        Path | None, typer.Option("--kubeconfig-out", help="Also write the kubeconfig to this file.")
    ] = None,
    request_log: Annotated[
        Path | None, typer.Option("--request-log", help="Append every request (verb, path) to this file.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    limit: LimitOption = None,
) -> None:
    """Serve a bundle read-only over the Kubernetes REST API and print a kubeconfig for it (writes get 405)."""
    from mlops_trace.serve.server import serve_bundle

    try:
        serve_bundle(bundle, port=port, kubeconfig_out=kubeconfig_out, request_log=request_log, duration=duration,
                     limits=_limits(limit))
    except MlopsTraceError as exc:
        _fail(str(exc))


# --- stack: the bundled reference serving stack -----------------------------------------------------------------

stack_app = typer.Typer(
    help="The reference serving stack on 127.0.0.1, with faults.\n\nReal NGINX, Envoy, MLServer (and Prometheus).",
    context_settings=CONTEXT_SETTINGS,
    rich_markup_mode=HELP_MARKUP,
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")

STATE_DIR_HELP = ("State directory (default ~/.cache/mlops-trace/stack, or $MLOPS_TRACE_STACK_DIR; with --profile "
                  "kserve ~/.cache/mlops-trace/stack-kserve, or $MLOPS_TRACE_KSERVE_STACK_DIR).")
PROFILE_HELP = "Which stack: seldon (the default) or kserve (KServe behind Istio and Knative, its own state directory)."
PROFILES = ("seldon", "kserve")


def _profile(value: str) -> str:
    if value not in PROFILES:
        _fail(f"--profile must be seldon or kserve (got {value!r})")
    return value


@stack_app.command("up")
def stack_up(
    fault: Annotated[
        list[str] | None, typer.Option("--fault", help="Reproduce a failure (repeatable): see `stack faults`.")
    ] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    profile: Annotated[str, typer.Option("--profile", help=PROFILE_HELP)] = "seldon",
) -> None:
    """Start the stack (creates its environment on first use) and print where everything is."""

    from mlops_trace.stack.faults import parse_faults
    from mlops_trace.stack.runner import up
    from mlops_trace.stack.status import format_status
    from mlops_trace.stack.venv import Say

    if output not in ("text", "json"):
        _fail(f"--output must be text or json (got {output!r})")
    if _profile(profile) == "kserve":
        from mlops_trace.stack.kserve import runner as kserve_runner
        from mlops_trace.stack.kserve import status as kserve_status
        from mlops_trace.stack.kserve.topology import parse_kfaults

        try:
            info = kserve_runner.up(state_dir, parse_kfaults(fault or ()), Say())
        except MlopsTraceError as exc:
            _fail(str(exc))
        typer.echo(_json_text(info, indent=2) if output == "json" else kserve_status.format_status(info),
                   nl=output == "json")
        return
    try:
        info = up(state_dir, parse_faults(fault or ()), Say())
    except MlopsTraceError as exc:
        _fail(str(exc))
    typer.echo(_json_text(info, indent=2) if output == "json" else format_status(info), nl=output == "json")


@stack_app.command("down")
def stack_down(
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    profile: Annotated[str, typer.Option("--profile", help=PROFILE_HELP)] = "seldon",
) -> None:
    """Stop every process of the stack by PID; exit 2 if a port of the stack is still listening."""
    from mlops_trace.stack.kserve import runner as kserve_runner
    from mlops_trace.stack.runner import down

    try:
        result = kserve_runner.down(state_dir) if _profile(profile) == "kserve" else down(state_dir)
    except MlopsTraceError as exc:
        _fail(str(exc))
    if not result.was_running:
        typer.echo("stack: not running")
    else:
        typer.echo(f"stack: stopped {', '.join(result.stopped) or 'nothing'}"
                   + (f" (killed after timeout: {', '.join(result.killed)})" if result.killed else ""))
    if result.still_listening:
        _fail(f"ports still listening after stack down: {', '.join(map(str, result.still_listening))}")


@stack_app.command("status")
def stack_status(
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    profile: Annotated[str, typer.Option("--profile", help=PROFILE_HELP)] = "seldon",
) -> None:
    """Where the stack's entry points, kubeconfig and logs are; refreshes the bundle's Envoy config_dump."""

    from mlops_trace.stack import status as seldon_status
    from mlops_trace.stack.kserve import status as kserve_status

    if output not in ("text", "json"):
        _fail(f"--output must be text or json (got {output!r})")
    kserve = _profile(profile) == "kserve"
    format_status = kserve_status.format_status if kserve else seldon_status.format_status
    try:
        info = kserve_status.status(state_dir) if kserve else seldon_status.status(state_dir)
    except MlopsTraceError as exc:
        _fail(str(exc))
    typer.echo(_json_text(info, indent=2) if output == "json" else format_status(info), nl=output == "json")


@stack_app.command("logs")
def stack_logs(
    component: Annotated[str, typer.Argument(help="scheduler, central-scheduler, controller, agent, mlserver, "
                                                  "envoy, ingress or agent-proxy-access.")],
    tail: Annotated[int, typer.Option("--tail", help="Last N lines (0: all).")] = 50,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    profile: Annotated[str, typer.Option("--profile", help=PROFILE_HELP + " kserve components: storage-initializer, "
                                         "predictor, predictor-queue-proxy, transformer, transformer-queue-proxy, "
                                         "gateway (canary, canary-queue-proxy under canary-stale).")] = "seldon",
) -> None:
    """Print a component's log (the same file `kubectl logs` reads through the stack's kubeconfig)."""
    from mlops_trace.stack.kserve.status import log_path as kserve_log_path
    from mlops_trace.stack.status import log_path, read_tail

    try:
        path = kserve_log_path(state_dir, component) if _profile(profile) == "kserve" else log_path(state_dir, component)
    except MlopsTraceError as exc:
        _fail(str(exc))
    sys.stdout.write(read_tail(path, tail))


@stack_app.command("faults")
def stack_faults(profile: Annotated[str, typer.Option("--profile", help=PROFILE_HELP)] = "seldon") -> None:
    """List the faults `stack up --fault` reproduces, one line each."""
    from mlops_trace.stack.faults import DESCRIPTIONS
    from mlops_trace.stack.kserve.topology import DESCRIPTIONS as KSERVE_DESCRIPTIONS

    descriptions: dict[str, str] = {f.value: text for f, text in DESCRIPTIONS.items()}
    if _profile(profile) == "kserve":
        descriptions = {f.value: text for f, text in KSERVE_DESCRIPTIONS.items()}
    width = max(len(name) for name in descriptions) if profile == "kserve" else 15
    for name, text in descriptions.items():
        typer.echo(f"{name:<{width}} {text}")


# --- request: one prediction request traced through the seven hops ---------------------------------------------


@app.command("request")
def request_command(
    url: Annotated[str | None, typer.Option("--url", help="Ingress URL (default: the reference stack's).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Host header for the ingress rule.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Call this Model.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Call this Experiment (seldon-model: <exp>.experiment).")
    ] = None,
    isvc: Annotated[
        str | None,
        typer.Option("--isvc", help="Call this KServe InferenceService (Host from its status.url; -n its namespace)."),
    ] = None,
    isvc_protocol: Annotated[
        str | None,
        typer.Option("--isvc-protocol", help="KServe API with --isvc: v1 (:predict) or v2 (/infer); default its own."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="V2 request body (JSON); default: made from the model metadata.")
    ] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="Extra header 'Name: value'.")] = None,
    as_is: Annotated[
        bool, typer.Option("--as-is", help="Send only the -H headers (no seldon-model of ours): reproduce a client.")
    ] = False,
    protocol: Annotated[str, typer.Option("--protocol", help="rest or grpc.")] = "rest",
    http2: Annotated[bool, typer.Option("--http2", help="REST over HTTP/2 (h2 over TLS, h2c over http).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")] = 10.0,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")] = False,
    cacert: Annotated[Path | None, typer.Option("--cacert", help="CA bundle to verify TLS with.")] = None,
    count: Annotated[int, typer.Option("--count", help="Send N requests and summarise them.")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight with --count.")] = 1,
    rate: Annotated[float | None, typer.Option("--rate", help="Requests per second with --count.")] = None,
    until_decided: Annotated[
        bool, typer.Option("--until-decided", help="Stop when a sequential test accepts or rejects the split.")
    ] = False,
    split_tolerance: Annotated[
        float, typer.Option("--split-tolerance", help="Share difference the sequential test must detect (0-1).")
    ] = 0.05,
    split_alpha: Annotated[
        float | None,
        typer.Option(
            "--split-alpha", help="Error rate of the split tests: p-value threshold and the sequential α (0.01)."
        ),
    ] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Read the path from a bundle.")] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Read the path from a cluster.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Live: namespaces to read (default all).")
    ] = None,
    probes: Annotated[
        int | None, typer.Option("--probes", help="Differential probes per entry point (0: none).")
    ] = None,
    probe_url: Annotated[
        list[str] | None, typer.Option("--probe-url", help="Entry point NAME=URL (envoy, agent, mlserver).")
    ] = None,
    metrics_url: Annotated[
        str | None, typer.Option("--metrics-url", help="MLServer /metrics URL for the model time.")
    ] = None,
    envoy_admin: Annotated[str | None, typer.Option("--envoy-admin", help="Envoy admin URL.")] = None,
    log_wait: Annotated[float, typer.Option("--log-wait", help="Seconds to wait for access-log lines.")] = 3.0,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    fail_on: Annotated[str, typer.Option("--fail-on", help=FAIL_ON_HELP)] = "warning",
    otlp: Annotated[
        str | None,
        typer.Option(
            "--otlp",
            help="Export every request's spans to this OTLP collector (default: OTEL_EXPORTER_OTLP_ENDPOINT).",
        ),
    ] = None,
    otlp_sample: Annotated[
        str | None,
        typer.Option(
            "--otlp-sample",
            help="Share of requests to export (0.1 or 1/10), kept by trace id like OTel's TraceIdRatioBased.",
        ),
    ] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Write the JSON record to this file.")] = None,
    no_stack: Annotated[bool, typer.Option("--no-stack", help="Ignore the reference stack's defaults.")] = False,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Reference stack state directory.")] = None,
    evidence: Annotated[
        bool, typer.Option("--evidence", "-v", help="Also print full sources, evidence lines and probes.")
    ] = False,
) -> None:
    """Send a V2 request and time its seven hops (with --isvc: a KServe InferenceService, V1 or V2, and its hops).

    Follows the request through every hop, times each from its own source and places a failure at its hop.
    """
    from mlops_trace.trace.command import RequestArgs, execute

    tty = sys.stdout.isatty()
    args = RequestArgs(
        url=url,
        host=host,
        model=model,
        experiment=experiment,
        isvc=isvc,
        isvc_protocol=isvc_protocol,
        data=data,
        headers=tuple(header or ()),
        as_is=as_is,
        protocol=protocol,
        http2=http2,
        timeout=timeout,
        insecure=insecure,
        cacert=cacert,
        count=count,
        concurrency=concurrency,
        rate=rate,
        until_decided=until_decided,
        split_tolerance=split_tolerance,
        split_alpha=split_alpha,
        bundle=bundle,
        kubeconfig=kubeconfig,
        context=context,
        namespaces=tuple(namespace or ()),
        probes=probes,
        metrics_url=metrics_url,
        envoy_admin=envoy_admin,
        entries=tuple(probe_url or ()),
        log_wait=log_wait,
        output=output,
        fail_on=_severity(fail_on),
        otlp=otlp,
        otlp_sample=otlp_sample,
        save=save,
        state_dir=state_dir,
        no_stack=no_stack,
        progress=sys.stderr.isatty(),
        width=_width(),
        color=output == "table" and tty and "NO_COLOR" not in os.environ,
        evidence=evidence,
    )
    try:
        outcome = execute(args)
    except MlopsTraceError as exc:
        _fail(str(exc))
    for warning in outcome.warnings:
        typer.echo(f"mlops-trace: {warning}", err=True)
    sys.stdout.write(outcome.text)
    raise typer.Exit(outcome.exit_code)


# --- alerts: PrometheusRule for HighMLInferenceLatency and ABTestTrafficImbalance --------------------------------


@app.command("alerts")
def alerts_command(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the serving stack.")],
    bundle: Annotated[
        Path | None, typer.Option("--bundle", "-b", help="Read the Experiments from an offline bundle.")
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    request_timeout: RequestTimeoutOption = 10.0,
    name: Annotated[
        str | None, typer.Option("--name", help="PrometheusRule name (default mlops-trace-<namespace>).")
    ] = None,
    max_p95: Annotated[float, typer.Option("--max-p95", help="HighMLInferenceLatency: P95 objective in ms.")] = 50.0,
    for_: Annotated[str, typer.Option("--for", help="How long a condition must hold before an alert fires.")] = "5m",
    window: Window = "5m",
    split_tolerance: Annotated[
        float, typer.Option("--split-tolerance", help="ABTestTrafficImbalance: allowed share difference (0-1).")
    ] = 0.10,
    min_requests: Annotated[
        int, typer.Option("--min-requests", help="ABTestTrafficImbalance: requests the window needs to judge.")
    ] = 200,
    metrics: Annotated[
        str, typer.Option("--metrics", help="Which component's metrics: envoy, agent or mlserver.")
    ] = "envoy",
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Label KEY=VALUE on the rule (e.g. release=prom).")
    ] = None,
    runbook_url_base: Annotated[
        str | None, typer.Option("--runbook-url-base", help="URL of the playbooks/ folder for runbook_url.")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
    output_file: Annotated[Path | None, typer.Option("--output-file", "-f", help="Write here, not stdout.")] = None,
    exporter_job: Annotated[
        str | None,
        typer.Option("--exporter-job", metavar="JOB", help="Also alert on `mlops-trace exporter`'s series scraped by "
                     "this job: a critical finding in the namespace open for --for, the exporter down or stale."),
    ] = None,
) -> None:
    """Write a PrometheusRule for latency and A/B split alerts.

    HighMLInferenceLatency and ABTestTrafficImbalance, with targets from the Experiments.
    """
    from mlops_trace.alerts import (
        AlertSettings,
        MetricSource,
        build_rule,
        parse_labels,
        render_rule,
        skipped_experiments,
    )
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.doctor import open_snapshot

    try:
        try:
            source = MetricSource(metrics)
        except ValueError:
            _fail(f"--metrics must be envoy, agent or mlserver (got {metrics!r})")
        settings = AlertSettings(
            namespace=namespace, name=name, max_p95_ms=max_p95, duration=for_, window=window,
            split_tolerance=split_tolerance, min_requests=min_requests, source=source,
            labels=parse_labels(label or ()), runbook_base=runbook_url_base,
        )
        if output not in ("yaml", "json"):
            _fail(f"--output must be yaml or json (got {output!r})")
        live = None if bundle is not None else LiveTarget(
            namespaces=(namespace,), kubeconfig=kubeconfig, context=context, request_timeout=request_timeout, tail=1
        )
        with open_snapshot(bundle, live) as snap:
            experiments = snap.objects_of("Experiment", namespace)
        exporter = None
        if exporter_job is not None:
            from mlops_trace.alerts import ExporterAlerts

            exporter = ExporterAlerts(job=exporter_job, finding_for=for_)
        text = render_rule(build_rule(settings, experiments, exporter), output)
    except MlopsTraceError as exc:
        _fail(str(exc))
    for reason in skipped_experiments(experiments):
        typer.echo(f"mlops-trace: warning: no ABTestTrafficImbalance rule for {reason}", err=True)
    if not experiments:
        typer.echo(f"mlops-trace: warning: no Experiment in {namespace}: only HighMLInferenceLatency", err=True)
    if output_file is None:
        sys.stdout.write(text)
        return
    try:
        output_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"--output-file {output_file}: cannot write ({exc.strerror or exc})")
    typer.echo(f"mlops-trace: wrote PrometheusRule {settings.rule_name} to {output_file}", err=True)


# --- smoke: the CI gate (doctor + request thresholds, one exit code) ----------------------------------------------


@app.command("exporter")
def exporter_command(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Namespace to examine (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", help="Kubeconfig context to watch (repeatable); its name is the `cluster` label."),
    ] = None,
    all_contexts: Annotated[
        bool, typer.Option("--all-contexts", help="Watch every context of the kubeconfig.")
    ] = False,
    parallel: Annotated[int, typer.Option("--parallel", metavar="N", help="Clusters read at once.")] = 4,
    cluster_name: Annotated[
        str | None,
        typer.Option("--cluster-name", metavar="NAME", help="`cluster` label without --context (default: the current context, "
                     "or in-cluster inside a pod)."),
    ] = None,
    request_timeout: RequestTimeoutOption = 10.0,
    since: Annotated[str | None, typer.Option("--since", help="Only logs newer than this (e.g. 1h).")] = None,
    tail: Annotated[int | None, typer.Option("--tail", help="Last N lines of each log.")] = None,
    address: Annotated[
        str, typer.Option("--address", metavar="IP", help="Address to serve /metrics on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve /metrics on (0 picks a free one).")] = 9807,
    interval: Annotated[float, typer.Option("--interval", metavar="SECONDS", help="Seconds between the starts of two runs.")] = 300.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds one cluster's run may take before it counts as failed.")
    ] = 120.0,
    once: Annotated[
        bool, typer.Option("--once", help="One run of every cluster, then exit (2 when a run failed).")
    ] = False,
    probe_experiment: Annotated[
        str | None,
        typer.Option("--probe-experiment", metavar="NAME", help="Each round, send a burst of requests to this "
                     "Experiment and export its A/B split and per-hop latency."),
    ] = None,
    probe_url: Annotated[
        str | None, typer.Option("--probe-url", metavar="URL", help="Probe: the ingress URL (default: the stack's).")
    ] = None,
    probe_host: Annotated[
        str | None, typer.Option("--probe-host", metavar="HOST", help="Probe: the Host header for the ingress.")
    ] = None,
    probe_count: Annotated[int, typer.Option("--probe-count", metavar="N", help="Probe: requests per burst.")] = 50,
    limit: LimitOption = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these checks (ids, slugs, or MT1/MT2/MT3).")
    ] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Do not run these checks.")] = None,
    prometheus: PrometheusUrl = None,
    prometheus_token: PrometheusToken = None,
    prometheus_cacert: PrometheusCacert = None,
    prometheus_insecure: PrometheusInsecure = False,
    window: Window = "5m",
    max_p95: MaxP95 = None,
    min_success: MinSuccess = None,
    split_alpha: SplitAlpha = None,
) -> None:
    """Run the check catalog on a schedule and serve the findings on /metrics for Prometheus.

    One mlops_trace_finding series per open finding, per-check status, run duration and last success.
    """
    from mlops_trace.collect.target import LiveTarget
    from mlops_trace.doctor import service_level
    from mlops_trace.exporter.probe import ProbeSettings
    from mlops_trace.exporter.runner import serve
    from mlops_trace.exporter.settings import ExporterSettings, cluster_targets

    base = LiveTarget(
        namespaces=tuple(namespace or ()), all_namespaces=all_namespaces, kubeconfig=kubeconfig,
        request_timeout=request_timeout, since=since, tail=tail,
    )
    try:
        clusters = cluster_targets(base, tuple(context or ()), cluster_name, all_contexts)
        probe = None if probe_experiment is None else ProbeSettings(
            probe_experiment, url=probe_url, host=probe_host, count=probe_count, request_timeout=request_timeout,
            source=clusters[0].live,
        )
        settings = ExporterSettings(
            clusters=clusters, probe=probe,
            address=address, port=port, interval=interval, run_timeout=timeout, limits=_limits(limit),
            service_level=service_level(
                prometheus=prometheus, token=prometheus_token, user=None, password=None, cacert=prometheus_cacert,
                insecure=prometheus_insecure, window=window, max_p95_ms=max_p95, min_success=min_success,
                split_alpha=split_alpha,
            ),
            only=only or (), skip=skip or (), once=once, parallel=parallel,
        )
        succeeded = serve(settings, lambda line: typer.echo(f"mlops-trace: exporter: {line}", err=True))
    except MlopsTraceError as exc:
        _fail(str(exc))
    if once and not succeeded:
        raise typer.Exit(EXIT_COULD_NOT_RUN)


@app.command("smoke")
def smoke_command(
    stack: Annotated[bool, typer.Option("--stack", help="Test the reference stack (`mlops-trace stack up`).")] = False,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Doctor reads this bundle.")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Live: namespace to examine (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Live: every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextsOption = None,
    all_contexts: AllContextsOption = False,
    parallel: ParallelOption = None,
    request_timeout: RequestTimeoutOption = 10.0,
    envoy_admin: Annotated[
        list[str] | None, typer.Option("--envoy-admin", help="Live: Envoy admin URL to read (repeatable).")
    ] = None,
    doctor_timeout: Annotated[
        float | None,
        typer.Option("--doctor-timeout", help="Live: seconds doctor's whole read of the cluster may take (default 300)."),
    ] = None,
    limit: LimitOption = None,
    url: Annotated[str | None, typer.Option("--url", help="Endpoint (ingress URL) the requests go to.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Host header for the ingress rule.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Call this Model.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Call this Experiment (seldon-model: <exp>.experiment).")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="V2 request body (JSON).")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="Extra header 'Name: value'.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="rest or grpc.")] = "rest",
    count: Annotated[
        int | None, typer.Option("--count", help="Requests to send (default 1000; 0: doctor only).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight.")] = 1,
    rate: Annotated[float | None, typer.Option("--rate", help="Requests per second.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")] = 10.0,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the endpoint's TLS certificate.")] = False,
    cacert: Annotated[Path | None, typer.Option("--cacert", help="CA bundle for the endpoint's TLS.")] = None,
    max_p95: MaxP95 = None,
    max_p99: Annotated[float | None, typer.Option("--max-p99", help="Gate: client P99 in ms.")] = None,
    min_success: Annotated[
        float, typer.Option("--min-success", help="Gate and MT402: success rate, 0-1.")
    ] = 0.99,
    split_tolerance: Annotated[
        float, typer.Option("--split-tolerance", help="Gate and MT403: allowed share difference per candidate.")
    ] = 0.05,
    until_decided: Annotated[
        bool, typer.Option("--until-decided", help="Split gate by a sequential test (stops when decided).")
    ] = False,
    split_alpha: SplitAlpha = None,
    prometheus: PrometheusUrl = None,
    prometheus_token: PrometheusToken = None,
    prometheus_user: PrometheusUser = None,
    prometheus_password: PrometheusPassword = None,
    prometheus_cacert: PrometheusCacert = None,
    prometheus_insecure: PrometheusInsecure = False,
    window: Window = "5m",
    prometheus_wait: Annotated[
        float, typer.Option("--prometheus-wait", help="Seconds to wait for a scrape newer than the requests.")
    ] = 30.0,
    fail_on: Annotated[str, typer.Option("--fail-on", help=FAIL_ON_HELP)] = "warning",
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these checks.")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Do not run these checks.")] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Fail when a hop's P95 regressed against this run.")
    ] = None,
    save_baseline: Annotated[
        Path | None, typer.Option("--save-baseline", help="Write this run's per-hop P95 here.")
    ] = None,
    regression_margin: Annotated[
        float, typer.Option("--regression-margin", help="Allowed P95 increase over the baseline (0.2 = 20%).")
    ] = 0.20,
    regression_floor: Annotated[
        float, typer.Option("--regression-floor", help="Extra ms allowed per hop on top of the margin.")
    ] = 1.0,
    output: Annotated[str, typer.Option("--output", "-o", help="text, json, junit or sarif.")] = "text",
    junit_file: Annotated[Path | None, typer.Option("--junit-file", help="Also write JUnit XML here.")] = None,
    sarif_file: Annotated[Path | None, typer.Option("--sarif-file", help="Also write SARIF here.")] = None,
    json_file: Annotated[Path | None, typer.Option("--json-file", help="Also write the JSON report here.")] = None,
) -> None:
    """CI gate: requests, doctor and Prometheus, judged by gates.

    Requests through the serving path, then doctor and Prometheus; exit 0, 1 or 2.
    """
    from mlops_trace.doctor import service_level
    from mlops_trace.smoke.gates import GateSettings
    from mlops_trace.smoke.render import FORMATS as SMOKE_FORMATS
    from mlops_trace.smoke.render import render_smoke
    from mlops_trace.smoke.report import could_not_run
    from mlops_trace.smoke.run import SmokeArgs, run_smoke

    if output not in SMOKE_FORMATS:
        _fail(f"--output must be one of {', '.join(SMOKE_FORMATS)} (got {output!r})")
    threshold = _severity(fail_on)
    try:
        slo = service_level(
            prometheus=prometheus, token=prometheus_token, user=prometheus_user, password=prometheus_password,
            cacert=prometheus_cacert, insecure=prometheus_insecure, window=window, max_p95_ms=max_p95,
            min_success=min_success, split_alpha=split_alpha, split_tolerance=split_tolerance,
        )
        args = SmokeArgs(
            bundle=bundle, namespaces=tuple(namespace or ()), all_namespaces=all_namespaces, kubeconfig=kubeconfig,
            context=context[0] if context else None, contexts=tuple(context or ()), all_contexts=all_contexts,
            parallel=parallel, request_timeout=request_timeout, envoy_admin=tuple(envoy_admin or ()), stack=stack,
            live_deadline=_positive("--doctor-timeout", doctor_timeout), limits=_limits(limit),
            state_dir=state_dir, url=url, host=host, model=model, experiment=experiment, data=data,
            headers=tuple(header or ()), protocol=protocol, count=count, concurrency=concurrency, rate=rate,
            timeout=timeout, insecure=insecure, cacert=cacert, service_level=slo, prometheus_wait_s=prometheus_wait,
            gates=GateSettings(min_success=min_success, max_p95_ms=max_p95, max_p99_ms=max_p99,
                               split_tolerance=split_tolerance, until_decided=until_decided,
                               split_alpha=split_alpha),
            fail_on=threshold, only=tuple(only or ()), skip=tuple(skip or ()), baseline=baseline,
            save_baseline=save_baseline, regression_margin=regression_margin, regression_floor_ms=regression_floor,
        )
        report = run_smoke(args)
    except MlopsTraceError as exc:
        report = could_not_run("smoke", str(exc), threshold)
    if report.error is not None:
        typer.echo(f"mlops-trace: error: {report.error}", err=True)
    for path, fmt in ((junit_file, "junit"), (sarif_file, "sarif"), (json_file, "json")):
        if path is not None:
            try:
                path.write_text(render_smoke(report, fmt), encoding="utf-8")
            except OSError as exc:
                _fail(f"--{fmt}-file {path}: cannot write ({exc.strerror or exc})")
    sys.stdout.write(render_smoke(report, output))
    raise typer.Exit(report.exit_code)


# --- version ----------------------------------------------------------------------------------------------------

@app.command("version")
def version_command(
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Print the version (the same as --version; -o json for scripts)."""
    if output == "json":

        typer.echo(_json_text({"name": "mlops-trace", "version": __version__}, indent=None))
        return
    if output != "text":
        _fail(f"--output must be text or json (got {output!r})")
    typer.echo(f"mlops-trace {__version__}")


_stopped_by: list[str] = []  # the signal that stopped the run, if one did


def _stop(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: unwind from where the program is, so every `finally` (temporary bundles, port-forwards)
    runs; `main` then exits 2, the run did not complete."""
    _stopped_by.append("terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted")
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point: no traceback reaches the user unless MLOPS_TRACE_DEBUG is set."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        app()
    except SystemExit as exc:
        if _stopped_by:  # click turned the interrupt into "Aborted!" and exit 1, as if the run had found something
            _exit_stopped()
        raise exc
    except KeyboardInterrupt:
        _exit_stopped()
    except MlopsTraceError as exc:
        typer.echo(f"mlops-trace: error: {exc}", err=True)
        sys.exit(EXIT_COULD_NOT_RUN)
    except Exception as exc:  # the promise is one line, never a traceback
        if os.environ.get("MLOPS_TRACE_DEBUG"):
            raise
        typer.echo(f"mlops-trace: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_COULD_NOT_RUN)


def _exit_stopped() -> NoReturn:
    why = _stopped_by[0] if _stopped_by else "interrupted"
    typer.echo(f"mlops-trace: {why}: the run did not complete", err=True)
    sys.exit(EXIT_COULD_NOT_RUN)


if __name__ == "__main__":
    main()
