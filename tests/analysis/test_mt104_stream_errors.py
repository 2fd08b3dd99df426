"""MT104 on broken scheduler subscription streams: `event recv failed` / `failed to receive pipeline event` with a
gRPC status (operator/scheduler/{model,server,experiment,pipeline}.go), judged by whether retrying can help."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus, Finding
from mlops_trace.snapshot.bundle import open_bundle

POD = "seldon-v2-controller-manager-5f8d7c6b9-w2zrk"
CONNECTED = '{"host": "seldon-scheduler.scoring", "port": 9004}'


def _line(logger: str, message: str, fields: str = "{}", level: str = "INFO") -> str:
    return "\t".join(("2025-01-20T10:00:00.000Z", level, logger, message, fields))


def _recv(stream: str, code: str, desc: str, message: str = "event recv failed") -> str:
    error = f'{{"error": "rpc error: code = {code} desc = {desc}"}}'
    return _line(f"SchedulerClient.{stream}", message, error, "ERROR")


def _run(tmp_path: Path, lines: list[str]) -> tuple[CheckStatus, list[Finding]]:
    log = tmp_path / "logs" / "scoring" / POD / "manager.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open_bundle(tmp_path) as snap:
        report = run_checks(snap, select(("MT104",)))
    status = next(c.status for c in report.checks if c.id == "MT104")
    return status, [f for f in report.findings if f.id == "MT104"]


@pytest.mark.parametrize("code", ["PermissionDenied", "Unauthenticated", "Unimplemented", "InvalidArgument"])
def test_one_non_transient_status_is_decisive(tmp_path: Path, code: str) -> None:
    status, findings = _run(
        tmp_path,
        [
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),
            _recv("SubscribeModelEvents", code, "RBAC: access denied"),
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),  # a dial, not a working stream
        ],
    )
    assert status is CheckStatus.FAIL
    (finding,) = findings
    assert code in finding.message
    assert finding.namespace == "scoring"
    assert any(e.where.endswith("manager.log:2") for e in finding.evidence)


def test_non_transient_status_mended_by_a_later_stream_event(tmp_path: Path) -> None:
    status, _ = _run(
        tmp_path,
        [
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),
            _recv("SubscribeModelEvents", "PermissionDenied", "RBAC: access denied"),
            _line("SchedulerClient.SubscribeControlPlaneEvents", "Received control plane event"),
        ],
    )
    assert status is CheckStatus.PASS


@pytest.mark.parametrize("code", ["Unavailable", "Canceled", "DeadlineExceeded"])
def test_one_transient_failure_after_a_connection_is_not_reported(tmp_path: Path, code: str) -> None:
    status, _ = _run(
        tmp_path,
        [
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),
            _recv("SubscribeModelEvents", code, "error reading from server: EOF"),
        ],
    )
    assert status is CheckStatus.PASS


def test_transient_failures_that_repeat_without_a_later_success(tmp_path: Path) -> None:
    status, findings = _run(
        tmp_path,
        [
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),
            _recv("SubscribeModelEvents", "Unavailable", "error reading from server: EOF"),
            _recv("SubscribePipelineEvents", "Unavailable", "EOF", "failed to receive pipeline event"),
        ],
    )
    assert status is CheckStatus.FAIL
    assert "failed 2 time(s)" in findings[0].message


def test_backoff_notify_repeating_the_recv_error_is_one_failure(tmp_path: Path) -> None:
    # v2.8+: the stream's `event recv failed` and the backoff's `Scheduler not ready` carry the same error.
    error = '{"error": "rpc error: code = Unavailable desc = error reading from server: EOF"}'
    status, _ = _run(
        tmp_path,
        [
            _line("SchedulerClient", "Connected to scheduler", CONNECTED),
            _line("SchedulerClient.SubscribeModelEvents", "event recv failed", error, "ERROR"),
            _line("SchedulerClient.SubscribeModelEvents", "Scheduler not ready", error, "ERROR"),
        ],
    )
    assert status is CheckStatus.PASS


def test_a_log_holding_only_a_failed_subscription_is_not_a_pass(tmp_path: Path) -> None:
    status, findings = _run(
        tmp_path, [_line("setup", "starting manager"), _recv("SubscribeServerEvents", "Unavailable", "EOF")]
    )
    assert status is CheckStatus.FAIL
    assert any(e.where.endswith("manager.log:2") for e in findings[0].evidence)
