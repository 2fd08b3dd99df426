"""The `stack` commands' behaviour that needs no running stack: listing faults, status and down with nothing
running, and one-line errors (exit 2) for bad faults and unknown components."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_trace.cli import app
from mlops_trace.stack.faults import Fault
from mlops_trace.stack.ports import StackError, wait_for
from mlops_trace.stack.procs import alive, start, stop


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MLOPS_TRACE_STACK_DIR", str(tmp_path / "state"))
    return CliRunner()


def test_faults_listed_one_line_each(runner: CliRunner) -> None:
    result = runner.invoke(app, ["stack", "faults"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == [f.value for f in Fault]


def test_status_and_down_when_not_running(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["stack", "status", "-o", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["running"] is False and doc["state_dir"] == str((tmp_path / "state").resolve())
    down = runner.invoke(app, ["stack", "down"])
    assert down.exit_code == 0 and "not running" in down.output


@pytest.mark.parametrize(("args", "message"), [
    (["stack", "up", "--fault", "gremlins"], "unknown fault 'gremlins'"),
    (["stack", "up", "--fault", "split-brain", "--fault", "alias-missing"], "cannot be combined"),
    (["stack", "up", "-o", "yaml"], "--output must be text or json"),
    (["stack", "logs", "envoy"], "run `mlops-trace stack up` first"),
])
def test_one_line_errors(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bounded_wait_names_the_component(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    record = start("crasher", [sys.executable, "-c", "print('bad config line 3'); raise SystemExit(1)"], log=log)
    with pytest.raises(StackError, match=r"^Envoy exited during start-up \(log .*bad config line 3"):
        wait_for(lambda: False, timeout=10, what="Envoy", alive=lambda: alive(record), log=str(log))
    stop([record])
    with pytest.raises(StackError, match=r"^MLServer not ready after 0.2s$"):
        wait_for(lambda: False, timeout=0.2, what="MLServer")
