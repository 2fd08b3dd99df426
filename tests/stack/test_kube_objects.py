"""The stack's Kubernetes view: readable as a bundle, changed by each fault as a cluster would be, and the simulated
network (DNS by Services, NetworkPolicies) gives each control-plane process the dial outcome a pod would get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.stack.faults import parse_faults
from mlops_trace.stack.kube_objects import KubeInputs, build_objects
from mlops_trace.stack.network import Outcome, dial
from mlops_trace.stack.topology import CONTROLLER_POD, ENVOY_POD, SERVER_POD, Plan, Ports


def _objects(*faults: str, agent_subscribes: bool = True) -> dict[str, list[dict[str, Any]]]:
    ports = Ports(*range(40000, 40000 + len(Ports.names())))
    inputs = KubeInputs(Plan.for_faults(parse_faults(faults)), ports, Path("/state/artifacts"), "2026-01-01T00:00:00Z")
    return build_objects(inputs, agent_subscribes=agent_subscribes)


def _flat(groups: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [doc for docs in groups.values() for doc in docs]


def _find(docs: list[dict[str, Any]], kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == kind and meta.get("namespace") == namespace and meta["name"] == name:
            return doc
    return None


def test_reads_back_as_a_bundle(tmp_path: Path) -> None:
    for filename, docs in _objects().items():
        (tmp_path / "kube").mkdir(exist_ok=True)
        (tmp_path / "kube" / filename).write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    snap = load_bundle_dir(tmp_path)
    assert not snap.problems
    assert snap.seldon_namespaces() == ["financial-inference"]
    experiment = snap.get("Experiment", "financial-inference", "financial-ab-test-experiment")
    assert experiment is not None and experiment.condition_true("Ready")
    mesh = snap.get("Service", "financial-inference", "seldon-mesh")
    assert mesh is not None and mesh.status["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1"
    uids = {o.raw["metadata"]["uid"] for o in snap.objects}
    assert len(uids) == len(snap.objects)
    assert snap.objects_of("EndpointSlice", "financial-inference")


def test_healthy_dials() -> None:
    docs = _flat(_objects())
    agent = dial(docs, "financial-inference", SERVER_POD, "seldon-scheduler", 9005)
    assert agent.outcome is Outcome.OK and agent.address == "127.0.0.1:40011"
    controller = dial(docs, "seldon-system", CONTROLLER_POD, "seldon-scheduler.financial-inference", 9004)
    assert controller.outcome is Outcome.OK and controller.address == "127.0.0.1:40010"
    assert dial(docs, "financial-inference", ENVOY_POD, "seldon-scheduler", 9002).outcome is Outcome.OK


def test_split_brain_objects_and_dials() -> None:
    docs = _flat(_objects("split-brain"))
    local = _find(docs, "StatefulSet", "financial-inference", "seldon-scheduler")
    central = _find(docs, "StatefulSet", "seldon-system", "seldon-scheduler")
    assert local is not None and local["spec"]["replicas"] == 1
    assert central is not None and central["spec"]["replicas"] == 1
    server = _find(docs, "StatefulSet", "financial-inference", "mlserver")
    assert server is not None
    env = {e["name"]: e["value"] for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SELDON_SCHEDULER_HOST"] == "seldon-scheduler.seldon-system"
    agent = dial(docs, "financial-inference", SERVER_POD, env["SELDON_SCHEDULER_HOST"], 9005)
    assert agent.outcome is Outcome.OK and agent.address == "127.0.0.1:40013"


def test_alias_missing() -> None:
    docs = _flat(_objects("alias-missing", agent_subscribes=False))
    sts = _find(docs, "StatefulSet", "financial-inference", "seldon-scheduler")
    assert sts is not None and sts["spec"]["replicas"] == 0
    assert _find(docs, "Service", "financial-inference", "seldon-scheduler") is None
    assert _find(docs, "Pod", "financial-inference", "seldon-scheduler-0") is None
    runtime = _find(docs, "SeldonRuntime", "financial-inference", "seldon")
    assert runtime is not None and runtime["spec"]["overrides"] == [{"name": "seldon-scheduler", "replicas": 0}]
    agent = dial(docs, "financial-inference", SERVER_POD, "seldon-scheduler", 9005)
    assert agent.outcome is Outcome.NXDOMAIN and "no such host" in agent.error
    controller = dial(docs, "seldon-system", CONTROLLER_POD, "seldon-scheduler.financial-inference", 9004)
    assert controller.outcome is Outcome.NXDOMAIN
    pod = _find(docs, "Pod", "financial-inference", SERVER_POD)
    assert pod is not None and not next(c for c in pod["status"]["containerStatuses"] if c["name"] == "agent")["ready"]


def test_netpol_intra_blocks_same_namespace() -> None:
    docs = _flat(_objects("netpol-intra"))
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"]
    assert names == ["allow-ingress-nginx-only", "allow-dns-egress"]
    agent = dial(docs, "financial-inference", SERVER_POD, "seldon-scheduler", 9005)
    assert agent.outcome is Outcome.TIMEOUT and agent.error.endswith("i/o timeout")
    assert dial(docs, "financial-inference", ENVOY_POD, "seldon-scheduler", 9002).outcome is Outcome.TIMEOUT
    assert dial(docs, "seldon-system", CONTROLLER_POD, "seldon-scheduler.financial-inference",
                9004).outcome is Outcome.TIMEOUT


@pytest.mark.parametrize(("faults", "paths"), [
    ((), {"ml-api": "/v2/", "ml-api-experiment": "/v2/models/financial-ab-test-experiment",
          "ml-api-grpc": "/inference.GRPCInferenceService"}),
    (("ingress-prefix",), {"ml-api": "/financial-inference", "ml-api-grpc": "/inference.GRPCInferenceService"}),
    (("missing-header",), {"ml-api": "/v2/", "ml-api-grpc": "/inference.GRPCInferenceService"}),
])
def test_ingress_paths(faults: tuple[str, ...], paths: dict[str, str]) -> None:
    docs = _flat(_objects(*faults))
    found = {d["metadata"]["name"]: d["spec"]["rules"][0]["http"]["paths"][0]["path"]
             for d in docs if d["kind"] == "Ingress"}
    assert found == paths
    for doc in docs:
        if doc["kind"] == "Ingress":
            annotations = doc["metadata"].get("annotations") or {}
            assert "nginx.ingress.kubernetes.io/rewrite-target" not in annotations
