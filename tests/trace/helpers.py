"""Builders shared by the trace tests: exchanges as the client would record them, and the healthy-ab fixture."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops_trace.trace.record import ClientPhases, ErrorKind, Exchange

REPO = Path(__file__).resolve().parents[2]
HEALTHY_AB = REPO / "fixtures" / "scenarios" / "healthy-ab"
LB_IP = "10.20.30.200"
HOST = "ml-api.example.internal"
EXPERIMENT = "txn-ab"


def exchange(
    status: int | None = 200,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    total_ms: float = 10.0,
    request_id: str = "mt-abcd-000001",
    error_kind: ErrorKind | None = None,
    error: str | None = None,
    grpc_status: str | None = None,
    phases: ClientPhases | None = None,
) -> Exchange:
    return Exchange(
        entry="ingress",
        url=f"http://{LB_IP}/v2/models/{EXPERIMENT}/infer",
        request_id=request_id,
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        started_at=1_700_000_000.0,
        status=status,
        headers=dict(headers or {}),
        body=body,
        total_ms=total_ms,
        phases=phases or ClientPhases(connect_ms=0.5, send_ms=0.1, wait_ms=9.0, receive_ms=0.2),
        http_version="HTTP/1.1",
        error=error,
        error_kind=error_kind,
        grpc_status=grpc_status,
    )


def nginx_line(
    request_id: str,
    request_time: str,
    upstream_time: str,
    status: int = 200,
    upstream: str = "[fraud-serving-seldon-mesh-80] [] 10.244.1.37:9000 210",
) -> str:
    return (
        f'10.20.30.41 - - [17/Nov/2025:09:34:02 +0000] "POST /v2/models/txn-ab/infer HTTP/1.1" {status} 210 "-" '
        f'"mlops-trace" 498 {request_time} {upstream} {upstream_time} {status} {request_id}'
    )
