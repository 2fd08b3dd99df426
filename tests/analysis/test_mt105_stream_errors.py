"""MT105 on an agent whose scheduler stream is refused: `Subscribed to scheduler` is logged before the scheduler
answers, so only a non-transient `event recv failed` tells (scheduler/pkg/agent/agent_svc_manager.go)."""

from __future__ import annotations

from pathlib import Path

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus, Finding
from mlops_trace.snapshot.bundle import open_bundle

SUBSCRIBED = 'time="2025-01-20T10:00:00Z" level=info msg="Subscribed to scheduler" Name=AgentServiceManager'


def _recv(code: str) -> str:
    return (
        'time="2025-01-20T10:00:00Z" level=error msg="event recv failed" Name=AgentServiceManager '
        f'error="rpc error: code = {code} desc = RBAC: access denied" func=handleSchedulerSubscription'
    )


def _run(tmp_path: Path, lines: list[str]) -> tuple[CheckStatus, list[Finding]]:
    log = tmp_path / "logs" / "scoring" / "mlserver-2" / "agent.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open_bundle(tmp_path) as snap:
        report = run_checks(snap, select(("MT105",)))
    status = next(c.status for c in report.checks if c.id == "MT105")
    return status, [f for f in report.findings if f.id == "MT105"]


def test_refused_stream_is_reported_even_when_the_log_ends_subscribed(tmp_path: Path) -> None:
    status, findings = _run(tmp_path, [SUBSCRIBED, _recv("PermissionDenied"), SUBSCRIBED])
    assert status is CheckStatus.FAIL
    assert "PermissionDenied" in findings[0].message
    assert any(e.where.endswith("agent.log:2") for e in findings[0].evidence)


def test_transient_recv_failure_mended_by_a_new_subscription(tmp_path: Path) -> None:
    status, _ = _run(tmp_path, [SUBSCRIBED, _recv("Unavailable"), SUBSCRIBED])
    assert status is CheckStatus.PASS


def test_refusal_mended_by_model_work(tmp_path: Path) -> None:
    work = 'time="2025-01-20T10:00:01Z" level=info msg="Received operation" Name=AgentServiceManager'
    status, _ = _run(tmp_path, [SUBSCRIBED, _recv("PermissionDenied"), SUBSCRIBED, work])
    assert status is CheckStatus.PASS
