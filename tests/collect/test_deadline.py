"""Time bounds of a live run against an API server that trickles its answers a byte at a time: `--request-timeout`
bounds each whole call (headers and body, not each read), and the run's `--timeout` (`LiveTarget.deadline`) ends the
collection with what it has, records the rest as not collected, or fails in one line when it has nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.collect.bundle_writer import CollectResult, collect_to_dir
from mlops_trace.collect.client import KubeApi, connect
from mlops_trace.collect.deadline import CallTimedOut, Clock, RunDeadlinePassed
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.findings import CheckStatus
from mlops_trace.snapshot.bundle import load_bundle_dir
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig
from tests.serve_process import stop_by_pid

NS = "serving"
TRICKLE = 0.5  # seconds between two bytes
SLOW_BODY = json.dumps({"kind": "List", "items": [], "padding": "x" * 40}).encode()  # ~35 s at that pace
SCHEDULER = "seldon-scheduler-0"
ENVOY = "seldon-envoy-0"
DEADLINE_REASON = "not collected: the live run's --timeout of 3 s passed"



@pytest.fixture
def api() -> FakeApi:
    api = FakeApi()
    api.json("/version", {"gitVersion": "v1.31.2"})
    api.json(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS}})
    for spec in COLLECTED_KINDS:
        for namespace in spec.list_scopes([NS], all_namespaces=False):
            api.items(spec.list_path(namespace), spec.kind, [])
    pods = [
        {
            "metadata": {"name": SCHEDULER, "namespace": NS, "labels": {"app.kubernetes.io/name": "seldon-scheduler"}},
            "spec": {"containers": [{"name": "scheduler"}]},
        },
        {
            "metadata": {"name": ENVOY, "namespace": NS, "labels": {"app.kubernetes.io/name": "seldon-envoy"}},
            "spec": {"containers": [{"name": "envoy"}]},
        },
    ]
    api.items(f"/api/v1/namespaces/{NS}/pods", "Pod", pods)
    api.text(f"/api/v1/namespaces/{NS}/pods/{SCHEDULER}/log", "scheduler up\n")
    api.text(f"/api/v1/namespaces/{NS}/pods/{ENVOY}/log", "envoy up\n")
    api.admin = {"/config_dump": b'{"configs": []}', "/stats": b"server.live: 1\n"}
    return api


@pytest.fixture
def kube(api: FakeApi, tmp_path: Path) -> Iterator[str]:
    with serving(api) as url:
        yield str(write_kubeconfig(tmp_path / "kubeconfig", url))


def _client(kubeconfig: str, request_timeout: float, run_seconds: float) -> KubeApi:
    return connect(kubeconfig, None, Clock.start(request_timeout, run_seconds))


def _timed_collect(tmp_path: Path, kubeconfig: str, **options: Any) -> tuple[float, CollectResult, dict[str, Any]]:
    root = tmp_path / "bundle"
    root.mkdir()
    started = time.monotonic()
    result = collect_to_dir(LiveTarget(namespaces=(NS,), kubeconfig=kubeconfig, **options), root)
    elapsed = time.monotonic() - started
    return elapsed, result, yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))


# --- one call ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_request_timeout_bounds_the_whole_call_not_each_read(api: FakeApi, kube: str, headers_too: bool) -> None:
    api.trickle("/slow", SLOW_BODY, TRICKLE, headers_too=headers_too)
    client = _client(kube, 1.0, 60)
    started = time.monotonic()
    with pytest.raises(CallTimedOut, match=r"GET /slow on .*: no complete answer within 1 s \(--request-timeout\)"):
        client.get_json("/slow")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.8, elapsed  # not the ~35 s of the whole body


def test_a_streamed_log_is_bounded_too(api: FakeApi, kube: str) -> None:
    api.trickle("/slow-log", b"line one\nline two\n" * 4, TRICKLE)
    client = _client(kube, 1.0, 60)
    lines: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(CallTimedOut):
        lines.extend(client.stream_lines("/slow-log"))
    assert time.monotonic() - started < 1.8
    assert lines == []  # a cut body gives no last partial line


def test_the_run_deadline_cuts_a_call_and_refuses_the_next(api: FakeApi, kube: str) -> None:
    api.trickle("/slow", SLOW_BODY, TRICKLE)
    client = _client(kube, 10.0, 1.5)
    started = time.monotonic()
    with pytest.raises(RunDeadlinePassed, match=r"the live run's --timeout of 1.5 s passed"):
        client.get_json("/slow")
    assert 1.4 <= time.monotonic() - started < 2.3
    with pytest.raises(RunDeadlinePassed):
        client.get_json("/version")  # a fast call is not even started


def test_bounds_must_be_positive() -> None:
    with pytest.raises(UsageError, match="--request-timeout must be above 0"):
        Clock.start(0, None)
    with pytest.raises(UsageError, match="--timeout must be above 0"):
        Clock.start(10, -1)
    assert Clock.start(10, None).run_seconds == 300.0


# --- a whole run -------------------------------------------------------------------------------------------------


def test_the_run_stops_at_its_deadline_and_keeps_what_it_has(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods", SLOW_BODY, TRICKLE)
    elapsed, result, meta = _timed_collect(tmp_path, kube, deadline=3.0, request_timeout=10.0)
    assert 2.9 <= elapsed < 4.5, elapsed

    # The namespace was read before the pods list; the pods and every kind after them were not.
    assert meta["kinds"] == ["Namespace"]
    assert meta["timeouts"] == {"request_seconds": 10.0, "run_seconds": 3.0, "run_passed": True}
    cut = {entry["requirement"]: entry["reason"] for entry in meta["not_collected"]}
    assert {f"kube:{spec.key}" for spec in COLLECTED_KINDS} <= set(cut)
    assert {"logs:scheduler", "envoy:config_dump", "envoy:stats"} <= set(cut)
    assert set(cut.values()) == {DEADLINE_REASON}
    assert result.objects == 1 and result.logs == 0 and result.envoys == 0
    kinds = len(COLLECTED_KINDS)
    assert result.warnings[0].startswith(f"the live run's --timeout of 3 s passed: not collected: {kinds} kinds (")
    assert result.notices == (result.warnings[0],)

    snap = load_bundle_dir(tmp_path / "bundle")
    assert snap.get("Namespace", None, NS) is not None
    _assert_skips_say(snap, "kube:Pod", DEADLINE_REASON)


def test_checks_skip_naming_the_passed_deadline(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods", SLOW_BODY, TRICKLE)
    _timed_collect(tmp_path, kube, deadline=3.0, request_timeout=10.0)
    snap = load_bundle_dir(tmp_path / "bundle")
    report = run_checks(snap, select((), ()))
    scheduler_logs = next(c for c in report.checks if c.id == "MT102")  # requires logs:scheduler
    pods = next(c for c in report.checks if c.id == "MT101")  # requires kube:StatefulSet|kube:Pod
    assert scheduler_logs.status is CheckStatus.SKIP and scheduler_logs.reason == DEADLINE_REASON
    assert pods.status is CheckStatus.SKIP and DEADLINE_REASON in pods.reason


def _assert_skips_say(snap: Any, requirement: str, reason: str) -> None:
    """What the bundle says about a requirement, as the reader finds it in bundle.yaml."""
    entries = [e for e in snap.metadata.extra["not_collected"] if e["requirement"] == requirement]
    assert entries and entries[0]["reason"] == reason


def test_a_run_that_reads_nothing_before_its_deadline_fails_in_one_line(
    api: FakeApi, kube: str, tmp_path: Path
) -> None:
    api.trickle("/version", SLOW_BODY, TRICKLE)
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        _timed_collect(tmp_path, kube, deadline=3.0, request_timeout=10.0)
    assert 2.9 <= time.monotonic() - started < 4.5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the live run's --timeout of 3 s passed before anything was collected from ")
    assert "(context fake)" in message


def test_a_slow_list_is_a_gap_and_the_run_goes_on(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies", SLOW_BODY, TRICKLE)
    elapsed, result, meta = _timed_collect(tmp_path, kube, request_timeout=1.0)
    assert elapsed < 3.5, elapsed
    assert "NetworkPolicy" not in meta["kinds"] and "Pod" in meta["kinds"]
    assert meta["not_collected"] == [
        {
            "requirement": "kube:NetworkPolicy",
            "reason": "not collected: listing networkpolicies in namespace serving: no complete answer within 1 s "
            "(--request-timeout)",
            "namespace": NS,
        }
    ]
    assert result.logs == 2 and result.envoys == 1
    assert meta["timeouts"]["run_passed"] is False


def test_a_slow_log_is_recorded_and_the_others_are_written(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods/{SCHEDULER}/log", b"line\n" * 20, TRICKLE)
    elapsed, result, meta = _timed_collect(tmp_path, kube, request_timeout=1.0)
    assert elapsed < 3.5, elapsed
    assert result.logs == 1
    assert [e["what"] for e in meta["log_errors"]] == ["scheduler"]
    assert "no complete answer within 1 s (--request-timeout)" in meta["log_errors"][0]["error"]
    assert not list((tmp_path / "bundle").rglob("*.part"))
    assert not list((tmp_path / "bundle" / "logs" / NS / SCHEDULER).glob("*"))
    assert (tmp_path / "bundle" / "logs" / NS / ENVOY / "envoy.log").is_file()


def test_logs_cut_by_the_deadline_are_not_collected(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods/{SCHEDULER}/log", b"line\n" * 20, TRICKLE)
    api.trickle(f"/api/v1/namespaces/{NS}/pods/{ENVOY}/log", b"line\n" * 20, TRICKLE)
    elapsed, result, meta = _timed_collect(tmp_path, kube, deadline=2.0, request_timeout=10.0)
    assert elapsed < 3.5, elapsed
    assert result.objects == 3 and result.logs == 0  # the namespace and its two pods
    cut = [(e["requirement"], e.get("pod")) for e in meta["not_collected"] if e["reason"].endswith("of 2 s passed")]
    assert ("logs:scheduler", SCHEDULER) in cut and ("logs:envoy", ENVOY) in cut
    assert ("envoy:config_dump", ENVOY) in cut  # not started: the deadline had passed
    assert meta["log_errors"] == [] and meta["envoy_errors"] == []
    assert "2 container logs, 1 Envoy admins" in result.warnings[0]


def test_a_trickled_port_forward_is_bounded_and_the_proxy_tried(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.admin_interval = TRICKLE
    elapsed, result, meta = _timed_collect(tmp_path, kube, request_timeout=1.0)
    assert elapsed < 4.0, elapsed
    errors = {e["what"]: e["error"] for e in meta["envoy_errors"]}
    assert errors["config_dump"].startswith("port-forward: admin /config_dump: no complete answer within 1 s")
    assert "pods/proxy :9901: HTTP 404" in errors["config_dump"]
    assert result.logs == 2


def test_a_trickled_envoy_admin_url_is_bounded(api: FakeApi, kube: str, tmp_path: Path) -> None:
    admin = FakeApi()
    admin.trickle("/config_dump", b'{"configs": []}', TRICKLE)
    admin.trickle("/stats", b"server.live: 1\n", TRICKLE, headers_too=True)
    with serving(admin) as admin_url:
        elapsed, result, meta = _timed_collect(tmp_path, kube, request_timeout=1.0, envoy_admin=(admin_url,))
    assert elapsed < 3.5, elapsed
    errors = {e["what"]: e["error"] for e in meta["envoy_errors"]}
    assert errors == {
        "config_dump": f"{admin_url}/config_dump: no complete answer within 1 s (--request-timeout)",
        "stats": f"{admin_url}/stats: no complete answer within 1 s (--request-timeout)",
    }
    assert result.envoys == 0


# --- the CLI: --timeout, and SIGTERM during a live run ----------------------------------------------------------------


def _doctor_process(kubeconfig: str, temp: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_trace", "doctor", "-n", NS, "--kubeconfig", kubeconfig, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)},
    )


def test_cli_timeout_ends_a_trickled_live_run(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods", SLOW_BODY, TRICKLE)
    temp = tmp_path / "tmp"
    temp.mkdir()
    started = time.monotonic()
    proc = _doctor_process(kube, temp, "--timeout", "3", "--request-timeout", "30", "-o", "json")
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        stop_by_pid(proc)
    assert time.monotonic() - started < 20
    assert "Traceback" not in stderr
    assert proc.returncode in (0, 1), stderr
    assert any("--timeout of 3 s passed" in c["reason"] for c in json.loads(stdout)["checks"] if c["status"] == "skip")
    assert not any(temp.iterdir())


def test_sigterm_during_a_live_run_removes_its_temporary_bundle(api: FakeApi, kube: str, tmp_path: Path) -> None:
    api.trickle(f"/api/v1/namespaces/{NS}/pods", SLOW_BODY, TRICKLE)
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = _doctor_process(kube, temp)
    try:
        deadline = time.monotonic() + 30
        while not any(temp.iterdir()) and time.monotonic() < deadline:  # the live bundle is being written
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        stop_by_pid(proc)
    assert proc.returncode == 2, stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr
    assert not any(temp.iterdir())
