"""Bundles from clusters nobody here controls: every bad file is named, every limit holds, the rest is still read."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.errors import InputError, UsageError
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits, parse_limits
from mlops_trace.findings import CheckStatus
from mlops_trace.parsers.structured import load_json, load_yaml
from mlops_trace.snapshot.bundle import open_bundle
from tests.fixture_walk import FIXTURES

HEALTHY = FIXTURES / "scenarios" / "healthy-ab"
BROKEN = FIXTURES / "scenarios" / "four-root-causes"

BILLION_LAUGHS = "\n".join(
    [f"a0: &a0 [{', '.join(['lol'] * 9)}]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def _copy(tmp_path: Path, source: Path = HEALTHY) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(source, bundle)
    return bundle


def _problems(bundle: Path, limits: InputLimits = DEFAULT_LIMITS) -> dict[str, str]:
    with open_bundle(bundle, limits) as snap:
        report = run_checks(snap, select((), ()))
        assert not [c for c in report.checks if c.status is CheckStatus.ERROR]
        return {p.path: p.reason for p in snap.problems}


def _statuses(bundle: Path) -> dict[str, str]:
    with open_bundle(bundle) as snap:
        return {c.id: c.status.value for c in run_checks(snap, select((), ())).checks}


# --- one malformed file never aborts the run ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["bundle.yaml", "kube/deep.yaml", "kube/deep.json", "requests/deep.json",
                                   "prometheus/latency_p95.json"])
def test_deep_nesting_is_named_and_the_rest_is_checked(tmp_path: Path, where: str) -> None:
    bundle = _copy(tmp_path)
    deep = ('{"a":' * 100_000 + "1" + "}" * 100_000) if where.endswith(".json") else "[" * 100_000 + "]" * 100_000
    (bundle / where).parent.mkdir(parents=True, exist_ok=True)
    (bundle / where).write_text(deep, encoding="utf-8")
    problems = _problems(bundle)
    assert "nesting-depth" in problems[where]
    assert _statuses(bundle) == _statuses(HEALTHY)


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    bundle = _copy(tmp_path)
    (bundle / "bundle.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    started = time.perf_counter()
    problems = _problems(bundle)
    assert time.perf_counter() - started < 10
    assert "yaml-alias-nodes" in problems["bundle.yaml"]


def test_ordinary_aliases_and_merge_keys_still_load() -> None:
    text = "base: &base {image: mlserver, port: 9000}\nserver:\n  <<: *base\n  replicas: 2\nagain: *base\n"
    assert load_yaml(text)["server"] == {"image": "mlserver", "port": 9000, "replicas": 2}


@pytest.mark.parametrize(
    "document, reason",
    [
        ({"query": "histogram_quantile(0.95, x)", "family": ["a"], "result": []}, None),
        ({"query": "sum(x)", "result": [{"metric": {}, "value": [1, int("9" * 400)]}]}, "no metric labels"),
        ({"query": "sum(x)", "result": [1, int("9" * 400)]}, None),
    ],
)
def test_odd_prometheus_files_are_named_not_fatal(tmp_path: Path, document: dict[str, object],
                                                  reason: str | None) -> None:
    bundle = _copy(tmp_path)
    (bundle / "prometheus").mkdir()
    (bundle / "prometheus" / "latency_p95.json").write_text(json.dumps(document), encoding="utf-8")
    problems = _problems(bundle)
    if reason is not None:
        assert reason in problems["prometheus/latency_p95.json"]


def test_a_file_over_the_size_limit_is_named(tmp_path: Path) -> None:
    bundle = _copy(tmp_path)
    (bundle / "kube" / "big.yaml").write_text("kind: Pod\n" + "# padding\n" * 20_000, encoding="utf-8")
    problems = _problems(bundle, InputLimits(file_bytes=64 * 1024))
    assert "limit file-bytes" in problems["kube/big.yaml"]


def test_an_impossible_timestamp_is_a_named_yaml_problem(tmp_path: Path) -> None:
    bundle = _copy(tmp_path)
    (bundle / "kube" / "odd.yaml").write_text("kind: Pod\nmetadata: {name: p, creationTimestamp: 2001-13-45}\n")
    assert "month must be in 1..12" in _problems(bundle)["kube/odd.yaml"]


def test_json_limits() -> None:
    with pytest.raises(InputError, match="nesting-depth"):
        load_json("[" * 300 + "]" * 300)
    with pytest.raises(InputError, match="JSON value error"):
        load_json("1" * 5000)  # beyond Python's int-from-text limit
    assert load_json("[" * 50 + "]" * 50) == [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]


# --- directory bundles never follow links ---------------------------------------------------------------------------


def test_symlinks_are_named_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:OUTSIDE-MARKER\nkind: Pod\nmetadata: {name: leaked, namespace: x}\n")
    bundle = _copy(tmp_path)
    pod_dir = bundle / "logs" / "fraud-serving" / "mlserver-0"
    pod_dir.mkdir(parents=True, exist_ok=True)
    (pod_dir / "agent.log").unlink(missing_ok=True)
    (pod_dir / "agent.log").symlink_to(secret)
    (bundle / "kube" / "linked.yaml").symlink_to(secret)
    (bundle / "logs" / "linked-ns").symlink_to(outside, target_is_directory=True)
    with open_bundle(bundle) as snap:
        named = {p.path: p.reason for p in snap.problems}
        assert snap.get("Pod", "x", "leaked") is None
        assert all(log.path.resolve().is_relative_to(bundle.resolve()) for log in snap.logs)
    for rel in ("logs/fraud-serving/mlserver-0/agent.log", "kube/linked.yaml", "logs/linked-ns"):
        assert "symbolic link" in named[rel]


def test_a_fifo_is_named_and_never_opened(tmp_path: Path) -> None:
    bundle = _copy(tmp_path)
    os.mkfifo(bundle / "kube" / "pipe.yaml")
    os.mkfifo(bundle / "bundle.yaml.tmp")
    started = time.perf_counter()
    problems = _problems(bundle)
    assert time.perf_counter() - started < 10
    assert "not a regular file" in problems["kube/pipe.yaml"]


# --- archives -------------------------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _healthy_members() -> list[tuple[str, bytes]]:
    return [(p.relative_to(HEALTHY).as_posix(), p.read_bytes()) for p in sorted(HEALTHY.rglob("*")) if p.is_file()]


def test_a_gzip_bomb_stops_at_the_byte_limit(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    zeros = 64 * 1024 * 1024
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in _healthy_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("logs/x/y/zeros.log")
        info.size = zeros

        class _Zeros(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
                buffer[:] = bytes(len(buffer))
                return len(buffer)

        tar.addfile(info, io.BufferedReader(_Zeros()))
    assert archive.stat().st_size < zeros // 100
    with open_bundle(archive, InputLimits(archive_bytes=8 * 1024 * 1024)) as snap:
        assert snap.root is not None
        unpacked = sum(p.stat().st_size for p in snap.root.rglob("*") if p.is_file())
        named = {p.path: p.reason for p in snap.problems}
        assert snap.objects  # what came before the bomb is read
    assert unpacked < 8 * 1024 * 1024
    assert "limit archive-bytes" in named[str(archive)]


def test_too_many_entries_stop_unpacking(tmp_path: Path) -> None:
    members = _healthy_members() + [(f"logs/ns/pod-{i}/c.log", b"x\n") for i in range(3_000)]
    archive = _tar(tmp_path / "many.tar.gz", members)
    started = time.perf_counter()
    with open_bundle(archive, InputLimits(archive_entries=500)) as snap:
        named = {p.path: p.reason for p in snap.problems}
        assert len(snap.logs) < 500
    assert time.perf_counter() - started < 30
    assert "limit archive-entries" in named[str(archive)]


def test_members_that_escape_are_named_and_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "escape.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in _healthy_members():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in ("../escaped.yaml", "/abs.yaml"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
        link = tarfile.TarInfo("logs/a/b/c.log")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with open_bundle(archive) as snap:
        reasons = [p.reason for p in snap.problems if p.path == str(archive)]
        assert snap.objects
    assert not (tmp_path / "escaped.yaml").exists()
    assert any("c.log" in r for r in reasons)


def test_a_truncated_archive_keeps_what_it_unpacked(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "whole.tar", _healthy_members(), mode="w")
    cut = tmp_path / "cut.tar"
    data = archive.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with open_bundle(cut) as snap:
        assert snap.objects
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + os.urandom(2000))
    with pytest.raises(InputError, match="garbage.tar.gz"):
        with open_bundle(garbage):
            pass


def test_limits_parse_and_refuse() -> None:
    limits = parse_limits(["archive-bytes=4GiB", "nesting_depth=500", "line-chars=64K"])
    assert (limits.archive_bytes, limits.nesting_depth, limits.line_chars) == (4 << 30, 500, 64 << 10)
    for bad in ("archive-bytes", "nope=1", "file-bytes=-1", "file-bytes=1TB", "file-bytes=0"):
        with pytest.raises(UsageError):
            parse_limits([bad])


# --- the CLI: named problems, exit codes, signals -------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_trace", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def test_cli_names_the_bad_file_and_still_reports(tmp_path: Path) -> None:
    bundle = _copy(tmp_path, BROKEN)
    (bundle / "bundle.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    (bundle / "kube" / "deep.json").write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
    proc = _cli("doctor", "--bundle", str(bundle), "-o", "json")
    assert proc.returncode == 1, proc.stderr
    assert "bundle.yaml" in proc.stderr and "kube/deep.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert {f["id"] for f in json.loads(proc.stdout)["findings"]} >= {"MT101", "MT103"}
    refused = _cli("doctor", "--bundle", str(bundle), "--limit", "bogus=1")
    assert refused.returncode == 2 and "--limit" in refused.stderr


def test_a_crashed_check_makes_the_run_exit_2(tmp_path: Path) -> None:
    # A check that crashes on this bundle (a plugin-free way: a sitecustomize that breaks one check's function).
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import mlops_trace.analysis.catalog as c\n"
        "_load = c.load_catalog\n"
        "def load_catalog(*a, **k):\n"
        "    entries = _load(*a, **k)\n"
        "    for e in entries:\n"
        "        if e.check.id == 'MT205':\n"
        "            object.__setattr__(e, 'run', lambda snap: 1 / 0)\n"
        "    return entries\n"
        "c.load_catalog = load_catalog\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for fmt in ("table", "json", "junit", "sarif"):
        proc = _cli("doctor", "--bundle", str(HEALTHY), "-o", fmt, env=env)
        assert proc.returncode == 2, (fmt, proc.stderr)
        assert "MT205" in proc.stderr and "ZeroDivisionError" in proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cleans_up_and_exits_2(tmp_path: Path, sig: signal.Signals) -> None:
    members = _healthy_members() + [(f"logs/ns/pod-{i}/c.log", b"line\n" * 50) for i in range(15_000)]
    archive = _tar(tmp_path / "slow.tar.gz", members)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_trace", "doctor", "--bundle", str(archive)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(temp.iterdir()) and time.monotonic() < deadline:  # unpacking has begun
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, stderr
    assert "did not complete" in stderr and "Traceback" not in stderr
    assert not any(temp.iterdir())
