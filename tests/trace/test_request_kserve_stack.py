"""`request --isvc` against the KServe reference stack for real (Envoy as the Istio ingress and local gateways,
queue-proxy, KServe's model servers on 127.0.0.1): the timed path of a served request, each stack fault's failing
hop, and the canary split. Marked `stack`; each stack runs in its own state directory and is torn down by this test
(never one it did not start). The stack's venv is shared through MLOPS_TRACE_KSERVE_STACK_VENV (built on first use)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.stack.kserve.paths import VENV_ENV, default_state_dir
from mlops_trace.stack.kserve.runner import down, up
from mlops_trace.stack.kserve.topology import parse_kfaults
from mlops_trace.stack.venv import Say
from mlops_trace.trace.command import RequestArgs, execute

pytestmark = pytest.mark.stack


@contextmanager
def kserve_stack(state_dir: Path, *faults: str) -> Iterator[dict[str, Any]]:
    previous = os.environ.get(VENV_ENV)
    os.environ.setdefault(VENV_ENV, str(default_state_dir() / "venv"))
    try:
        yield up(state_dir, parse_kfaults(faults), Say(quiet=True))
    finally:
        result = down(state_dir)
        if previous is None:
            os.environ.pop(VENV_ENV, None)
        else:
            os.environ[VENV_ENV] = previous
    assert not result.still_listening


def _request(state_dir: Path, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    outcome = execute(RequestArgs(isvc="sklearn-iris", state_dir=state_dir, output="json", timeout=15.0, **kwargs))
    return outcome.exit_code, json.loads(outcome.text)


def test_a_served_request_prints_the_timed_path(tmp_path: Path) -> None:
    with kserve_stack(tmp_path / "healthy"):
        code, trace = _request(tmp_path / "healthy")
        _, v2 = _request(tmp_path / "healthy", isvc_protocol="v2")
        text = execute(RequestArgs(isvc="sklearn-iris", state_dir=tmp_path / "healthy")).text
    assert code == 0, trace
    assert trace["status"] == 200 and trace["failure"] is None
    assert trace["target"] == "InferenceService kserve-test/sklearn-iris"
    by_name = {hop["name"]: hop for hop in trace["hops"]}
    for name in ("Istio gateway", "Knative route", "queue-proxy", "transformer", "kserve-container", "model"):
        assert by_name[name]["duration_ms"] is not None, (name, by_name[name]["untimed_reason"])
        assert by_name[name]["source_kind"] == "access-log"
    assert "kserve.trace" in by_name["model"]["source"]
    assert by_name["activator"]["untimed_reason"].startswith("not on the path")
    assert v2["status"] == 200 and v2["url"].endswith("/v2/models/sklearn-iris/infer"), v2["failure"]
    assert "kserve-container" in text and "Istio gateway" in text


def test_v2_grpc_prints_the_timed_path_and_percentiles(tmp_path: Path) -> None:
    # gRPC goes where KServe's VirtualService sends every call, the transformer (its gRPC server), which calls the
    # predictor over REST: the gateway's passes carry our id in the User-Agent, the predictor's queue-proxy the B3 id.
    state = tmp_path / "grpc"
    with kserve_stack(state):
        code, trace = _request(state, isvc_protocol="v2", protocol="grpc")
        many_code, summary = _request(state, isvc_protocol="v2", protocol="grpc", count=20)
        text = execute(RequestArgs(isvc="sklearn-iris", state_dir=state, isvc_protocol="v2", protocol="grpc")).text
    assert code == 0, trace["failure"]
    assert trace["protocol"] == "grpc" and trace["status"] == "OK" and trace["failure"] is None
    assert trace["url"].endswith("/inference.GRPCInferenceService/ModelInfer")
    assert trace["served_model"] == "sklearn-iris (sklearn-iris-predictor-00001)"
    by_name = {hop["name"]: hop for hop in trace["hops"]}
    for name in ("Istio gateway", "Knative route", "transformer", "→ predictor", "kserve-container", "model"):
        assert by_name[name]["duration_ms"] is not None, (name, by_name[name]["untimed_reason"])
    assert by_name["transformer"]["source"].startswith("gateway log, two passes: local gateway upstream time")
    assert "Istio gateway" in text and "kserve-container" in text
    assert many_code == 0 and summary["count"] == 20 and summary["success_rate"] == 1.0, summary["errors"]
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    stats = {hop["name"]: hop for hop in summary["hops"]}
    for name in ("Istio gateway", "transformer", "kserve-container"):
        assert stats[name]["samples"] == 20, stats[name]


@pytest.mark.parametrize(
    ("fault", "hop", "code", "check", "not_check"),
    [
        ("host-mismatch", "Istio gateway", "no-route", "MT713", None),
        ("storage-init-fail", "Istio gateway", "no-route", "MT701", None),
        ("gateway-missing", "Knative route", "upstream-connect", "MT712", None),
        ("transformer-unreachable", "transformer", "transformer-upstream", "MT715", None),
        # the predictor answered (queue-proxy's 504): the transformer reached it, so not MT715
        ("revision-timeout", "→ predictor", "revision-timeout", "MT308", "MT715"),
    ],
)
def test_each_fault_fails_at_its_hop(
    tmp_path: Path, fault: str, hop: str, code: str, check: str, not_check: str | None
) -> None:
    with kserve_stack(tmp_path / fault, fault):
        exit_code, trace = _request(tmp_path / fault)
    assert exit_code == 1
    failure = trace["failure"]
    assert failure is not None
    assert (trace["hops"][failure["hop"] - 1]["name"], failure["code"]) == (hop, code), failure["summary"]
    # the catalog names the cause: a finding citing the request, or one about the fault
    assert check in failure["checks"] or check in [finding["id"] for finding in trace["findings"]], failure
    if not_check is not None:
        assert not_check not in failure["checks"], failure


def test_a_stale_canary_shows_three_ways(tmp_path: Path) -> None:
    with kserve_stack(tmp_path / "canary", "canary-stale"):
        code, summary = _request(tmp_path / "canary", count=30, concurrency=2)
    # Every request is answered; the exit code is MT719's warning: the Route does not serve the canary split.
    assert summary["success_rate"] == 1.0, summary["errors"]
    assert code == 1 and "MT719" in {finding["id"] for finding in summary["findings"]}, summary["findings"]
    split = summary["split"]
    assert split["expected"] == {"sklearn-iris-predictor-00002": 0.2, "sklearn-iris-predictor-00001": 0.8}
    assert split["envoy"] == {"sklearn-iris-predictor-00001": 1.0}
    assert split["observed"]["sklearn-iris-predictor-00001"] == 30
    assert split["envoy_matches_experiment"] is False
