"""`request` names the cause of a failed exchange with the catalog's checks, as doctor does (issue 13, item 3).

Each case takes a failing fixture bundle without its recorded requests, sends nothing: it builds the Exchange the
`request` command would have received (the answer as the component gives it), records it as `request` does
(`diagnose.record_of`) and runs the catalog on the snapshot. The failure is placed at its hop by `explain`, and the
check that names it must cite the request.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlops_trace.parsers import envoy_access
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.diagnose import diagnose, explained, record_display, record_of, sent_headers
from mlops_trace.trace.explain import explain
from mlops_trace.trace.record import ErrorKind, Exchange, Protocol
from mlops_trace.trace.target import Target, build_target
from tests.trace.helpers import exchange

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"


def _envoy_line(flags: str, status: int) -> Found:
    line = envoy_access.parse_line(
        1,
        f'[2026-12-07T10:00:00.000Z] "POST /v2/models/m/infer HTTP/1.1" {status} {flags} 412 24 15001 - "10.0.0.7" '
        '"python-httpx/0.29.0" "mt-abcd-000001" "seldon-mesh" "10.42.0.15:9000"',
    )
    assert line is not None and flags in line.response_flags
    return Found("logs/ns/seldon-envoy-0/envoy.log:1", "line", envoy=line)


def _named(
    case: str, target: Target, answer: Exchange, namespace: str, envoy: Found | None = None
) -> tuple[int, tuple[str, ...]]:
    with open_bundle(FIXTURES / case) as loaded:
        snap = dataclasses.replace(loaded, requests=[])
        failure = explain(answer, target, None, snap, envoy=envoy)
        assert failure is not None
        record = record_of(answer, target, sent_headers(target), namespace, envoy)
        report = diagnose(snap, [record], {}, "test")
        named = explained(failure, report, record_display(answer))
        assert named is not None
        return named.hop, named.checks


def test_a_504_with_envoys_ut_flag_is_mt308_at_the_server_pods_hop() -> None:
    target = build_target("http://ocr.example.org", host=None, model="invoice-layout", experiment=None)
    answer = exchange(504, {"server": "envoy", "content-length": "24"}, b"upstream request timeout", total_ms=15004.2)
    hop, checks = _named("MT308/request-504-ut", target, answer, "doc-ocr", _envoy_line("UT", 504))
    assert hop == 6 and "MT308" in checks


def test_grpc_resource_exhausted_is_mt309() -> None:
    target = build_target(
        "http://cxr.example.org", host=None, model="xray-triage", experiment=None, protocol=Protocol.GRPC
    )
    answer = dataclasses.replace(
        exchange(None, {}, grpc_status="RESOURCE_EXHAUSTED", error_kind=ErrorKind.GRPC, error=""),
        grpc_message="Received message larger than max (12582929 vs. 4194304)",
    )
    _, checks = _named("MT309/grpc-resource-exhausted", target, answer, "radiology")
    assert "MT309" in checks


def test_envoys_404_for_a_model_that_failed_to_load_is_mt109() -> None:
    target = build_target("http://claims.example.internal", host=None, model="doc-classifier", experiment=None)
    answer = exchange(404, {"server": "envoy", "content-length": "0"})
    hop, checks = _named("MT109/pvc-scheme", target, answer, "claims-ml", _envoy_line("NR", 404))
    assert hop == 4 and "MT109" in checks


def test_a_worker_stop_answer_is_mt601() -> None:
    target = build_target("http://fraud.example.org", host=None, model="claim-fraud", experiment=None)
    body = b'{"error":"Worker process stopped unexpectedly with exit code 9."}'
    answer = exchange(500, {"x-seldon-route": ":claim-fraud_1:", "server": "envoy"}, body, total_ms=812.5)
    hop, checks = _named("MT601/request-worker-stop-answer", target, answer, "fraud-serving")
    assert hop == 7 and "MT601" in checks


@pytest.mark.parametrize("case", ["MT308/healthy", "MT309/healthy", "MT601/healthy"])
def test_a_request_that_succeeds_is_named_by_no_check(case: str) -> None:
    target = build_target("http://h.example.org", host=None, model="m", experiment=None)
    answer = exchange(200, {"x-seldon-route": ":m_1:", "server": "envoy"}, b'{"outputs": []}')
    with open_bundle(FIXTURES / case) as loaded:
        snap = dataclasses.replace(loaded, requests=[])
        report = diagnose(snap, [record_of(answer, target, sent_headers(target), None)], {}, "test")
    assert not any(item.where == record_display(answer) for finding in report.findings for item in finding.evidence)
