"""The KServe stack for real (`stack up --profile kserve`): KServe's model server and storage initializer (kserve
0.21.0), our queue-proxy stand-in and Envoy as Istio's ingress gateway on 127.0.0.1, healthy and with each fault,
each torn down to no process and no listening port. Marked `stack`; they run in CI too. The first run on a machine
builds the KServe venv (two to three minutes); it is shared through MLOPS_TRACE_KSERVE_STACK_VENV."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mlops_trace.stack.kserve.paths import VENV_ENV, default_state_dir
from mlops_trace.stack.kserve.runner import down, up
from mlops_trace.stack.kserve.state import read_state
from mlops_trace.stack.kserve.topology import ISVC_HOST, MISMATCHED_HOST, parse_kfaults
from mlops_trace.stack.ports import listening_ports
from mlops_trace.stack.procs import ProcessRecord, alive
from mlops_trace.stack.venv import Say

pytestmark = pytest.mark.stack

V1 = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
V2 = {"id": "req-1", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                 "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}
PREDICTOR_HOST = "sklearn-iris-predictor.kserve-test.example.com"
# Istio's TEXT access log: "[start] "METHOD PATH PROTO" CODE FLAGS DETAILS ... "AUTHORITY" "UPSTREAM_HOST" CLUSTER
ACCESS = re.compile(r'^\[[^\]]+\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<code>\d+) (?P<flags>\S+) (?P<details>\S+) '
                    r'.*"(?P<authority>[^"]*)" "(?P<upstream>[^"]*)" (?P<cluster>\S+) ')


@contextmanager
def _stack(tmp: Path, *faults: str) -> Iterator[dict[str, Any]]:
    previous = os.environ.get(VENV_ENV)
    os.environ.setdefault(VENV_ENV, str(default_state_dir() / "venv"))
    records: tuple[ProcessRecord, ...] = ()
    started = time.monotonic()
    try:
        info = up(tmp, parse_kfaults(faults), Say(quiet=True))
        state = read_state(tmp / "state.json")
        assert state is not None
        records = state.processes
        assert state.ready_seconds < 60, state.ready_seconds
        yield info
    finally:
        result = down(tmp)
        if previous is None:
            os.environ.pop(VENV_ENV, None)
        else:
            os.environ[VENV_ENV] = previous
    assert not result.still_listening
    assert not [r.name for r in records if alive(r)]
    assert not set(info["ports"].values()) & listening_ports()
    assert time.monotonic() - started < 600


def _post(info: dict[str, Any], path: str, body: dict[str, Any], host: str = ISVC_HOST) -> httpx.Response:
    return httpx.post(info["gateway_url"] + path, json=body, headers={"Host": host}, timeout=20.0)


def _access(info: dict[str, Any]) -> list[dict[str, str]]:
    time.sleep(0.3)  # Envoy flushes its access log every 100 ms
    lines = Path(info["logs"]["gateway"]).read_text(encoding="utf-8").splitlines()
    return [m.groupdict() for m in map(ACCESS.match, lines) if m]


def _kube(info: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for path in sorted((Path(info["bundle"]) / "kube").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return dict(doc)
    raise AssertionError(f"no {kind}/{name} in the bundle")


def _doctor(info: dict[str, Any]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_trace", "doctor", "-A", "--kubeconfig", info["kubeconfig"], "-o", "json"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in (0, 1), result.stderr
    return {f["id"] for f in json.loads(result.stdout)["findings"] if f["severity"] in ("warning", "critical")}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with _stack(tmp_path_factory.mktemp("kserve-healthy")) as info:
        yield info


def test_v1_through_gateway_transformer_queue_proxy_and_model(healthy: dict[str, Any]) -> None:
    answer = _post(healthy, "/v1/models/sklearn-iris:predict", V1)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [0, 2]}
    assert answer.headers["server"] == "istio-envoy"
    hops = [a for a in _access(healthy) if a["path"] == "/v1/models/sklearn-iris:predict"]
    clusters = {a["cluster"] for a in hops}
    # ingress gateway → local gateway (KServe's VS) → transformer revision; transformer → mesh → predictor revision
    assert "outbound|80||knative-local-gateway.istio-system.svc.cluster.local" in clusters
    assert "outbound|80||sklearn-iris-transformer-00001.kserve-test.svc.cluster.local" in clusters
    assert "outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local" in clusters
    assert {a["code"] for a in hops} == {"200"} and {a["flags"] for a in hops} == {"-"}
    queue = Path(healthy["logs"]["predictor_queue_proxy"]).read_text(encoding="utf-8").splitlines()
    served = [json.loads(line) for line in queue if '"httpRequest"' in line]
    assert any(s["httpRequest"]["status"] == 200 and s["httpRequest"]["requestUrl"].endswith(":predict")
               for s in served)
    model = Path(healthy["logs"]["predictor"]).read_text(encoding="utf-8")
    assert "Registering model: sklearn-iris" in model and '"POST /v1/models/sklearn-iris:predict HTTP/1.1" 200' in model


def test_v2_through_the_transformer_and_at_the_predictor_host(healthy: dict[str, Any]) -> None:
    for host in (ISVC_HOST, PREDICTOR_HOST):
        answer = _post(healthy, "/v2/models/sklearn-iris/infer", V2, host)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_name"] == "sklearn-iris" and body["id"] == "req-1"
        assert body["outputs"][0]["data"] == [0, 2]


def _grpc_infer(info: dict[str, Any], host: str, user_agent: str) -> tuple[Any, dict[str, str]]:
    """One V2 gRPC ModelInfer through the gateway, with `host` as :authority; (response, initial metadata)."""
    import grpc

    from mlops_trace.grpc_v2 import open_inference_pb2 as pb

    request = pb.ModelInferRequest(model_name="sklearn-iris", id="grpc-1")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend([5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3])  # V2's two flowers
    address = info["gateway_url"].removeprefix("http://")
    options = [("grpc.default_authority", host), ("grpc.primary_user_agent", user_agent)]
    with grpc.insecure_channel(address, options=options) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=pb.ModelInferRequest.SerializeToString,
                                    response_deserializer=pb.ModelInferResponse.FromString)
        response, call = infer.with_call(request, metadata=[("x-request-id", user_agent)], timeout=20.0)
    return response, dict(call.initial_metadata())


def test_v2_grpc_through_the_gateway_to_the_transformer_and_the_predictor(healthy: dict[str, Any]) -> None:
    # The InferenceService's host: KServe's route (to the top component, the transformer), then net-istio's gRPC
    # route to the revision's http2 port, over HTTP/2 to the transformer's gRPC server, which calls the predictor.
    response, metadata = _grpc_infer(healthy, ISVC_HOST, "grpc-test-isvc")
    assert response.model_name == "sklearn-iris" and response.id == "grpc-1"
    assert list(response.outputs[0].contents.int64_contents) == [0, 2]
    assert metadata["server"] == "istio-envoy"
    # The predictor's own host reaches its gRPC server directly.
    response, _ = _grpc_infer(healthy, PREDICTOR_HOST, "grpc-test-predictor")
    assert response.model_name == "sklearn-iris" and response.outputs[0].datatype == "INT64"
    time.sleep(0.3)  # Envoy flushes its access log every 100 ms
    lines = Path(healthy["logs"]["gateway"]).read_text(encoding="utf-8").splitlines()
    grpc_lines = [(a, line) for a, line in ((ACCESS.match(line), line) for line in lines)
                  if a and a["path"] == "/inference.GRPCInferenceService/ModelInfer"]
    isvc = sorted((a["cluster"], a["code"]) for a, line in grpc_lines if '"grpc-test-isvc ' in line)
    assert isvc == [
        ("outbound|80||knative-local-gateway.istio-system.svc.cluster.local", "200"),
        ("outbound|81||sklearn-iris-transformer-00001.kserve-test.svc.cluster.local", "200"),
    ]
    assert all(" HTTP/2\" " in line for _, line in grpc_lines)
    direct = [a["cluster"] for a, line in grpc_lines if '"grpc-test-predictor ' in line]
    assert direct == ["outbound|81||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local"]
    for name in ("predictor", "transformer"):
        log = Path(healthy["logs"][name]).read_text(encoding="utf-8")
        port = healthy["ports"][f"{name}_grpc"]
        assert f"loopback: gRPC bound to 127.0.0.1:{port} (not [::]:{port})" in log
    transformer = Path(healthy["logs"]["transformer"]).read_text(encoding="utf-8")
    assert "grpc method: /inference.GRPCInferenceService/ModelInfer" in transformer


_LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def _descendants(pids: set[int]) -> set[int]:
    found = set(pids)
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    grown = True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grown = bool(more)
    return found


def _listening_sockets(pids: set[int]) -> dict[str, set[int]]:
    """Local address (hex, as /proc/net/tcp* print it) → ports, of every listening TCP socket these processes own."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening: dict[str, set[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # state LISTEN, socket inode
                address, port = cols[1].split(":")
                listening.setdefault(address, set()).add(int(port, 16))
    return listening


def test_nothing_of_the_stack_listens_beyond_loopback(healthy: dict[str, Any]) -> None:
    pids = _descendants({p["pid"] for p in healthy["processes"].values()})
    listening = _listening_sockets(pids)
    ports = {port for found in listening.values() for port in found}
    # The model servers' REST and gRPC ports, the queue-proxies, both gateway listeners, Envoy's admin, the kube API.
    assert {healthy["ports"][name] for name in ("predictor_http", "predictor_grpc", "transformer_http",
                                                 "transformer_grpc", "gateway_http", "local_gateway",
                                                 "gateway_admin", "kube_api")} <= ports
    assert set(listening) <= _LOOPBACK_HEX, listening


def test_storage_initializer_really_fetched_the_model(healthy: dict[str, Any]) -> None:
    log = Path(healthy["logs"]["storage_initializer"]).read_text(encoding="utf-8")
    assert " storage.initializer INFO [kserve_storage.py:download():" in log
    assert "Successfully copied file://" in log and "Linking: " in log
    pod = _kube(healthy, "InferenceService", "sklearn-iris")
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    assert healthy["storage_initializers"][0]["exit_code"] == 0


def test_status_names_the_queue_proxy_stand_in(healthy: dict[str, Any]) -> None:
    roles = {name: p["role"] for name, p in healthy["processes"].items()}
    assert roles["sklearn-iris-predictor-00001/queue-proxy"].startswith("queue-proxy stand-in (ours")
    assert all(p["alive"] for p in healthy["processes"].values())


def test_healthy_doctor_is_clean(healthy: dict[str, Any]) -> None:
    _post(healthy, "/v1/models/sklearn-iris:predict", V1)
    assert _doctor(healthy) == set()


def test_unknown_host_is_envoys_own_404(healthy: dict[str, Any]) -> None:
    # After the doctor test: a request for an unknown host is what MT713 looks for.
    answer = _post(healthy, "/v1/models/sklearn-iris:predict", V1, "nobody.example.com")
    assert answer.status_code == 404 and answer.content == b"" and answer.headers["server"] == "istio-envoy"


def test_host_mismatch_and_stale_predictor_host(tmp_path: Path) -> None:
    with _stack(tmp_path, "host-mismatch", "transformer-unreachable") as info:
        lost = _post(info, "/v1/models/sklearn-iris:predict", V1)
        assert lost.status_code == 404 and lost.content == b""
        assert [a["flags"] for a in _access(info) if a["authority"] == ISVC_HOST] == ["NR"]
        # The VirtualService's own host is routed: to the transformer, whose predictor host is no Service.
        failed = _post(info, "/v1/models/sklearn-iris:predict", V1, MISMATCHED_HOST)
        assert failed.status_code == 500
        assert failed.json()["error"].startswith("ConnectError : [Errno -")  # -2 NXDOMAIN, -3 without a resolver
        transformer = Path(info["logs"]["transformer"]).read_text(encoding="utf-8")
        assert "httpx.ConnectError: [Errno -" in transformer
        assert _kube(info, "VirtualService", "sklearn-iris")["spec"]["hosts"][1] == MISMATCHED_HOST


def test_storage_init_fail(tmp_path: Path) -> None:
    with _stack(tmp_path, "storage-init-fail") as info:
        log = Path(info["logs"]["storage_initializer"]).read_text(encoding="utf-8")
        assert re.search(r"storage\.initializer ERROR \[initializer-entrypoint:<module>\(\):\d+\] Storage "
                         r"initialization failed: Local path file://\S+ does not exist\.", log)
        assert not [name for name in info["processes"] if "predictor" in name]
        answer = _post(info, "/v1/models/sklearn-iris:predict", V1)
        assert answer.status_code == 404 and answer.content == b""
        isvc = _kube(info, "InferenceService", "sklearn-iris")
        assert isvc["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
        assert "does not exist." in isvc["status"]["modelStatus"]["lastFailureInfo"]["message"]
        pods = [p for p in info["storage_initializers"]]
        assert pods[0]["exit_code"] == 1


def test_revision_timeout_and_missing_local_gateway(tmp_path: Path) -> None:
    with _stack(tmp_path, "revision-timeout", "gateway-missing") as info:
        started = time.monotonic()
        slow = _post(info, "/v1/models/sklearn-iris:predict", V1, PREDICTOR_HOST)
        elapsed = time.monotonic() - started
        assert slow.status_code == 504 and slow.content == b"request timeout", slow.text
        assert 1.0 <= elapsed < 2.4
        queue = Path(info["logs"]["predictor_queue_proxy"]).read_text(encoding="utf-8")
        assert '"message": "Request timeout: 1s"' in queue and '"status": 504' in queue
        refused = _post(info, "/v1/models/sklearn-iris:predict", V1)
        assert refused.status_code == 503
        assert refused.text.startswith("upstream connect error or disconnect/reset before headers.")
        # Logged with the authority KServe's route rewrote the Host to, on the local gateway's cluster.
        flags = [a["flags"] for a in _access(info) if "knative-local-gateway" in a["cluster"]]
        assert flags and "UF" in flags[-1].split(",")


def test_canary_stale_traffic_follows_the_route(tmp_path: Path) -> None:
    with _stack(tmp_path, "canary-stale") as info:
        assert {"sklearn-iris-predictor-00002/kserve-container", "sklearn-iris-predictor-00002/queue-proxy"} <= set(
            info["processes"])
        for _ in range(20):
            assert _post(info, "/v1/models/sklearn-iris:predict", V1).status_code == 200
        clusters = Counter(a["cluster"] for a in _access(info) if "predictor-0000" in a["cluster"])
        # canaryTrafficPercent 20 would leave 20 requests all on 00001 with probability 0.8**20 ≈ 1 %
        assert clusters == {"outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local": 20}
        isvc = _kube(info, "InferenceService", "sklearn-iris")
        assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
        route = _kube(info, "Route", "sklearn-iris-predictor")
        assert route["status"]["traffic"] == [{"revisionName": "sklearn-iris-predictor-00001", "percent": 100,
                                               "latestRevision": False}]
        # doctor on the live (served) cluster names the stale split, and nothing else
        assert _doctor(info) == {"MT719"}
