"""The bench runner works end to end at the tiny size (generator, start-up, doctor at scale) and records why the
stack parts did not run; no stack, no wrk or hey needed. Benchmark figures themselves are never judged here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench import loadgen, stack_parts
from bench.generate import SIZES, generate
from bench.report import Status
from bench.run import main
from bench.settings import Settings, current_python


def test_tiny_run_writes_the_report(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    code = main(["--size", "tiny", "--runs", "1", "--output", str(output), "--cache", str(tmp_path / "cache")])
    assert code == 0
    text = output.read_text(encoding="utf-8")
    for heading in (
        "## Machine",
        "## Headlines",
        "## Start-up",
        "## Doctor at scale",
        "## Timing accuracy",
        "## Prober throughput and latency",
    ):
        assert heading in text
    assert "`mlops-trace --help`" in text and "`python -c pass`" in text
    assert "scheduler-log scan MT102" in text and "scheduler-log scan MT106" in text
    assert "1 finding(s)" in text  # MT102 finds the generated route-thrash bursts
    assert "3 finding(s)" in text  # MT106 finds the three unschedulable Models in the log
    assert text.count("**skipped**: not run at `--size tiny`") == 2
    assert "| CPU |" in text and "| Python |" in text


def test_only_lists_the_other_parts_as_not_run(tmp_path: Path) -> None:
    output = tmp_path / "B.md"
    assert (
        main(
            [
                "--size",
                "tiny",
                "--runs",
                "1",
                "--only",
                "startup",
                "--output",
                str(output),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    text = output.read_text(encoding="utf-8")
    assert "not asked for (`--only startup`)" in text
    assert "## Start-up" in text and "vs python -c pass" in text


def test_generator_is_deterministic_and_cached(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", SIZES["tiny"])
    second = generate(tmp_path / "b", SIZES["tiny"])
    digest = [hashlib.sha256(g.scheduler_log.read_bytes()).hexdigest() for g in (first, second)]
    assert digest[0] == digest[1]
    assert first.config_dump.read_bytes() == second.config_dump.read_bytes()
    stamp = first.scheduler_log.stat().st_mtime_ns
    again = generate(tmp_path / "a", SIZES["tiny"])
    assert again.scheduler_log.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert again.files == first.files
    models = sum(
        path.read_text(encoding="utf-8").count("kind: Model\n") for path in first.root.glob("kube/*/models.yaml")
    )
    assert models == SIZES["tiny"].models


def test_missing_load_tools_skip_throughput_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loadgen, "missing_tools", lambda *tools: ["wrk"])
    settings = Settings(size=SIZES["full"], cache=tmp_path, runs=1, python=current_python())
    part = stack_parts.throughput(settings)
    assert part.status is Status.SKIPPED
    assert "wrk not installed" in part.reason and "apt-get install" in part.reason
