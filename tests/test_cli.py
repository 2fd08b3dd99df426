"""The CLI as a user runs it: real processes, exit codes 0/1/2 for every format, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tests.fixture_walk import FIXTURES

BROKEN = FIXTURES / "scenarios" / "four-root-causes"
HEALTHY = FIXTURES / "scenarios" / "healthy-ab"
FORMATS = ("table", "json", "yaml", "junit", "sarif", "markdown")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_trace", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_codes_are_the_same_for_every_format(fmt: str) -> None:
    broken = _run("doctor", "--bundle", str(BROKEN), "-o", fmt)
    assert broken.returncode == 1, broken.stderr
    healthy = _run("doctor", "--bundle", str(HEALTHY), "-o", fmt)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    only_critical = _run("doctor", "--bundle", str(BROKEN), "-o", fmt, "--fail-on", "critical")
    assert only_critical.returncode == 1
    for proc in (broken, healthy, only_critical):
        _no_traceback(proc)


def test_json_is_the_design_object() -> None:
    proc = _run("doctor", "--bundle", str(BROKEN), "-o", "json")
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1
    assert {"findings", "checks"} <= set(report)
    assert report["findings"] and report["checks"], "the broken scenario has findings and ran checks"
    for finding in report["findings"]:
        for key in ("id", "slug", "severity", "title", "message", "namespace", "object", "evidence", "playbook", "fix"):
            assert key in finding, (finding["id"], key)
        assert finding["evidence"], f"{finding['id']} points at no evidence"
        assert all({"where", "what"} <= set(e) for e in finding["evidence"])
    assert {c["status"] for c in report["checks"]} <= {"pass", "fail", "skip", "error"}
    assert "fail" in {c["status"] for c in report["checks"]}
    assert all({"id", "status", "reason"} <= set(c) for c in report["checks"])
    failing = {c["id"] for c in report["checks"] if c["status"] == "fail"}
    assert failing == {f["id"] for f in report["findings"]}, "a check fails exactly when it has a finding"


def test_other_formats_parse_and_agree_with_json() -> None:
    report = json.loads(_run("doctor", "--bundle", str(BROKEN), "-o", "json").stdout)
    failing = sorted(c["id"] for c in report["checks"] if c["status"] == "fail")
    assert failing, "the broken scenario fails some checks"
    assert yaml.safe_load(_run("doctor", "--bundle", str(BROKEN), "-o", "yaml").stdout) == report
    suites = ET.fromstring(_run("doctor", "--bundle", str(BROKEN), "-o", "junit").stdout)
    failed_cases = sorted(
        (case.get("classname") or "").rpartition(".")[2]
        for case in suites.iter("testcase")
        if case.find("failure") is not None
    )
    assert failed_cases == failing, "a CI reading the JUnit file sees the same failing checks"
    assert suites.get("failures") == str(len(failing))
    sarif = json.loads(_run("doctor", "--bundle", str(BROKEN), "-o", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    assert sorted(r["ruleId"] for r in sarif["runs"][0]["results"]) == sorted(f["id"] for f in report["findings"])


def test_only_and_skip_select_checks() -> None:
    only = json.loads(_run("doctor", "--bundle", str(BROKEN), "-o", "json", "--only", "MT204").stdout)
    assert [c["id"] for c in only["checks"]] == ["MT204"]
    skipped = json.loads(_run("doctor", "--bundle", str(BROKEN), "-o", "json", "--skip", "MT1").stdout)
    assert not any(c["id"].startswith("MT1") for c in skipped["checks"])
    assert not any(f["id"].startswith("MT1") for f in skipped["findings"])
    assert "MT204" in {c["id"] for c in skipped["checks"]}, "--skip MT1 leaves the other areas running"


@pytest.mark.parametrize(
    "args",
    [
        ("doctor", "--bundle", "/nonexistent/bundle"),
        ("doctor", "--bundle", str(BROKEN), "-o", "html"),
        ("doctor", "--bundle", str(BROKEN), "--fail-on", "severe"),
        ("doctor", "--bundle", str(BROKEN), "--only", "MT999"),
        ("doctor",),
        ("checks", "explain", "MT999"),
    ],
)
def test_could_not_run_is_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    _no_traceback(proc)
    assert proc.stderr.strip(), "an error says what went wrong"
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_malformed_file_is_named_and_other_checks_still_run(tmp_path: Path) -> None:
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(BROKEN, bundle)
    (bundle / "kube" / "zz-broken.yaml").write_text("kind: Service\nmetadata: {name: [\n", encoding="utf-8")
    proc = _run("doctor", "--bundle", str(bundle), "-o", "json")
    assert proc.returncode == 1
    assert "kube/zz-broken.yaml" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "zz-broken" in line]) == 1
    report = json.loads(proc.stdout)
    assert [p["path"] for p in report["input_problems"]] == ["kube/zz-broken.yaml"]
    assert "MT204" in {f["id"] for f in report["findings"]}


def test_bundle_with_nothing_usable_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "x.yaml").write_text("{{{", encoding="utf-8")
    proc = _run("doctor", "--bundle", str(tmp_path))
    assert proc.returncode == 2
    assert "x.yaml" in proc.stderr
    _no_traceback(proc)


def test_checks_list_and_explain() -> None:
    listed = json.loads(_run("checks", "list", "-o", "json").stdout)
    assert {"MT101", "MT204", "MT302"} <= {row["id"] for row in listed}
    explained = _run("checks", "explain", "MT101")
    assert explained.returncode == 0
    assert "## What it checks" in explained.stdout and "scheduler-split-brain" in explained.stdout
    playbook = _run("checks", "explain", "envoy-404")
    assert playbook.returncode == 0, playbook.stderr
    assert "MT301" in playbook.stdout, "a playbook lists the checks that point to it"


def test_help_and_version() -> None:
    assert _run("--help").returncode == 0
    assert _run("--version").stdout.strip() == f"mlops-trace {version('mlops-trace')}"
    assert _run("doctor", "--help").returncode == 0


def _command_paths() -> list[tuple[str, ...]]:
    import typer.main
    from typer.core import TyperGroup

    from mlops_trace.cli import app

    paths: list[tuple[str, ...]] = [()]

    def walk(group: TyperGroup, prefix: tuple[str, ...]) -> None:
        for name, sub in group.commands.items():
            paths.append((*prefix, name))
            if isinstance(sub, TyperGroup):
                walk(sub, (*prefix, name))

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    walk(root, ())
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "root")
def test_dash_h_is_help_everywhere_and_help_shows_no_python_types(path: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    from mlops_trace.cli import app

    short = CliRunner().invoke(app, [*path, "-h"], terminal_width=80)
    long = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert short.exit_code == 0, short.output
    assert short.output == long.output
    assert not re.search(r"<(str|int|float|bool|path|list\[[^\]]*\])>", short.output), short.output
    assert "{" not in short.output.splitlines()[1], "usage names arguments plainly (CHECK)"


def test_version_command_and_completion_flags() -> None:
    assert _run("version").stdout.strip() == f"mlops-trace {version('mlops-trace')}"
    assert json.loads(_run("version", "-o", "json").stdout) == {"name": "mlops-trace", "version": version("mlops-trace")}
    assert _run("version", "-o", "xml").returncode == 2
    root_help = _run("-h").stdout
    assert "--install-completion" in root_help and "--show-completion" in root_help


def test_option_metavars_say_what_the_value_is() -> None:
    from typer.testing import CliRunner

    from mlops_trace.cli import app

    text = CliRunner().invoke(app, ["doctor", "-h"], terminal_width=200).output
    for row in (r"-n, --namespace NAMESPACE", r"-b, --bundle PATH", r"--request-timeout SECONDS",
                r"--fail-on SEVERITY"):
        assert re.search(row, text), row
    assert re.search(r"-A, --all-namespaces\s+Live: every namespace", text), "a flag shows no metavar"


def test_columns_sets_the_width_as_rich_and_kubectl_honour_it() -> None:
    """`$COLUMNS` sets the table's width when stdout is no terminal (80 to 160)."""
    from typer.testing import CliRunner

    from mlops_trace.cli import app

    from tests.fixture_walk import FIXTURES

    bundle = str(FIXTURES / "scenarios" / "four-root-causes")
    for columns in (80, 100):
        result = CliRunner().invoke(app, ["doctor", "--bundle", bundle], env={"COLUMNS": str(columns)})
        widths = [len(line) for line in result.output.splitlines()]
        assert result.exit_code == 1 and max(widths) <= columns, (columns, max(widths))
    wide = CliRunner().invoke(app, ["doctor", "--bundle", bundle], env={"COLUMNS": "160"})
    assert max(len(line) for line in wide.output.splitlines()) > 100
