"""A plain (non-editable) install ships the check catalog and the playbooks, and start-up imports stay light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.fixture_walk import REPO

HEAVY = ("kubernetes", "grpc", "httpx", "prometheus_api_client", "rich", "yaml")


def test_wheel_ships_checks_and_playbooks(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheel_dir.glob("mlops_trace-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source_checks = {p.relative_to(REPO).as_posix() for p in (REPO / "checks").glob("*/*.*")}
    source_playbooks = {p.relative_to(REPO).as_posix() for p in (REPO / "playbooks").glob("*.md")}
    assert source_checks and source_playbooks
    for rel in source_checks | source_playbooks:
        assert f"mlops_trace/_catalog/{rel}" in names, rel
    assert "mlops_trace/py.typed" in names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "from mlops_trace.analysis.catalog import load_catalog, playbook_path, checks_dir;"
        "entries = load_catalog();"
        "assert '_catalog' in str(checks_dir()), checks_dir();"
        "assert all(playbook_path(e.check.playbook).is_file() for e in entries);"
        "print(len(entries))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(source_checks) // 2

    # Outside a checkout, the playbook a finding names opens with `checks explain` (from mlops_trace/_catalog).
    explained = subprocess.run(
        [sys.executable, "-c", "from mlops_trace.cli import main; main()", "checks", "explain", "envoy-404"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert explained.returncode == 0, explained.stderr
    assert (REPO / "playbooks" / "envoy-404.md").read_text(encoding="utf-8").rstrip() in explained.stdout


def test_cli_start_up_imports_nothing_heavy() -> None:
    probe = (
        "import sys, mlops_trace.cli;"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
