"""The collectors end to end against `mlops-trace bundle serve` (a real Kubernetes REST API over a bundle), read with
the official client in real CLI processes: live doctor agrees with offline doctor, `collect` round-trips, the
collector only ever sends GET, planted secrets never reach the bundle, and a dead server fails fast in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.serve_process import stop_by_pid
from tests.fixture_walk import FIXTURES, REPO

DATA = Path(__file__).resolve().parent / "data"
PLANTED = DATA / "planted-secrets"
SCENARIOS = [FIXTURES / "scenarios" / name for name in ("four-root-causes", "healthy-ab")]
BUNDLES = [PLANTED, *(path for path in SCENARIOS if (path / "expected.yaml").is_file())]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_trace", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


@dataclass(frozen=True)
class Served:
    bundle: Path
    kubeconfig: Path
    request_log: Path


@contextmanager
def _serving(bundle: Path, tmp: Path) -> Iterator[Served]:
    """`bundle serve` as a subprocess; stopped by its PID at the end."""
    kubeconfig, request_log = tmp / "kubeconfig", tmp / "requests.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_trace",
            "bundle",
            "serve",
            str(bundle),
            "--port",
            "0",
            "--kubeconfig-out",
            str(kubeconfig),
            "--request-log",
            str(request_log),
            "--duration",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        # The server prints its kubeconfig once it listens (the file is written just before): read, don't sleep.
        for line in proc.stdout:
            if line.startswith("current-context:"):
                break
        else:
            raise AssertionError(f"bundle serve exited: {proc.wait(5)} {proc.stderr.read() if proc.stderr else ''}")
        assert kubeconfig.is_file()
        yield Served(bundle, kubeconfig, request_log)
    finally:
        stop_by_pid(proc)


@pytest.fixture(scope="module", params=BUNDLES, ids=lambda p: p.name)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    bundle: Path = request.param
    with _serving(bundle, tmp_path_factory.mktemp(f"serve-{bundle.name}")) as running:
        yield running


def _report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


_LIVE_REPORTS: dict[Path, dict[str, Any]] = {}


def _live_report(served: Served) -> dict[str, Any]:
    """`doctor -A` against the served bundle, run once per served bundle."""
    if served.kubeconfig not in _LIVE_REPORTS:
        _LIVE_REPORTS[served.kubeconfig] = _report(
            _run("doctor", "-A", "--kubeconfig", str(served.kubeconfig), "-o", "json")
        )
    return _LIVE_REPORTS[served.kubeconfig]


def _envoy_checks() -> set[str]:
    catalog = json.loads(_run("checks", "list", "-o", "json").stdout)
    return {
        c["id"] for c in catalog if any(r.startswith(("envoy", "requests")) or "|envoy" in r for r in c["requires"])
    }


def _ids(report: dict[str, Any], leave_out: set[str]) -> list[tuple[str, str, str]]:
    return sorted((f["id"], f["namespace"] or "", f["object"]) for f in report["findings"] if f["id"] not in leave_out)


def test_live_doctor_finds_what_offline_doctor_finds(served: Served) -> None:
    live = _live_report(served)
    offline = _report(_run("doctor", "--bundle", str(served.bundle), "-o", "json"))
    envoy_checks = _envoy_checks()
    assert _ids(live, envoy_checks) == _ids(offline, envoy_checks)
    expected = yaml.safe_load((served.bundle / "expected.yaml").read_text(encoding="utf-8"))
    assert sorted({f["id"] for f in live["findings"]}) == sorted(expected["ids"])


def test_collected_bundle_gives_the_same_findings_as_live_doctor(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out.tar.gz"
    collect = _run("collect", "-A", "--kubeconfig", str(served.kubeconfig), str(out))
    assert collect.returncode == 0, collect.stderr
    assert collect.stdout.startswith(f"wrote {out}: ")
    live = _live_report(served)
    offline = _report(_run("doctor", "--bundle", str(out), "-o", "json"))
    assert offline["findings"] == live["findings"]
    assert offline["checks"] == live["checks"]
    with tarfile.open(out) as archive:
        names = archive.getnames()
    top = out.name.removesuffix(".tar.gz")
    assert f"{top}/bundle.yaml" in names and f"{top}/redaction-report.yaml" in names
    assert any(n.startswith(f"{top}/kube/") for n in names) and any(n.startswith(f"{top}/logs/") for n in names)


def test_the_collector_only_reads(served: Served, tmp_path: Path) -> None:
    _live_report(served)
    collect = _run("collect", "-A", "--kubeconfig", str(served.kubeconfig), str(tmp_path / "b"))
    assert collect.returncode == 0, collect.stderr
    lines = served.request_log.read_text(encoding="utf-8").splitlines()
    assert lines
    assert [line for line in lines if not line.startswith("GET ")] == []


def test_planted_secrets_do_not_reach_the_bundle(tmp_path: Path) -> None:
    """Our own fixture plants values containing PLANTED in env, annotations, last-applied, args, URLs, logs, Envoy."""
    out = tmp_path / "collected"
    with _serving(PLANTED, tmp_path) as running:
        result = _run("collect", "-n", "seldon-mesh", "--kubeconfig", str(running.kubeconfig), str(out))
    assert result.returncode == 0, result.stderr
    planted_in_source = sum(p.read_text(encoding="utf-8").count("PLANTED") for p in PLANTED.rglob("*") if p.is_file())
    assert planted_in_source >= 18
    files = [p for p in out.rglob("*") if p.is_file()]
    leaked = {p.relative_to(out).as_posix() for p in files if "PLANTED" in p.read_text(encoding="utf-8")}
    assert leaked == set()
    kube_text = "".join(p.read_text(encoding="utf-8") for p in (out / "kube").glob("*.yaml"))
    assert "kind: Secret" not in kube_text
    report = yaml.safe_load((out / "redaction-report.yaml").read_text(encoding="utf-8"))
    assert set(report["files"]) == {
        "kube/pods.yaml",
        "logs/seldon-mesh/seldon-scheduler-0/scheduler.log",
        "logs/seldon-mesh/mlserver-0/agent.log",
        "logs/seldon-mesh/mlserver-1/agent.log",
        "logs/seldon-mesh/seldon-v2-controller-manager-7d9f8-abcde/manager.log",
        "envoy/seldon-mesh/seldon-envoy-6c9d7-x2k4p/config_dump.json",
    }
    assert report["total"] >= 18
    # The pod that only had logs in the served bundle is not written as an object, but its log is.
    assert "seldon-v2-controller-manager" not in (out / "kube/pods.yaml").read_text(encoding="utf-8")
    meta = yaml.safe_load((out / "bundle.yaml").read_text(encoding="utf-8"))
    assert meta["synthesized_skipped"] == ["Pod/seldon-mesh/seldon-v2-controller-manager-7d9f8-abcde"]
    assert meta["envoy_sources"] == {
        "seldon-mesh/seldon-envoy-6c9d7-x2k4p": {"config_dump": "pods/proxy :9901", "stats": "pods/proxy :9901"}
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", ["doctor", "collect"])
def test_a_closed_port_fails_fast_in_one_line(tmp_path: Path, command: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{_closed_port()}\n"
        "users:\n- name: gone\n  user: {token: abc}\n"
        "contexts:\n- name: gone\n  context: {cluster: gone, user: gone}\ncurrent-context: gone\n",
        encoding="utf-8",
    )
    args = ["-A", "--kubeconfig", str(kubeconfig), "--request-timeout", "2"]
    extra = [str(tmp_path / "out.tar.gz")] if command == "collect" else ["-o", "json"]
    started = time.monotonic()
    proc = _run(command, *args, *extra, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert elapsed < 10
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mlops-trace: error: cannot reach the Kubernetes API server https://127.0.0.1:")
    assert "connection refused" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "out.tar.gz").exists()


@pytest.mark.parametrize("served", [SCENARIOS[0]], indirect=True, ids=["four-root-causes"])
def test_doctor_without_scope_reads_the_context_namespace(served: Served, tmp_path: Path) -> None:
    """kubectl's habit: no -n and no -A is the current context's namespace, said on stderr; the findings are those
    of `-n` with that namespace, and no other namespace's."""
    config = yaml.safe_load(served.kubeconfig.read_text(encoding="utf-8"))
    for entry in config["contexts"]:
        entry["context"]["namespace"] = "fraud-serving"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    unscoped = _run("doctor", "--kubeconfig", str(kubeconfig), "-o", "json")
    named = _report(_run("doctor", "-n", "fraud-serving", "--kubeconfig", str(kubeconfig), "-o", "json"))
    assert "namespace fraud-serving (the kubeconfig context's" in unscoped.stderr
    report = _report(unscoped)
    assert report["findings"] == named["findings"]
    assert {f["namespace"] for f in report["findings"]} <= {"fraud-serving", None}
    assert report["findings"]


def test_collect_output_is_a_format_and_a_path_gets_a_hint(tmp_path: Path) -> None:
    result = _run("collect", "-n", "x", "-o", str(tmp_path / "b.tar.gz"), str(tmp_path / "dest"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mlops-trace: error: --output must be text or json (got {str(tmp_path / 'b.tar.gz')!r}) "
        "(the bundle's destination is the argument: mlops-trace collect DEST)"
    ]
