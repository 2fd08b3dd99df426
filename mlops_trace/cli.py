"""The `mlops-trace` command line: parse flags, call the library, render, map the result to an exit code.

Exit codes (DESIGN.md), the same for every output format: 0 nothing at or above --fail-on, 1 findings at or above
it, 2 could not run (bad arguments, unreadable bundle, cluster unreachable). Errors are one line on stderr, never a
traceback (set MLOPS_TRACE_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from mlops_trace import __version__
from mlops_trace.errors import MlopsTraceError
from mlops_trace.model.findings import Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_COULD_NOT_RUN = 2

app = typer.Typer(
    name="mlops-trace",
    help="Follow one prediction request through a Kubernetes ML serving stack and name the root cause.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
checks_app = typer.Typer(help="The check catalog: list the checks, explain one.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
bundle_app = typer.Typer(help="Offline bundles: serve one over the Kubernetes API.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")

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


def _severity(value: str) -> Severity:
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
        Optional[Path], typer.Option("--bundle", "-b", help="Offline bundle: a directory or a .tar.gz.")
    ] = None,
    namespace: Annotated[
        Optional[list[str]], typer.Option("--namespace", "-n", help="Live: namespace to examine (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Live: every namespace.")] = False,
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig", help="Live: kubeconfig file.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="Live: kubeconfig context.")] = None,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Live: seconds to wait for each API call.")
    ] = 10.0,
    since: Annotated[Optional[str], typer.Option("--since", help="Live: only logs newer than this (e.g. 1h).")] = None,
    tail: Annotated[Optional[int], typer.Option("--tail", help="Live: last N lines of each log.")] = None,
    envoy_admin: Annotated[
        Optional[list[str]], typer.Option("--envoy-admin", help="Live: Envoy admin URL to read (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help=OUTPUT_HELP)] = "table",
    fail_on: Annotated[str, typer.Option("--fail-on", help=FAIL_ON_HELP)] = "warning",
    only: Annotated[
        Optional[list[str]], typer.Option("--only", help="Run only these checks (ids, slugs, or MT1/MT2/MT3).")
    ] = None,
    skip: Annotated[Optional[list[str]], typer.Option("--skip", help="Do not run these checks.")] = None,
) -> None:
    """Run the check catalog on a live cluster (-n/-A) or an offline bundle (--bundle)."""
    from mlops_trace.doctor import LiveTarget, open_snapshot, run_doctor
    from mlops_trace.render import render

    fmt = _check_format(output)
    threshold = _severity(fail_on)
    live = LiveTarget(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        context=context,
        request_timeout=request_timeout,
        since=since,
        tail=tail,
        envoy_admin=tuple(envoy_admin or ()),
    )
    try:
        with open_snapshot(bundle, live) as snap:
            for problem in snap.problems:
                typer.echo(f"mlops-trace: warning: {problem.path}: {problem.reason}", err=True)
            report = run_doctor(snap, only or (), skip or ())
    except MlopsTraceError as exc:
        _fail(str(exc))
    color = fmt == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(render(report, fmt, color=color, width=_width()))
    raise typer.Exit(EXIT_FINDINGS if report.failed(threshold) else EXIT_OK)


def _width() -> int:
    try:
        return max(80, min(os.get_terminal_size().columns, 160))
    except OSError:
        return 120


@checks_app.command("list")
def checks_list(
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or markdown.")] = "table",
) -> None:
    """List every check: id, slug, severity, inputs, title."""
    from mlops_trace.analysis.catalog import load_catalog

    entries = load_catalog()
    if output == "json":
        import json

        rows = [
            {
                "id": e.check.id,
                "slug": e.check.slug,
                "severity": e.check.severity.value,
                "area": e.area,
                "requires": list(e.check.requires),
                "playbook": e.check.playbook,
                "title": e.check.title,
            }
            for e in entries
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if output == "markdown":
        typer.echo("| id | slug | severity | requires | title |\n|---|---|---|---|---|")
        for e in entries:
            typer.echo(
                f"| {e.check.id} | {e.check.slug} | {e.check.severity.value} | "
                f"{', '.join(e.check.requires)} | {e.check.title} |"
            )
        return
    if output != "table":
        _fail(f"--output must be table, json or markdown (got {output!r})")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mlops-trace checks ({len(entries)})")
    for column in ("id", "slug", "severity", "requires", "title"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e.check.id, e.check.slug, e.check.severity.value, "\n".join(e.check.requires), e.check.title)
    Console(width=_width()).print(table)


@checks_app.command("explain")
def checks_explain(check: Annotated[str, typer.Argument(help="Check id (MT101) or slug.")]) -> None:
    """Print a check's documentation: what it checks, why it matters, evidence, fix."""
    from mlops_trace.analysis.catalog import find_entry, playbook_path

    try:
        entry = find_entry(check)
    except MlopsTraceError as exc:
        _fail(str(exc))
    c = entry.check
    typer.echo(f"{c.id} {c.slug} ({c.severity.value})")
    typer.echo(f"requires: {', '.join(c.requires) or '-'}")
    typer.echo(f"playbook: {playbook_path(c.playbook)}")
    typer.echo("")
    typer.echo(entry.doc().rstrip())


@app.command()
def collect(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the bundle: a new directory, or FILE.tar.gz.")
    ],
    namespace: Annotated[
        Optional[list[str]], typer.Option("--namespace", "-n", help="Namespace to collect (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig", help="Kubeconfig file.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="Kubeconfig context.")] = None,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Seconds to wait for each API call.")
    ] = 10.0,
    since: Annotated[Optional[str], typer.Option("--since", help="Only logs newer than this (e.g. 1h).")] = None,
    tail: Annotated[Optional[int], typer.Option("--tail", help="Last N lines of each log (default 10000).")] = None,
    envoy_admin: Annotated[
        Optional[list[str]],
        typer.Option("--envoy-admin", help="Envoy admin URL to read, or NAMESPACE/POD=URL (repeatable)."),
    ] = None,
) -> None:
    """Collect a redacted bundle (objects, logs, Envoy admin) from a live cluster (-n/-A), for doctor --bundle."""
    from mlops_trace.collect.bundle_writer import collect_bundle
    from mlops_trace.doctor import LiveTarget

    live = LiveTarget(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        context=context,
        request_timeout=request_timeout,
        since=since,
        tail=tail,
        envoy_admin=tuple(envoy_admin or ()),
    )
    try:
        result = collect_bundle(live, output)
    except MlopsTraceError as exc:
        _fail(str(exc))
    for warning in result.warnings:
        typer.echo(f"mlops-trace: warning: {warning}", err=True)
    typer.echo(result.describe(str(output)))


@bundle_app.command("serve")
def bundle_serve(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory or .tar.gz.")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    kubeconfig_out: Annotated[
        Optional[Path], typer.Option("--kubeconfig-out", help="Also write the kubeconfig to this file.")
    ] = None,
    request_log: Annotated[
        Optional[Path], typer.Option("--request-log", help="Append every request (verb, path) to this file.")
    ] = None,
    duration: Annotated[
        Optional[float], typer.Option("--duration", help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Serve a bundle read-only over the Kubernetes REST API and print a kubeconfig for it (writes get 405)."""
    from mlops_trace.serve.server import serve_bundle

    try:
        serve_bundle(bundle, port=port, kubeconfig_out=kubeconfig_out, request_log=request_log, duration=duration)
    except MlopsTraceError as exc:
        _fail(str(exc))


# --- stack: the bundled reference serving stack -----------------------------------------------------------------

stack_app = typer.Typer(
    help="The reference serving stack on 127.0.0.1: real NGINX, Envoy, MLServer (and Prometheus), with faults.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")

STATE_DIR_HELP = "State directory (default ~/.cache/mlops-trace/stack, or $MLOPS_TRACE_STACK_DIR)."


def _stack_status_text(info: dict[str, object]) -> str:
    lines = [f"running:      {str(info.get('running')).lower()}"]
    if "ingress_url" in info:
        experiment = info["experiment"]
        route = experiment["route"] if isinstance(experiment, dict) else ""
        lines += [
            f"ingress:      {info['ingress_url']}  (Host: {info['host']})",
            f"ingress gRPC: {info['ingress_grpc']}",
            f"envoy admin:  {info['envoy_admin_url']}",
            f"kubeconfig:   {info['kubeconfig']}",
            f"bundle:       {info['bundle']}",
            f"experiment:   {route}",
            f"prometheus:   {info['prometheus_url'] or info['prometheus']}",
            f"faults:       {', '.join(info['faults']) or 'none'}",  # type: ignore[arg-type]
            "try:          curl -s -D - -H 'Host: {host}' -H 'seldon-model: {route}' -H 'Content-Type: "
            "application/json' -d @request.json {url}/v2/models/{exp}/infer".format(
                host=info["host"], route=route, url=info["ingress_url"],
                exp=experiment.get("name") if isinstance(experiment, dict) else ""),
        ]
    return "\n".join(lines) + "\n"


@stack_app.command("up")
def stack_up(
    fault: Annotated[
        Optional[list[str]], typer.Option("--fault", "-f", help="Reproduce a failure (repeatable): see `stack faults`.")
    ] = None,
    state_dir: Annotated[Optional[Path], typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Start the stack (creates its environment on first use) and print where everything is."""
    import json

    from mlops_trace.stack.faults import parse_faults
    from mlops_trace.stack.runner import up
    from mlops_trace.stack.venv import Say

    if output not in ("text", "json"):
        _fail(f"--output must be text or json (got {output!r})")
    try:
        info = up(state_dir, parse_faults(fault or ()), Say())
    except MlopsTraceError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(info, indent=2) if output == "json" else _stack_status_text(info), nl=output == "json")


@stack_app.command("down")
def stack_down(state_dir: Annotated[Optional[Path], typer.Option("--state-dir", help=STATE_DIR_HELP)] = None) -> None:
    """Stop every process of the stack by PID; exit 2 if a port of the stack is still listening."""
    from mlops_trace.stack.runner import down

    try:
        result = down(state_dir)
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
    state_dir: Annotated[Optional[Path], typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Where the stack's entry points, kubeconfig and logs are; refreshes the bundle's Envoy config_dump."""
    import json

    from mlops_trace.stack.status import status

    if output not in ("text", "json"):
        _fail(f"--output must be text or json (got {output!r})")
    try:
        info = status(state_dir)
    except MlopsTraceError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(info, indent=2) if output == "json" else _stack_status_text(info), nl=output == "json")


@stack_app.command("logs")
def stack_logs(
    component: Annotated[str, typer.Argument(help="scheduler, central-scheduler, controller, agent, mlserver, "
                                                  "envoy, ingress or agent-proxy-access.")],
    tail: Annotated[int, typer.Option("--tail", help="Last N lines (0: all).")] = 50,
    state_dir: Annotated[Optional[Path], typer.Option("--state-dir", help=STATE_DIR_HELP)] = None,
) -> None:
    """Print a component's log (the same file `kubectl logs` reads through the stack's kubeconfig)."""
    from mlops_trace.stack.status import log_path, read_tail

    try:
        path = log_path(state_dir, component)
    except MlopsTraceError as exc:
        _fail(str(exc))
    sys.stdout.write(read_tail(path, tail))


@stack_app.command("faults")
def stack_faults() -> None:
    """List the faults `stack up --fault` reproduces, one line each."""
    from mlops_trace.stack.faults import DESCRIPTIONS

    for fault, text in DESCRIPTIONS.items():
        typer.echo(f"{fault.value:<15} {text}")


def main() -> None:
    """Console-script entry point: no traceback reaches the user unless MLOPS_TRACE_DEBUG is set."""
    try:
        app()
    except MlopsTraceError as exc:
        typer.echo(f"mlops-trace: error: {exc}", err=True)
        sys.exit(EXIT_COULD_NOT_RUN)
    except KeyboardInterrupt:
        typer.echo("mlops-trace: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the promise is one line, never a traceback
        if os.environ.get("MLOPS_TRACE_DEBUG"):
            raise
        typer.echo(f"mlops-trace: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_COULD_NOT_RUN)


if __name__ == "__main__":
    main()
