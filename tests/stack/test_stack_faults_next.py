"""The reference stack's faults for the failure classes MT109, MT110, MT111, MT308, MT309 and MT601, for real: each
test brings one faulted stack up (NGINX, Envoy, rclone, MLServer on 127.0.0.1), checks the real component's symptom
first (rclone's and the agent's error, MLServer's ModuleNotFoundError, Envoy's 504 UT, gRPC RESOURCE_EXHAUSTED, the
dead worker), then that `doctor -A` over the stack's Kubernetes API and `request` name the same cause. Marked
`stack`; every stack is stopped by PID and leaves no listener."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.parsers import envoy_access
from mlops_trace.stack import grpc_wire
from mlops_trace.stack.runner import inference_workers
from mlops_trace.stack.state import read_state
from tests.stack_run import running_stack

pytestmark = pytest.mark.stack

EXP = "financial-ab-test-experiment"
ROUTE = f"{EXP}.experiment"
BODY = {"inputs": [{"name": "input_data", "shape": [1, 10, 35], "datatype": "FP32", "data": [0.25] * 350}]}


def _post(info: dict[str, Any], model: str, header: str | None = None, timeout: float = 10.0) -> Any:
    import httpx

    headers = {"Host": info["host"], "Content-Type": "application/json", "seldon-model": header or model}
    return httpx.post(f"{info['ingress_url']}/v2/models/{model}/infer", json=BODY, headers=headers, timeout=timeout)


def _doctor(info: dict[str, Any]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "doctor", "-A", "--kubeconfig", info["kubeconfig"], "-o", "json",
         "--fail-on", "critical"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return findings


def _named(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["id"], f["title"]) for f in findings if f["severity"] in ("warning", "critical")}


def _request(info: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    from mlops_trace.trace.command import RequestArgs, execute

    args = {"experiment": EXP, **kwargs} if "model" not in kwargs else kwargs
    outcome = execute(RequestArgs(state_dir=Path(info["state_dir"]), output="json", probes=0, **args))
    document: dict[str, Any] = json.loads(outcome.text)
    return document


def _same_causes(info: dict[str, Any], expected: str, **request_args: Any) -> set[str]:
    """`request` names `expected`, `doctor -A` names it too, and both name the same causes with the same ids and
    titles (one catalog, one engine). The request goes first, so doctor reads its log lines too. Returns the ids."""
    traced = _named(_request(info, **request_args)["findings"])
    assert expected in {check for check, _ in traced}, traced
    doctored = _named(_doctor(info))
    assert expected in {check for check, _ in doctored}, doctored
    assert traced == doctored
    return {check for check, _ in traced}


def _text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def _model(info: dict[str, Any], name: str) -> dict[str, Any]:
    import httpx

    url = f"{info['kube_api_url']}/apis/mlops.seldon.io/v1alpha1/namespaces/financial-inference/models/{name}"
    model: dict[str, Any] = httpx.get(url, timeout=5).json()
    return model


def _condition(model: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in model["status"]["conditions"] if c["type"] == kind)


def _envoy_records(info: dict[str, Any]) -> list[Any]:
    time.sleep(0.3)  # Envoy flushes its access log every 100 ms
    lines = list(enumerate(_text(info["logs"]["envoy"]).splitlines(), start=1))
    return list(envoy_access.iter_records(lines))


def test_model_load_fail_is_rclone_and_the_agent_for_real(tmp_path: Path) -> None:
    started = time.monotonic()
    with running_stack(tmp_path, "model-load-fail") as info:
        assert time.monotonic() - started < 90
        rclone = _text(info["logs"]["rclone"])
        assert 'ERROR : rc: "sync/copy": error: directory not found' in rclone  # rclone's own answer
        agent = _text(info["logs"]["agent"])
        assert 'msg="Failed to handle load model fraud-detector:1"' in agent
        assert "failed to sync/copy file://" in agent and "path:/sync/copy" in agent
        model = _model(info, "fraud-detector")
        ready = _condition(model, "ModelReady")
        assert (ready["status"], ready["reason"]) == ("False", "ModelFailed")
        assert ready["message"].startswith("failed to sync/copy file://") and model["status"]["availableReplicas"] == 0
        assert "Updating state for model fraud-detector to ModelFailed" in _text(info["logs"]["scheduler"])
        missing = _post(info, "fraud-detector")  # the route is never programmed: Envoy's own empty 404
        assert missing.status_code == 404 and missing.content == b""
        assert any(r.path == "/v2/models/fraud-detector/infer" and "NR" in r.response_flags
                   for r in _envoy_records(info))
        assert _post(info, EXP, ROUTE).status_code == 200  # the experiment still serves
        _same_causes(info, "MT109", model="fraud-detector")


def test_runtime_deps_is_mlservers_module_not_found(tmp_path: Path) -> None:
    with running_stack(tmp_path, "runtime-deps") as info:
        mlserver = _text(info["logs"]["mlserver"])
        assert "ModuleNotFoundError: No module named 'feature_store_client'" in mlserver
        assert "[mlserver.grpc] ERROR - No module named 'feature_store_client'" in mlserver
        agent = _text(info["logs"]["agent"])
        error = "rpc error: code = Internal desc = No module named 'feature_store_client'"
        assert f'msg="Failed to handle load model feature-store-predictor:1" Name=AgentServiceManager error="{error}"' \
            in agent.replace("\\'", "'")
        ready = _condition(_model(info, "feature-store-predictor"), "ModelReady")
        assert (ready["status"], ready["reason"], ready["message"]) == ("False", "ModelFailed", error)
        assert _post(info, "feature-store-predictor").status_code == 404
        _same_causes(info, "MT110", model="feature-store-predictor")


def test_replicas_exceed_server_keeps_one_replica_and_says_why(tmp_path: Path) -> None:
    with running_stack(tmp_path, "replicas-exceed-server") as info:
        scheduler = _text(info["logs"]["scheduler"])
        assert "Failed to schedule model as no matching server had enough suitable replicas" in scheduler
        model = _model(info, "risk-scorer")
        ready = _condition(model, "ModelReady")
        assert (ready["status"], ready["reason"]) == ("False", "ScheduleFailed")
        assert ready["message"] == "Failed to schedule model as no matching server had enough suitable replicas"
        assert (model["spec"]["replicas"], model["status"]["availableReplicas"]) == (2, 1)
        served = _post(info, "risk-scorer")  # v2.10: a model with a live replica keeps its route
        assert served.status_code == 200 and served.json()["model_name"] == "risk-scorer_1"
        _same_causes(info, "MT111", model="risk-scorer")


def test_route_timeout_is_envoys_504_ut(tmp_path: Path) -> None:
    with running_stack(tmp_path, "route-timeout=200ms") as info:
        answer = _post(info, EXP, ROUTE)
        assert answer.status_code == 504 and answer.content == b"upstream request timeout"
        timed_out = [r for r in _envoy_records(info) if r.status == 504]
        assert timed_out and "UT" in timed_out[-1].response_flags
        dump = _text(str(Path(info["bundle"]) / "envoy/financial-inference/seldon-envoy-7d9c5b8f6c-q4x2m/"
                         "config_dump.json"))
        assert '"timeout": "0.200s"' in dump
        _same_causes(info, "MT308")


def test_grpc_max_message_is_resource_exhausted_through_the_ingress(tmp_path: Path) -> None:
    import grpc

    with running_stack(tmp_path, "grpc-max-message") as info:
        request = grpc_wire.encode_infer_request(EXP, "input_data", [1, 10, 35], [0.25] * 350)
        with grpc.insecure_channel(info["ingress_grpc"], options=[("grpc.default_authority", info["host"])]) as ch:
            call = ch.unary_unary(grpc_wire.MODEL_INFER, request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
            with pytest.raises(grpc.RpcError) as caught:
                call(request, metadata=[("seldon-model", ROUTE)], timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Received message larger than max (" in str(caught.value.details())
        assert "vs. 1024)" in str(caught.value.details())
        assert _post(info, EXP, ROUTE).status_code == 200  # REST has no such limit
        import httpx

        sts = httpx.get(f"{info['kube_api_url']}/apis/apps/v1/namespaces/financial-inference/statefulsets/mlserver",
                        timeout=5).json()
        env = {e["name"]: e.get("value") for c in sts["spec"]["template"]["spec"]["containers"]
               if c["name"] == "mlserver" for e in c["env"]}
        assert env["MLSERVER_GRPC_MAX_MESSAGE_LENGTH"] == "1024"
        _same_causes(info, "MT309", protocol="grpc")


def test_worker_crash_is_mlservers_own_respawn(tmp_path: Path) -> None:
    with running_stack(tmp_path, "worker-crash", "slow-model=1s") as info:
        mlserver = _text(info["logs"]["mlserver"])
        first = "on default inference pool stopped unexpectedly with exit code 9. Triggering worker restart..."
        assert first in mlserver and "is now ready." in mlserver  # the kill at start-up, and MLServer's new worker
        state = read_state(tmp_path / "state.json")
        assert state is not None
        pid = next(p.pid for p in state.processes if p.name == "mlserver")
        # A request in flight when the worker dies: MLServer answers it 500 `Worker process stopped unexpectedly`
        # at once, and Seldon's Envoy retries (5xx); retries before the new worker is ready get MLServer's 500 too
        # (`RuntimeError: coroutine raised StopIteration`: no worker in the pool).
        answers: list[Any] = []
        sender = threading.Thread(target=lambda: answers.append(_post(info, EXP, ROUTE, timeout=30)))
        sender.start()
        time.sleep(0.4)
        workers = inference_workers(pid)
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        sender.join(40)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _text(info["logs"]["mlserver"]).count("is now ready.") < 2:
            time.sleep(0.2)
        mlserver = _text(info["logs"]["mlserver"])
        assert f"Worker with PID {workers[0]} {first}" in mlserver
        assert f"Cancelling 1 in-flight requests for worker {workers[0]} which died unexpectedly with exit code 9" \
            in mlserver
        assert mlserver.count("is now ready.") >= 2
        # What the client sees depends on where Envoy's jittered retries land: 200 once one reaches the new worker.
        assert answers and answers[0].status_code in (200, 500)
        health = _post(info, EXP, ROUTE)
        assert health.status_code == 200  # the pool is whole again
        _same_causes(info, "MT601")
