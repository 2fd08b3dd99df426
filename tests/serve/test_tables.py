"""`bundle serve` answers kubectl's Table requests with a cluster's columns, puts workloads in `get all`, and answers
`kubectl auth can-i`: pure over `BundleApi`, then through a served process with the `kubernetes` client, raw HTTP and
kubectl when it is installed."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.serve.server import BundleApi, ServedBundle
from mlops_trace.serve.tables import human_duration, json_path_value, table
from mlops_trace.snapshot.bundle import open_bundle
from tests.serve_process import ServedProcess, bundle_server

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
NOW = datetime.datetime(2024, 5, 3, 12, 0, 0, tzinfo=datetime.UTC)

OBJECTS = """apiVersion: v1
kind: Pod
metadata: {name: mlserver-0, namespace: fraud-serving, creationTimestamp: "2024-05-01T10:00:00Z", labels: {app: mlserver}}
spec:
  nodeName: node-a
  containers: [{name: mlserver}, {name: agent}, {name: rclone}]
status:
  phase: Running
  podIP: 10.0.0.7
  podIPs: [{ip: 10.0.0.7}]
  conditions: [{type: Ready, status: "False"}]
  containerStatuses:
  - {name: mlserver, image: i, imageID: i, ready: true, restartCount: 2, state: {running: {}},
     lastState: {terminated: {exitCode: 1, finishedAt: "2024-05-03T11:55:00Z"}}}
  - {name: agent, image: i, imageID: i, ready: false, restartCount: 3, state: {waiting: {reason: CrashLoopBackOff}}}
  - {name: rclone, image: i, imageID: i, ready: true, restartCount: 0, state: {running: {}}}
---
apiVersion: v1
kind: Pod
metadata: {name: init-stuck, namespace: fraud-serving, creationTimestamp: "2024-05-03T11:59:15Z"}
spec: {initContainers: [{name: a}, {name: b}], containers: [{name: main}]}
status:
  phase: Pending
  initContainerStatuses:
  - {name: a, image: i, imageID: i, ready: true, restartCount: 0, state: {terminated: {exitCode: 0}}}
  - {name: b, image: i, imageID: i, ready: false, restartCount: 0, state: {waiting: {reason: PodInitializing}}}
---
apiVersion: v1
kind: Service
metadata: {name: seldon-mesh, namespace: fraud-serving, creationTimestamp: "2024-04-20T12:00:00Z"}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  selector: {app: seldon-envoy}
  ports: [{port: 80, nodePort: 30080, protocol: TCP}, {port: 9003, protocol: TCP}]
status: {loadBalancer: {}}
---
apiVersion: v1
kind: Service
metadata: {name: seldon-scheduler, namespace: fraud-serving, creationTimestamp: "2024-04-20T12:00:00Z"}
spec: {type: ClusterIP, clusterIP: 10.96.0.11, clusterIPs: [10.96.0.11], ports: [{port: 9004, protocol: TCP}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: seldon-envoy, namespace: fraud-serving, creationTimestamp: "2024-05-03T09:30:00Z"}
spec:
  replicas: 2
  selector: {matchLabels: {app: seldon-envoy}}
  template: {spec: {containers: [{name: envoy, image: "envoyproxy/envoy:v1.30"}]}}
status: {replicas: 2, readyReplicas: 1, updatedReplicas: 2, availableReplicas: 1}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mlserver, namespace: fraud-serving, creationTimestamp: "2024-05-03T11:58:30Z"}
spec: {replicas: 1, template: {spec: {containers: [{name: mlserver, image: "seldonio/mlserver:1.6"}]}}}
status: {replicas: 1}
---
apiVersion: mlops.seldon.io/v1alpha1
kind: Model
metadata: {name: txn-model, namespace: fraud-serving, creationTimestamp: "2024-05-03T11:00:00Z"}
spec: {storageUri: "gs://models/txn", replicas: 2}
status:
  availableReplicas: 1
  conditions: [{type: ModelReady, status: "False"}, {type: Ready, status: "False"}]
---
apiVersion: mlops.seldon.io/v1alpha1
kind: Pipeline
metadata: {name: fraud, namespace: fraud-serving, creationTimestamp: "2024-05-03T11:00:00Z"}
status:
  conditions: [{type: Ready, status: "False", message: "models not ready"}, {type: ModelsReady, status: "False"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: seldon-kafka, namespace: fraud-serving, creationTimestamp: "2024-05-02T12:00:00Z"}
"""


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "kube").mkdir(parents=True)
    (root / "kube" / "objects.yaml").write_text(OBJECTS, encoding="utf-8")
    return root


@pytest.fixture()
def api(bundle: Path) -> Iterator[BundleApi]:
    with open_bundle(bundle) as snap:
        yield BundleApi(ServedBundle.build(snap), "127.0.0.1:1")


def _items(api: BundleApi, kind: str) -> list[dict[str, Any]]:
    return api.served.objects_by_kind[kind]


def _rows(api: BundleApi, kind: str) -> dict[str, dict[str, Any]]:
    """Each row's cells by the column names, as kubectl prints them (upper case), for the objects of `kind`."""
    answer = table(kind, _items(api, kind), now=NOW)
    names = [c["name"].upper() for c in answer["columnDefinitions"]]
    return {row["cells"][0]: dict(zip(names, row["cells"], strict=True)) for row in answer["rows"]}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (183, "3m3s"), (600, "10m"),
     (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60 * 20, "3h20m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
     (48 * 3600, "2d"), (52 * 3600, "2d4h"), (8 * 86400, "8d"), (729 * 86400, "729d"), (730 * 86400, "2y"),
     (742 * 86400, "2y12d"), (9 * 365 * 86400, "9y")],
)
def test_age_is_written_like_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_pod_columns_and_cells(api: BundleApi) -> None:
    answer = table("Pod", _items(api, "Pod"), now=NOW)
    assert [(c["name"], c["priority"]) for c in answer["columnDefinitions"]] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
        ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    rows = _rows(api, "Pod")
    assert rows["mlserver-0"] == {"NAME": "mlserver-0", "READY": "2/3", "STATUS": "CrashLoopBackOff",
                                  "RESTARTS": "5 (5m ago)", "AGE": "2d2h", "IP": "10.0.0.7", "NODE": "node-a",
                                  "NOMINATED NODE": "<none>", "READINESS GATES": "<none>"}
    assert rows["init-stuck"]["STATUS"] == "Init:1/2" and rows["init-stuck"]["READY"] == "0/1"
    assert rows["init-stuck"]["AGE"] == "45s" and rows["init-stuck"]["RESTARTS"] == "0"


def test_service_deployment_statefulset_cells(api: BundleApi) -> None:
    services = _rows(api, "Service")
    assert services["seldon-mesh"] == {"NAME": "seldon-mesh", "TYPE": "LoadBalancer", "CLUSTER-IP": "10.96.0.10",
                                       "EXTERNAL-IP": "<pending>", "PORT(S)": "80:30080/TCP,9003/TCP", "AGE": "13d",
                                       "SELECTOR": "app=seldon-envoy"}
    assert services["seldon-scheduler"]["EXTERNAL-IP"] == "<none>"
    lb = dict(_items(api, "Service")[0], status={"loadBalancer": {"ingress": [{"ip": "172.18.255.1"},
                                                                              {"hostname": "lb.example"}]}})
    assert table("Service", [lb], now=NOW)["rows"][0]["cells"][3] == "172.18.255.1,lb.example"
    deployment = _rows(api, "Deployment")["seldon-envoy"]
    assert [deployment[c] for c in ("READY", "UP-TO-DATE", "AVAILABLE", "AGE")] == ["1/2", 2, 1, "150m"]
    assert _rows(api, "StatefulSet")["mlserver"] == {"NAME": "mlserver", "READY": "0/1", "AGE": "90s",
                                                     "CONTAINERS": "mlserver", "IMAGES": "seldonio/mlserver:1.6"}


def test_seldon_printer_columns_and_the_rest(api: BundleApi) -> None:
    assert _rows(api, "Model")["txn-model"] == {"NAME": "txn-model", "READY": "False", "DESIRED REPLICAS": 2,
                                                "AVAILABLE REPLICAS": 1, "MODELGW READY": None, "AGE": "60m"}
    pipeline = _rows(api, "Pipeline")["fraud"]
    assert pipeline["PIPELINE READY"] == "False" and pipeline["MESSAGE"] == "models not ready"
    assert pipeline["DATAFLOW READY"] is None
    assert _rows(api, "ConfigMap") == {"seldon-kafka": {"NAME": "seldon-kafka", "AGE": "24h"}}
    assert json_path_value({"a": {"b": [{"t": "x", "v": 1}]}}, ".a.b[?(@.t=='x')].v") == 1


def test_table_requests_and_include_object(api: BundleApi) -> None:
    path = "/api/v1/namespaces/fraud-serving/pods"
    answer = json.loads(api.handle("GET", path, TABLE).body)
    assert answer["kind"] == "Table" and answer["apiVersion"] == "meta.k8s.io/v1"
    obj = answer["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["metadata"]["namespace"] == "fraud-serving"
    assert "spec" not in obj
    full = json.loads(api.handle("GET", path + "?includeObject=Object", TABLE).body)
    assert full["rows"][0]["object"]["spec"]["nodeName"] == "node-a"
    assert "object" not in json.loads(api.handle("GET", path + "?includeObject=None", TABLE).body)["rows"][0]
    assert api.handle("GET", path + "?includeObject=Everything", TABLE).status == 400
    one = json.loads(api.handle("GET", path + "/mlserver-0", TABLE).body)
    assert one["kind"] == "Table" and [r["cells"][0] for r in one["rows"]] == ["mlserver-0"]
    assert json.loads(api.handle("GET", path, "application/json").body)["kind"] == "PodList"
    assert json.loads(api.handle("GET", path, "application/json, " + TABLE).body)["kind"] == "PodList"


def test_discovery_categories_and_authorization_group(api: BundleApi) -> None:
    core = json.loads(api.handle("GET", "/api/v1").body)["resources"]
    apps = json.loads(api.handle("GET", "/apis/apps/v1").body)["resources"]
    in_all = {r["name"] for r in core + apps if "all" in r.get("categories", [])}
    # DaemonSets and ReplicaSets are served but this bundle holds none: `get all` would fail on their 404.
    assert in_all == {"pods", "services", "deployments", "statefulsets"}
    groups = {g["name"] for g in json.loads(api.handle("GET", "/apis").body)["groups"]}
    assert "authorization.k8s.io" in groups
    authz = json.loads(api.handle("GET", "/apis/authorization.k8s.io/v1").body)["resources"]
    assert authz == [{"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
                      "namespaced": False, "kind": "SelfSubjectAccessReview", "verbs": ["create"]}]


def _review(verb: str, resource: str = "pods", group: str = "") -> bytes:
    return json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                       "spec": {"resourceAttributes": {"namespace": "fraud-serving", "verb": verb,
                                                       "group": group, "resource": resource}}}).encode()


@pytest.mark.parametrize("verb", ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
                                  "escalate", "*"])
def test_access_reviews_allow_only_reading(api: BundleApi, verb: str) -> None:
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    answer = api.handle("POST", path, "application/json", _review(verb))
    assert answer.status == 201
    status = json.loads(answer.body)["status"]
    assert status["allowed"] is (verb in ("get", "list", "watch"))
    if not status["allowed"]:
        assert "read-only" in status["reason"]


def test_access_reviews_refuse_secrets_and_bad_bodies(api: BundleApi) -> None:
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert json.loads(api.handle("POST", path, "", _review("get", "secrets")).body)["status"]["allowed"] is False
    assert api.handle("POST", path, "", b"{not json").status == 400
    assert api.handle("POST", path, "", b'{"kind": "Pod"}').status == 400
    assert api.handle("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "", _review("get")).status == 405
    assert api.handle("PUT", path, "", _review("get")).status == 405


# --- through a served process ------------------------------------------------------------------------------------


@pytest.fixture()
def served(bundle: Path, tmp_path: Path) -> Iterator[ServedProcess]:
    with bundle_server(bundle, tmp_path, "--request-log", str(tmp_path / "requests.log")) as server:
        yield server


def test_kubernetes_client_reads_tables_and_asks_can_i(served: ServedProcess) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(served.kubeconfig))
    core = client.CoreV1Api(api_client)
    raw = core.list_namespaced_pod("fraud-serving", _preload_content=False, _headers={"Accept": TABLE})
    answer = json.loads(raw.data)
    assert answer["kind"] == "Table"
    assert [c["name"] for c in answer["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert {r["cells"][0]: r["cells"][2] for r in answer["rows"]} == {"mlserver-0": "CrashLoopBackOff",
                                                                       "init-stuck": "Init:1/2"}
    authz = client.AuthorizationV1Api(api_client)
    for verb, allowed in (("list", True), ("delete", False)):
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace="fraud-serving", verb=verb, resource="pods")))
        assert authz.create_self_subject_access_review(review).status.allowed is allowed
    # Other writes stay refused, and the kept-alive connection still serves reads after a POST with a body.
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_config_map("fraud-serving", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    assert refused.value.status == 405
    assert {p.metadata.name for p in core.list_namespaced_pod("fraud-serving").items} == {"mlserver-0", "init-stuck"}


def test_raw_http_access_review_keeps_the_connection(served: ServedProcess) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.port}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        data=_review("watch"), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201 and json.loads(response.read())["status"]["allowed"] is True


def _kubectl(served: ServedProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(served.kubeconfig), *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_prints_a_clusters_columns(served: ServedProcess) -> None:
    pods = _kubectl(served, "get", "pods", "-n", "fraud-serving", "-o", "wide")
    assert pods.returncode == 0, pods.stderr
    header = pods.stdout.splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "IP" in header and "NODE" in header
    assert "CrashLoopBackOff" in pods.stdout and "2/3" in pods.stdout and "10.0.0.7" in pods.stdout
    svc = _kubectl(served, "get", "svc", "-n", "fraud-serving")
    assert svc.stdout.splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert "<pending>" in svc.stdout and "80:30080/TCP,9003/TCP" in svc.stdout
    models = _kubectl(served, "get", "mlm", "-n", "fraud-serving")
    assert models.returncode == 0, models.stderr
    assert models.stdout.splitlines()[0].split()[:4] == ["NAME", "READY", "DESIRED", "REPLICAS"]
    every = _kubectl(served, "get", "all", "-n", "fraud-serving")
    assert every.returncode == 0, every.stderr
    for name in ("pod/mlserver-0", "service/seldon-mesh", "deployment.apps/seldon-envoy", "statefulset.apps/mlserver"):
        assert name in every.stdout
    assert "configmap" not in every.stdout and "model" not in every.stdout.replace("txn-model", "")
    yes = _kubectl(served, "auth", "can-i", "list", "pods", "-n", "fraud-serving")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    no = _kubectl(served, "auth", "can-i", "delete", "deployments", "-n", "fraud-serving")
    assert no.returncode == 1 and no.stdout.startswith("no"), (no.stdout, no.stderr)
