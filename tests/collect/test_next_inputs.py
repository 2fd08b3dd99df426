"""What the next checks read, collected from a scriptable API server, written in the bundle format, read back by the
bundle reader and served again by `bundle serve`: logs of every container of Seldon pods (sidecars and init
containers too), the previous run of restarted containers, HorizontalPodAutoscalers, the `seldon-kafka` ConfigMap
(by name only, redacted), bounded Events newest first, and Pod container statuses kept whole. Read-only throughout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from mlops_trace.collect import objects
from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.collect.logs import is_seldon_pod, log_targets
from mlops_trace.collect.target import LiveTarget
from mlops_trace.serve.server import BundleApi, ServedBundle
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.roles import Role
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig
from tests.serve.wire import running

NS = "serving"
BASE = f"/api/v1/namespaces/{NS}/pods"
KAFKA_PASSWORD = "kafka-planted-pass-9913"
JAAS_PASSWORD = "jaas-planted-pass-4471"
PREVIOUS_BEARER = "planted-previous-bearer-2207"


def _meta(
    name: str, labels: dict[str, str] | None = None, owners: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {}}
    if owners:
        metadata["ownerReferences"] = [{"apiVersion": "x/v1", "kind": k, "name": n, "uid": n} for k, n in owners]
    return metadata


def _status(name: str, restarts: int = 0, reason: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": name, "restartCount": restarts, "ready": True, "state": {"running": {}}}
    if reason:
        status["lastState"] = {"terminated": {"reason": reason, "exitCode": 137, "finishedAt": "2026-01-02T03:04:05Z"}}
    return status


def _pods() -> list[dict[str, Any]]:
    server = {
        "metadata": _meta("mlserver-0", {"app": "mlserver"}, [("StatefulSet", "mlserver")]),
        "spec": {
            "initContainers": [{"name": "init-volume"}, {"name": "rclone", "restartPolicy": "Always"}],
            "containers": [{"name": "agent"}, {"name": "mlserver"}],
        },
        "status": {
            "phase": "Running",
            "initContainerStatuses": [_status("init-volume"), _status("rclone", 1, "Error")],
            "containerStatuses": [_status("agent", 3, "Error"), _status("mlserver", 2, "OOMKilled")],
        },
    }
    return [
        server,
        {
            "metadata": _meta(
                "seldon-pipelinegateway-6d4f-abcde", {"app.kubernetes.io/name": "seldon-pipelinegateway"}
            ),
            "spec": {"containers": [{"name": "pipelinegateway"}]},
            "status": {"phase": "Running", "containerStatuses": [_status("pipelinegateway")]},
        },
        {
            "metadata": _meta("seldon-dataflow-engine-77-xyz12", {"app.kubernetes.io/managed-by": "seldon-core"}),
            "spec": {"containers": [{"name": "dataflow-engine"}]},
        },
        {
            "metadata": _meta(
                "hodometer-5c9d-q2w3e", {"pod-template-hash": "5c9d"}, [("ReplicaSet", "hodometer-5c9d")]
            ),
            "spec": {"containers": [{"name": "hodometer"}]},
        },
        {
            "metadata": _meta("ctl-7f-abcde", {"control-plane": "v2-controller-manager"}),
            "spec": {"containers": [{"name": "manager"}, {"name": "kube-rbac-proxy"}]},
        },
        {  # not Seldon: none of its logs are read
            "metadata": _meta("web-0", {"app": "web"}, [("StatefulSet", "web")]),
            "spec": {"containers": [{"name": "web"}]},
            "status": {"containerStatuses": [_status("web", 5, "Error")]},
        },
    ]


def _events() -> list[dict[str, Any]]:
    # Out of time order, and in every timestamp form the API uses.
    return [
        {"metadata": _meta("ev-b"), "reason": "BackOff", "lastTimestamp": "2026-01-02T03:00:02Z"},
        {"metadata": _meta("ev-a"), "reason": "Pulled", "lastTimestamp": "2026-01-02T03:00:01Z"},
        {"metadata": _meta("ev-d"), "reason": "Killing", "eventTime": "2026-01-02T03:00:04.000000Z"},
        {"metadata": _meta("ev-c"), "reason": "Started", "series": {"lastObservedTime": "2026-01-02T03:00:03.5Z"}},
        {"metadata": _meta("ev-e"), "reason": "Created", "lastTimestamp": "2026-01-02T03:00:00Z"},
    ]


def _kafka_configmap() -> dict[str, Any]:
    config = {
        "bootstrap.servers": "kafka-bootstrap.kafka:9092",
        "consumer": {"sasl.password": KAFKA_PASSWORD, "session.timeout.ms": 6000},
        "producer": {
            "sasl.jaas.config": f'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" '
            f'password="{JAAS_PASSWORD}";'
        },
        "topicPrefix": "seldon",
    }
    return {"metadata": _meta("seldon-kafka"), "data": {"kafka.json": json.dumps(config)}}


def next_api() -> FakeApi:
    api = FakeApi()
    api.json("/version", {"major": "1", "minor": "31", "gitVersion": "v1.31.2"})
    api.json(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS}})
    for spec in COLLECTED_KINDS:
        for namespace in spec.list_scopes([NS], all_namespaces=False):
            api.items(spec.list_path(namespace), spec.kind, [])
    api.items(BASE, "Pod", _pods())
    api.items(
        f"/apis/apps/v1/namespaces/{NS}/statefulsets",
        "StatefulSet",
        [
            {"metadata": _meta("mlserver", owners=[("Server", "mlserver")]), "spec": {"replicas": 1}},
            {"metadata": _meta("web"), "spec": {"replicas": 1}},
        ],
    )
    api.items(
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        "Deployment",
        [{"metadata": _meta("hodometer", owners=[("SeldonRuntime", "seldon")]), "spec": {"replicas": 1}}],
    )
    hpa = {
        "metadata": _meta("mlserver"),
        "spec": {"scaleTargetRef": {"kind": "Server", "name": "mlserver"}, "minReplicas": 1, "maxReplicas": 4},
        "status": {
            "desiredReplicas": 1,
            "conditions": [{"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}],
        },
    }
    api.items(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers", "HorizontalPodAutoscaler", [hpa])
    api.items(
        f"/apis/mlops.seldon.io/v1alpha1/namespaces/{NS}/pipelines",
        "Pipeline",
        [{"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Pipeline", "metadata": _meta("p1")}],
    )
    api.items(f"/api/v1/namespaces/{NS}/configmaps", "ConfigMap", [_kafka_configmap()])
    api.pages[f"/api/v1/namespaces/{NS}/events"] = [_events()[:3], _events()[3:]]
    for pod in _pods():
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]
        for container in containers:
            api.log(f"{BASE}/{name}/log", container, f"{container} of {name}: now\n")
    server_log = f"{BASE}/mlserver-0/log"
    api.log(server_log, "mlserver", f"Triggering worker restart...\nAuthorization: Bearer {PREVIOUS_BEARER}\n", True)
    api.log(server_log, "rclone", "rclone: failed to sync/copy\n", previous=True)
    # agent restarted too, but its previous run is gone: the fake answers 400 as the API server does.
    api.log(f"{BASE}/web-0/log", "web", "not seldon\n", previous=True)
    return api


def _collect(tmp_path: Path, api: FakeApi) -> tuple[Path, dict[str, Any]]:
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        target = LiveTarget(namespaces=(NS,), kubeconfig=str(kubeconfig), request_timeout=5.0)
        root = tmp_path / "bundle"
        root.mkdir()
        collect_to_dir(target, root)
    return root, yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))


def _logs(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "logs" / NS).as_posix() for p in (root / "logs").rglob("*.log"))


EXPECTED_LOGS = [
    "ctl-7f-abcde/kube-rbac-proxy.log",
    "ctl-7f-abcde/manager.log",
    "hodometer-5c9d-q2w3e/hodometer.log",
    "mlserver-0/agent.log",
    "mlserver-0/init-volume.log",
    "mlserver-0/mlserver.log",
    "mlserver-0/mlserver.previous.log",
    "mlserver-0/rclone.log",
    "mlserver-0/rclone.previous.log",
    "seldon-dataflow-engine-77-xyz12/dataflow-engine.log",
    "seldon-pipelinegateway-6d4f-abcde/pipelinegateway.log",
]


def test_every_container_of_seldon_pods_and_previous_runs_are_collected(tmp_path: Path) -> None:
    api = next_api()
    root, meta = _collect(tmp_path, api)
    assert _logs(root) == EXPECTED_LOGS
    previous = (root / "logs" / NS / "mlserver-0" / "mlserver.previous.log").read_text(encoding="utf-8")
    assert previous.startswith("Triggering worker restart...\n")
    assert PREVIOUS_BEARER not in previous and "***REDACTED***" in previous
    report = yaml.safe_load((root / "redaction-report.yaml").read_text(encoding="utf-8"))
    assert f"logs/{NS}/mlserver-0/mlserver.previous.log" in json.dumps(report)
    log_calls = [unquote(path) for _, path in api.requests if path.split("?")[0].endswith("/log")]
    asked_previous = sorted(p.split("?")[0].split("/")[-2] + "/" + p.split("container=")[1].split("&")[0]
                            for p in log_calls if "previous=true" in p)
    assert asked_previous == ["mlserver-0/agent", "mlserver-0/mlserver", "mlserver-0/rclone"]
    assert not any("/web-0/" in p for p in log_calls)
    assert meta["previous_logs_missing"] == [
        {
            "namespace": NS,
            "pod": "mlserver-0",
            "what": "agent (previous)",
            "error": 'HTTP 400: previous terminated container "agent" in pod "mlserver-0" not found',
        }
    ]
    assert meta["log_errors"] == [] and not [n for n in meta["not_collected"] if n["requirement"].startswith("logs")]
    assert all(method == "GET" for method, _ in api.requests)


def test_new_kinds_are_collected_and_container_statuses_kept(tmp_path: Path) -> None:
    api = next_api()
    root, meta = _collect(tmp_path, api)
    assert {"HorizontalPodAutoscaler", "ConfigMap", "Event", "Pipeline", "SeldonRuntime", "SeldonConfig",
            "ServerConfig"} <= set(meta["kinds"])
    hpas = yaml.safe_load((root / "kube/horizontalpodautoscalers.yaml").read_text(encoding="utf-8"))
    assert hpas["items"][0]["apiVersion"] == "autoscaling/v2"
    assert hpas["items"][0]["status"]["conditions"][0]["reason"] == "FailedGetResourceMetric"
    pods = yaml.safe_load((root / "kube/pods.yaml").read_text(encoding="utf-8"))["items"]
    server = next(p for p in pods if p["metadata"]["name"] == "mlserver-0")
    assert server["status"]["containerStatuses"][1] == _status("mlserver", 2, "OOMKilled")
    assert server["status"]["initContainerStatuses"][1]["lastState"]["terminated"]["reason"] == "Error"
    # ConfigMaps: only the registry's names (seldon-kafka, KServe's and Knative's), each asked by name, never the
    # whole namespace.
    cm_calls = [unquote(path) for _, path in api.requests if path.split("?")[0].endswith("/configmaps")]
    names = ("seldon-kafka", "inferenceservice-config", "config-istio", "config-network", "config-domain",
             "config-defaults", "config-autoscaler")
    assert cm_calls and all(any(f"fieldSelector=metadata.name={n}&" in p for n in names) for p in cm_calls)
    assert f"/api/v1/namespaces/{NS}/configmaps?fieldSelector=metadata.name=seldon-kafka&limit=500" in cm_calls
    kafka_text = (root / "kube/configmaps.yaml").read_text(encoding="utf-8")
    assert KAFKA_PASSWORD not in kafka_text and JAAS_PASSWORD not in kafka_text
    kafka = json.loads(yaml.safe_load(kafka_text)["items"][0]["data"]["kafka.json"])
    assert kafka["bootstrap.servers"] == "kafka-bootstrap.kafka:9092" and kafka["topicPrefix"] == "seldon"
    assert kafka["consumer"]["sasl.password"] == "***REDACTED***"
    # Events: newest first.
    events = yaml.safe_load((root / "kube/events.yaml").read_text(encoding="utf-8"))["items"]
    assert [e["metadata"]["name"] for e in events] == ["ev-d", "ev-c", "ev-b", "ev-a", "ev-e"]
    assert meta["bounded"] == {"events_per_namespace": 2000, "left_out": {}}
    assert meta["kinds_by_name"] == {"ConfigMap": list(names)}
    assert len(yaml.safe_load(kafka_text)["items"]) == 1


def test_events_are_bounded_per_namespace_keeping_the_newest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bounded = tuple(dataclasses.replace(s, keep_newest=2) if s.kind == "Event" else s for s in COLLECTED_KINDS)
    monkeypatch.setattr(objects, "COLLECTED_KINDS", bounded)
    root, meta = _collect(tmp_path, next_api())
    events = yaml.safe_load((root / "kube/events.yaml").read_text(encoding="utf-8"))["items"]
    assert [e["metadata"]["name"] for e in events] == ["ev-d", "ev-c"]
    assert meta["bounded"]["left_out"] == {f"Event/{NS}": 3}
    assert "Event" in meta["kinds"]


def test_the_bundle_reader_keeps_previous_runs_apart(tmp_path: Path) -> None:
    root, _ = _collect(tmp_path, next_api())
    snap = load_bundle_dir(root)
    assert not any(log.previous or log.container.endswith(".previous") for log in snap.logs)
    assert len(snap.logs) == len(EXPECTED_LOGS) - 2
    (mlserver,) = snap.logs_of(Role.MLSERVER)
    assert mlserver.previous_run is not None and mlserver.previous_run.previous
    assert mlserver.previous_run.container == "mlserver" and mlserver.previous_run.role is Role.MLSERVER
    assert mlserver.previous_run.display == f"logs/{NS}/mlserver-0/mlserver.previous.log"
    assert next(mlserver.previous_run.lines()) == (1, "Triggering worker restart...")
    (agent,) = snap.logs_of(Role.AGENT)
    assert agent.previous_run is None
    for kind in ("HorizontalPodAutoscaler", "ConfigMap", "Event", "Pipeline"):
        assert snap.objects_of(kind, NS), kind
    assert snap.has("kube:HorizontalPodAutoscaler") and snap.has("kube:Event")


def test_a_previous_run_without_its_current_log_is_named_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "logs" / NS / "mlserver-0"
    folder.mkdir(parents=True)
    (folder / "agent.log").write_text("Subscribed to scheduler\n", encoding="utf-8")
    (folder / "mlserver.previous.log").write_text("Triggering worker restart...\n", encoding="utf-8")
    snap = load_bundle_dir(tmp_path)
    assert [log.container for log in snap.logs] == ["agent"]
    assert [p.path for p in snap.problems] == [f"logs/{NS}/mlserver-0/mlserver.previous.log"]


def test_bundle_serve_answers_previous_and_the_new_kinds(tmp_path: Path) -> None:
    root, _ = _collect(tmp_path, next_api())
    api = BundleApi(ServedBundle.build(load_bundle_dir(root)), "127.0.0.1:1")
    base = f"/api/v1/namespaces/{NS}/pods/mlserver-0/log"
    current = api.handle("GET", f"{base}?container=mlserver")
    assert current.status == 200 and current.body.startswith(b"mlserver of mlserver-0")
    previous = api.handle("GET", f"{base}?container=mlserver&previous=true&tailLines=1")
    assert previous.status == 200 and b"REDACTED" in previous.body and b"Triggering" not in previous.body
    missing = api.handle("GET", f"{base}?container=agent&previous=true")
    assert missing.status == 400
    assert json.loads(missing.body)["message"] == 'previous terminated container "agent" in pod "mlserver-0" not found'
    assert api.handle("GET", f"{base}?container=agent&previous=maybe").status == 400
    assert api.handle("GET", f"{base}?container=agent&previous=false").body.startswith(b"agent of")
    groups = json.loads(api.handle("GET", "/apis").body)
    assert "autoscaling/v2" in [v["groupVersion"] for g in groups["groups"] for v in g["versions"]]
    core = {r["name"] for r in json.loads(api.handle("GET", "/api/v1").body)["resources"]}
    assert {"configmaps", "events", "pods/log"} <= core
    autoscaling = json.loads(api.handle("GET", "/apis/autoscaling/v2").body)["resources"]
    assert [r["name"] for r in autoscaling] == ["horizontalpodautoscalers"]
    hpas = json.loads(api.handle("GET", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers").body)
    assert [h["metadata"]["name"] for h in hpas["items"]] == ["mlserver"]
    cms = api.handle("GET", f"/api/v1/namespaces/{NS}/configmaps?fieldSelector=metadata.name%3Dseldon-kafka")
    assert [c["metadata"]["name"] for c in json.loads(cms.body)["items"]] == ["seldon-kafka"]
    events = json.loads(api.handle("GET", f"/api/v1/namespaces/{NS}/events").body)["items"]
    assert len(events) == 5


def test_collecting_a_served_bundle_round_trips_previous_logs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first, _ = _collect(tmp_path / "a", next_api())
    with running(first) as served:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{served.port}")
        target = LiveTarget(namespaces=(NS,), kubeconfig=str(kubeconfig), request_timeout=5.0)
        second = tmp_path / "again"
        second.mkdir()
        collect_to_dir(target, second)
        requests = list(served.requests.entries)
    assert _logs(second) == _logs(first)
    for name in ("mlserver.previous.log", "rclone.previous.log"):
        assert (second / "logs" / NS / "mlserver-0" / name).read_text(encoding="utf-8") == (
            first / "logs" / NS / "mlserver-0" / name
        ).read_text(encoding="utf-8")
    meta = yaml.safe_load((second / "bundle.yaml").read_text(encoding="utf-8"))
    assert {"HorizontalPodAutoscaler", "ConfigMap", "Event"} <= set(meta["kinds"])
    assert [m["what"] for m in meta["previous_logs_missing"]] == ["agent (previous)"]
    assert requests and all(method == "GET" for method, _ in requests)
    assert any("previous=true" in path for _, path in requests)


def test_which_pods_are_seldon_pods() -> None:
    workloads = [
        {"kind": "StatefulSet", "metadata": _meta("mlserver", owners=[("Server", "mlserver")])},
        {"kind": "Deployment", "metadata": _meta("hodometer", owners=[("SeldonRuntime", "seldon")])},
    ]
    owners = {
        ("StatefulSet", NS, "mlserver"): frozenset({"Server"}),
        ("Deployment", NS, "hodometer"): frozenset({"SeldonRuntime"}),
    }
    by_name = {p["metadata"]["name"]: p for p in _pods()}
    assert {name for name, pod in by_name.items() if is_seldon_pod(pod, owners)} == set(by_name) - {"web-0"}
    # The hodometer pod is Seldon's only through its Deployment's owner (its ReplicaSet is not collected).
    assert not is_seldon_pod(by_name["hodometer-5c9d-q2w3e"], {})
    targets = log_targets(_pods(), None, workloads)
    assert [(t.pod, t.container) for t in targets if t.previous] == [
        ("mlserver-0", "agent"),
        ("mlserver-0", "mlserver"),
        ("mlserver-0", "rclone"),
    ]
    # Each previous run comes right after its current log (it is fetched only once that one is written).
    for index, target in enumerate(targets):
        if target.previous:
            assert targets[index - 1] == dataclasses.replace(target, previous=False)
