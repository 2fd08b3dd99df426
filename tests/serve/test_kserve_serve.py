"""A bundle of a KServe stack read and served: Knative's Service never mixes with the core Service (in the Snapshot,
in `bundle serve`'s lists, in discovery), and kubectl's tables carry the printer columns of KServe's, Knative's,
Istio's and the Gateway API's CRDs (each confirmed in the CRD at the version named in serve/printer_columns.py)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.serve.server import BundleApi, ServedBundle
from mlops_trace.serve.tables import table
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.snapshot import Existence

NS = "models"
NOW = datetime.datetime(2026, 8, 21, 12, 0, 0, tzinfo=datetime.UTC)
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

# Shapes as KServe 0.20+ / Knative 1.23 / net-istio write them (KSERVE-FACTS §1.3, §2.1, §2.2): a predictor with a
# canary at 10 percent, the revision it rolled out before tagged `prev`.
OBJECTS = f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {{name: sklearn-iris, namespace: {NS}, creationTimestamp: "2026-08-21T10:00:00Z"}}
spec: {{predictor: {{model: {{modelFormat: {{name: sklearn}}, storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"}}, canaryTrafficPercent: 10}}}}
status:
  url: http://sklearn-iris.{NS}.example.com
  conditions:
  - {{type: IngressReady, status: "True"}}
  - {{type: PredictorReady, status: "True"}}
  - {{type: Ready, status: "True"}}
  components:
    predictor:
      latestCreatedRevision: sklearn-iris-predictor-00002
      latestReadyRevision: sklearn-iris-predictor-00002
      traffic:
      - {{latestRevision: true, percent: 10, revisionName: sklearn-iris-predictor-00002}}
      - {{latestRevision: false, percent: 90, revisionName: sklearn-iris-predictor-00001, tag: prev}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: sklearn-iris-predictor, namespace: {NS}, creationTimestamp: "2026-08-21T10:00:01Z"}}
status:
  url: http://sklearn-iris-predictor.{NS}.example.com
  latestCreatedRevisionName: sklearn-iris-predictor-00002
  latestReadyRevisionName: sklearn-iris-predictor-00001
  conditions:
  - {{type: Ready, status: "Unknown", reason: RevisionMissing}}
---
apiVersion: v1
kind: Service
metadata: {{name: sklearn-iris-predictor, namespace: {NS}, creationTimestamp: "2026-08-21T10:00:02Z"}}
spec: {{type: ExternalName, externalName: knative-local-gateway.istio-system.svc.cluster.local}}
---
apiVersion: serving.knative.dev/v1
kind: Revision
metadata:
  name: sklearn-iris-predictor-00002
  namespace: {NS}
  labels: {{serving.knative.dev/configuration: sklearn-iris-predictor, serving.knative.dev/configurationGeneration: "2"}}
status:
  actualReplicas: 0
  desiredReplicas: 1
  conditions: [{{type: Ready, status: "False", reason: ProgressDeadlineExceeded}}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: sklearn-iris, namespace: {NS}, creationTimestamp: "2026-08-21T10:00:03Z"}}
spec:
  gateways: [knative-serving/knative-local-gateway, mesh, knative-serving/knative-ingress-gateway]
  hosts: [sklearn-iris.{NS}.svc.cluster.local, sklearn-iris.{NS}.example.com]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: knative-ingress-gateway, namespace: knative-serving}}
spec: {{selector: {{istio: ingressgateway}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: kserve-ingress-gateway, namespace: kserve, creationTimestamp: "2026-08-21T10:00:04Z"}}
spec: {{gatewayClassName: envoy}}
status:
  addresses: [{{type: IPAddress, value: 172.18.255.200}}, {{type: IPAddress, value: 172.18.255.201}}]
  conditions: [{{type: Programmed, status: "True"}}]
---
apiVersion: networking.internal.knative.dev/v1alpha1
kind: Ingress
metadata: {{name: sklearn-iris-predictor, namespace: {NS}}}
status: {{conditions: [{{type: Ready, status: "Unknown", reason: Uninitialized}}]}}
"""


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "kube").mkdir(parents=True)
    (root / "kube" / "kserve.yaml").write_text(OBJECTS, encoding="utf-8")
    # An empty list named for a qualified kind says "collected, none": under its own name, not the core kind's.
    (root / "kube" / "routes.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n", encoding="utf-8")
    (root / "kube" / "destinationrules.networking.istio.io.yaml").write_text("", encoding="utf-8")
    return root


@pytest.fixture()
def api(bundle: Path) -> Iterator[BundleApi]:
    with open_bundle(bundle) as snap:
        yield BundleApi(ServedBundle.build(snap), "127.0.0.1:1")


def _get(api: BundleApi, path: str, accept: str = "") -> dict[str, Any]:
    response = api.handle("GET", path, accept)
    assert response.status == 200, (path, response.body[:300])
    document: dict[str, Any] = json.loads(response.body)
    return document


def test_the_snapshot_keeps_knatives_service_apart_from_the_core_one(bundle: Path) -> None:
    with open_bundle(bundle) as snap:
        (core,) = snap.objects_of("Service", NS)
        (knative,) = snap.objects_of("Service.serving.knative.dev", NS)
        assert core.spec["type"] == "ExternalName" and knative.api_version == "serving.knative.dev/v1"
        assert knative.ref == "Service.serving.knative.dev/sklearn-iris-predictor"
        assert snap.get("Gateway.networking.istio.io", "knative-serving", "knative-ingress-gateway") is not None
        assert snap.get("Gateway.gateway.networking.k8s.io", "kserve", "kserve-ingress-gateway") is not None
        assert not snap.objects_of("Gateway") and not snap.objects_of("Ingress")
        (kingress,) = snap.objects_of("Ingress.networking.internal.knative.dev", NS)
        assert kingress.condition_true("Ready") is False
        assert {"Route", "DestinationRule"} <= set(snap.metadata.empty_kinds)
        assert snap.existence("Route", NS, "sklearn-iris-predictor") is Existence.ABSENT
        assert snap.has("kube:Service.serving.knative.dev") and snap.has("kube:Route")


def test_each_service_kind_is_served_at_its_own_path(api: BundleApi) -> None:
    core = _get(api, f"/api/v1/namespaces/{NS}/services")
    assert core["kind"] == "ServiceList"
    assert [item["apiVersion"] for item in core["items"]] == ["v1"]
    knative = _get(api, f"/apis/serving.knative.dev/v1/namespaces/{NS}/services")
    assert [item["apiVersion"] for item in knative["items"]] == ["serving.knative.dev/v1"]
    one = _get(api, f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/sklearn-iris-predictor")
    assert one["status"]["latestCreatedRevisionName"] == "sklearn-iris-predictor-00002"
    gateways = _get(api, "/apis/networking.istio.io/v1beta1/gateways")
    assert [g["metadata"]["name"] for g in gateways["items"]] == ["knative-ingress-gateway"]
    assert _get(api, f"/apis/serving.knative.dev/v1/namespaces/{NS}/routes")["items"] == []


def test_discovery_names_the_knative_and_istio_resources(api: BundleApi) -> None:
    knative = _get(api, "/apis/serving.knative.dev/v1")
    by_name = {r["name"]: r for r in knative["resources"]}
    assert by_name["services"]["kind"] == "Service" and by_name["services"]["shortNames"] == ["kservice", "ksvc"]
    # `kubectl get all` takes Knative's kinds the bundle holds, as their CRDs' `categories: [all, …]` say.
    assert by_name["services"]["categories"] == ["all"] and by_name["revisions"]["categories"] == ["all"]
    assert "categories" not in by_name["configurations"]  # none in the bundle: `get all` would fail on its 404
    kserve = _get(api, "/apis/serving.kserve.io/v1beta1")
    assert {r["name"]: r["shortNames"] for r in kserve["resources"]} == {"inferenceservices": ["isvc"]}
    groups = {g["name"] for g in _get(api, "/apis")["groups"]}
    assert {"serving.kserve.io", "serving.knative.dev", "networking.istio.io", "gateway.networking.k8s.io",
            "networking.internal.knative.dev"} <= groups


def _rows(document: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return [c["name"] for c in document["columnDefinitions"]], [r["cells"] for r in document["rows"]]


def test_inferenceservice_columns_as_kserves_crd_declares_them(api: BundleApi) -> None:
    names, rows = _rows(_get(api, f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices", TABLE))
    assert names == ["Name", "URL", "Ready", "Prev", "Latest", "PrevRolledoutRevision", "LatestReadyRevision", "Age"]
    assert rows[0][:7] == ["sklearn-iris", f"http://sklearn-iris.{NS}.example.com", "True", 90, 10,
                           "sklearn-iris-predictor-00001", "sklearn-iris-predictor-00002"]


def test_ksvc_revision_and_kingress_columns_have_no_age(api: BundleApi) -> None:
    names, rows = _rows(_get(api, f"/apis/serving.knative.dev/v1/namespaces/{NS}/services", TABLE))
    assert names == ["Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
    assert rows == [["sklearn-iris-predictor", f"http://sklearn-iris-predictor.{NS}.example.com",
                     "sklearn-iris-predictor-00002", "sklearn-iris-predictor-00001", "Unknown", "RevisionMissing"]]
    names, rows = _rows(_get(api, f"/apis/serving.knative.dev/v1/namespaces/{NS}/revisions", TABLE))
    assert names == ["Name", "Config Name", "Generation", "Ready", "Reason", "Actual Replicas", "Desired Replicas"]
    assert rows == [["sklearn-iris-predictor-00002", "sklearn-iris-predictor", "2", "False",
                     "ProgressDeadlineExceeded", 0, 1]]
    names, rows = _rows(_get(api, f"/apis/networking.internal.knative.dev/v1alpha1/namespaces/{NS}/ingresses", TABLE))
    assert names == ["Name", "Ready", "Reason"] and rows == [["sklearn-iris-predictor", "Unknown", "Uninitialized"]]


def test_virtualservice_and_gateway_api_columns() -> None:
    vs = {"metadata": {"name": "sklearn-iris", "creationTimestamp": "2026-08-21T11:00:00Z"},
          "spec": {"gateways": ["mesh"], "hosts": ["a.example.com", "b"]}}
    names, rows = _rows(table("VirtualService", [vs], now=NOW))
    assert names == ["Name", "Gateways", "Hosts", "Age"]
    assert rows == [["sklearn-iris", '["mesh"]', '["a.example.com","b"]', "60m"]]  # lists print as compact JSON
    gateway = {"metadata": {"name": "gw"}, "spec": {"gatewayClassName": "envoy"},
               "status": {"addresses": [{"value": "172.18.255.200"}, {"value": "172.18.255.201"}],
                          "conditions": [{"type": "Programmed", "status": "True"}]}}
    names, rows = _rows(table("Gateway.gateway.networking.k8s.io", [gateway], now=NOW))
    assert names == ["Name", "Class", "Address", "Programmed", "Age"]
    assert rows[0][:4] == ["gw", "envoy", "172.18.255.200", "True"]  # the first value the JSONPath finds
    # Istio's Gateway CRD declares no printer columns: NAME and AGE, as for any such CRD.
    names, _ = _rows(table("Gateway.networking.istio.io", [gateway], now=NOW))
    assert names == ["Name", "Age"]


def test_a_column_of_a_missing_field_is_empty() -> None:
    isvc = {"metadata": {"name": "new"}, "status": {"components": {"predictor": {"traffic": [
        {"latestRevision": True, "percent": 100, "revisionName": "new-predictor-00001"}]}}}}
    _, rows = _rows(table("InferenceService", [isvc], now=NOW))
    assert rows[0][1:7] == [None, None, None, 100, None, "new-predictor-00001"]
