"""The KServe stack's plan, Envoy rendering and Kubernetes view without starting anything: what each fault changes,
the names and shapes Istio, Knative and KServe use, and the CLI's `--profile` handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlops_trace.cli import app
from mlops_trace.errors import UsageError
from mlops_trace.kinds import kind_key
from mlops_trace.stack.kserve import gateway
from mlops_trace.stack.kserve.kube import KubeInputs, build_objects
from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.paths import default_state_dir as kserve_default
from mlops_trace.stack.kserve.state import InitResult
from mlops_trace.stack.kserve.topology import (
    ISVC_HOST,
    MISMATCHED_HOST,
    KFault,
    KPlan,
    KPorts,
    parse_kfaults,
)
from mlops_trace.stack.paths import default_state_dir as seldon_default

PORTS = KPorts(*range(20001, 20001 + len(KPorts.names())))
OK = (InitResult("sklearn-iris-predictor-00001", 0, "Model downloaded in 0.01 seconds.", "t0", "t1"),)
FAILED = (InitResult("sklearn-iris-predictor-00001", 1, "Storage initialization failed: Local path file:///b/x "
                     "does not exist.", "t0", "t1"),)


def _plan(*faults: str) -> KPlan:
    return KPlan(parse_kfaults(faults))


def _objects(plan: KPlan, inits: tuple[InitResult, ...] = OK) -> list[dict[str, Any]]:
    inputs = KubeInputs(plan=plan, ports=PORTS, now="2026-01-01T00:00:00Z", storage_uri="file:///b/sklearn-iris",
                        inits=inits)
    return [doc for docs in build_objects(inputs).values() for doc in docs]


def _get(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _vhosts(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in config["virtual_hosts"]}


def test_fault_parsing() -> None:
    assert parse_kfaults(["canary-stale,host-mismatch", "host-mismatch"]) == (KFault.HOST_MISMATCH,
                                                                             KFault.CANARY_STALE)
    with pytest.raises(UsageError, match="unknown kserve fault 'split-brain'"):
        parse_kfaults(["split-brain"])
    with pytest.raises(UsageError, match="cannot be combined"):
        parse_kfaults(["storage-init-fail", "canary-stale"])


def test_state_directories_never_collide() -> None:
    assert kserve_default() != seldon_default()
    assert KServePaths.resolve(None).root == kserve_default().resolve()


def test_gateway_rendering_healthy() -> None:
    external, internal = gateway.route_configs(_plan())
    assert (external["name"], internal["name"]) == ("http.8080", "http.8081")
    assert external["ignore_port_in_host_matching"] is True
    top = _vhosts(external)[f"{ISVC_HOST}:80"]
    assert top["domains"] == [ISVC_HOST]
    route = top["routes"][0]
    assert route["match"]["headers"][0]["string_match"]["safe_regex"]["regex"] == (
        r"^sklearn-iris\.kserve-test\.example\.com(?::\d{1,5})?$")
    assert route["route"]["cluster"] == "outbound|80||knative-local-gateway.istio-system.svc.cluster.local"
    assert route["route"]["host_rewrite_literal"] == "sklearn-iris-transformer.kserve-test.svc.cluster.local"
    assert route["route"]["retry_policy"]["num_retries"] == 2
    assert route["metadata"]["filter_metadata"]["istio"]["config"] == (
        "/apis/networking.istio.io/v1/namespaces/kserve-test/virtual-service/sklearn-iris")
    assert "sklearn-iris-predictor.kserve-test:8081" in _vhosts(internal)
    listeners = gateway.bootstrap(_plan(), PORTS, Path("/tmp/a.log"))["static_resources"]["listeners"]
    assert [x["name"] for x in listeners] == ["0.0.0.0_8080", "0.0.0.0_8081"]
    hcm = listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["server_name"] == "istio-envoy"
    assert "%UPSTREAM_CLUSTER_RAW%" in hcm["access_log"][0]["typed_config"]["log_format"]["text_format_source"][
        "inline_string"]


def test_gateway_rendering_per_fault() -> None:
    mismatch, _ = gateway.route_configs(_plan("host-mismatch"))
    assert f"{MISMATCHED_HOST}:80" in _vhosts(mismatch) and f"{ISVC_HOST}:80" not in _vhosts(mismatch)
    no_model, _ = gateway.route_configs(_plan("storage-init-fail"))
    assert not [v for v in _vhosts(no_model) if v.startswith(("sklearn-iris.", "sklearn-iris-predictor."))]
    listeners = gateway.bootstrap(_plan("gateway-missing"), PORTS, Path("/tmp/a.log"))["static_resources"]["listeners"]
    assert [x["name"] for x in listeners] == ["0.0.0.0_8080"]
    canary, _ = gateway.route_configs(_plan("canary-stale"))
    route = _vhosts(canary)["sklearn-iris-predictor.kserve-test.example.com:80"]["routes"][0]["route"]
    assert route["cluster"] == "outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local"


def test_kube_view_healthy() -> None:
    objects = _objects(_plan())
    keys = {kind_key(o["kind"], o["apiVersion"]) for o in objects}
    assert {"InferenceService", "Service.serving.knative.dev", "Route", "Revision", "Configuration", "VirtualService",
            "Gateway.networking.istio.io", "ConfigMap", "Pod", "Service", "Ingress.networking.internal.knative.dev"
            } <= keys
    isvc = _get(objects, "InferenceService", "sklearn-iris")
    assert isvc["status"]["url"] == f"http://{ISVC_HOST}"
    assert {c["type"]: c["status"] for c in isvc["status"]["conditions"]}["Ready"] == "True"
    pods = [o for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == "kserve-test"]
    predictor = next(p for p in pods if p["metadata"]["labels"]["component"] == "predictor")
    assert [c["name"] for c in predictor["spec"]["initContainers"]] == ["storage-initializer"]
    assert [c["name"] for c in predictor["spec"]["containers"]] == ["kserve-container", "queue-proxy"]
    assert predictor["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == "sklearn-iris"
    gateway_pod = next(o for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == "istio-system")
    assert [c["name"] for c in gateway_pod["spec"]["containers"]] == ["istio-proxy"]
    names = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o["kind"] == "ConfigMap"}
    assert {("kserve", "inferenceservice-config"), ("knative-serving", "config-domain"),
            ("knative-serving", "config-istio"), ("knative-serving", "config-network"),
            ("knative-serving", "config-autoscaler")} <= names


def test_kube_view_per_fault() -> None:
    failed = _objects(_plan("storage-init-fail"), FAILED)
    isvc = _get(failed, "InferenceService", "sklearn-iris")
    assert {c["type"]: c["status"] for c in isvc["status"]["conditions"]}["Ready"] == "False"
    assert isvc["status"]["modelStatus"]["lastFailureInfo"]["reason"] == "ModelLoadFailed"
    assert not [o for o in failed if o["kind"] == "VirtualService" and o["metadata"]["name"] == "sklearn-iris"]
    pod = next(o for o in failed if o["kind"] == "Pod" and "predictor" in o["metadata"]["name"])
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    canary = _objects(_plan("canary-stale"))
    route = _get(canary, "Route", "sklearn-iris-predictor")
    assert route["status"]["traffic"][0]["percent"] == 100
    assert route["metadata"]["generation"] > route["status"]["observedGeneration"]
    assert _get(canary, "InferenceService", "sklearn-iris")["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert not [o for o in _objects(_plan("gateway-missing")) if o["kind"] == "Gateway"
                and o["metadata"]["name"] == "knative-local-gateway"]
    stale = _get(_objects(_plan("transformer-unreachable")), "InferenceService", "sklearn-iris")
    assert "sklearn-iris-predictor-default.kserve-test" in stale["spec"]["transformer"]["containers"][0]["args"]
    timeout = _get(_objects(_plan("revision-timeout")), "Revision", "sklearn-iris-predictor-00001")
    assert timeout["spec"]["timeoutSeconds"] == 1
    pod = next(o for o in _objects(_plan("revision-timeout")) if o["kind"] == "Pod"
               and o["metadata"]["name"].startswith("sklearn-iris-predictor-00001"))
    queue = next(c for c in pod["spec"]["containers"] if c["name"] == "queue-proxy")
    assert {"name": "REVISION_TIMEOUT_SECONDS", "value": "1"} in queue["env"]


def test_cli_profile(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["stack", "faults", "--profile", "kserve"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == len(KFault)
    bad = runner.invoke(app, ["stack", "status", "--profile", "openshift"])
    assert bad.exit_code == 2 and "--profile must be seldon or kserve" in bad.output
    unknown = runner.invoke(app, ["stack", "up", "--profile", "kserve", "--fault", "split-brain", "--state-dir",
                                  str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown kserve fault" in unknown.output
    status = runner.invoke(app, ["stack", "status", "--profile", "kserve", "--state-dir", str(tmp_path), "-o", "json"])
    assert status.exit_code == 0 and json.loads(status.output)["running"] is False
    logs = runner.invoke(app, ["stack", "logs", "predictor", "--profile", "kserve", "--state-dir", str(tmp_path)])
    assert logs.exit_code == 2 and "stack up --profile kserve" in logs.output
    down = runner.invoke(app, ["stack", "down", "--profile", "kserve", "--state-dir", str(tmp_path)])
    assert down.exit_code == 0 and "not running" in down.output
