"""KServe reasoning shared by the MT7xx checks (mlops_trace/analysis/kserve.py): modes, names, hosts, answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_trace.analysis.kserve import (
    Answer,
    Mode,
    bare_host,
    deployment_mode,
    ingress_config,
    isvc_for_request,
    isvc_of_pod,
    mode_of,
    owner_isvc,
    request_model,
    revision_timeout_words,
    storage_uri,
    who_answered,
)
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot


def _obj(kind: str, name: str, namespace: str | None = "ml", **raw: Any) -> KubeObject:
    api = {"InferenceService": "serving.kserve.io/v1beta1", "Revision": "serving.knative.dev/v1"}.get(kind, "v1")
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, **raw}
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        body["metadata"] = {"name": name, "namespace": namespace, **metadata}
    return KubeObject(kind, namespace, name, body, f"kube/test.yaml#{name}")


def _snap(*objects: KubeObject, requests: tuple[RequestRecord, ...] = ()) -> Snapshot:
    snap = Snapshot(source="test")
    snap.add_objects(objects)
    snap.requests.extend(requests)
    return snap


def _config(ingress: dict[str, Any], default_mode: str = "Serverless") -> KubeObject:
    data = {"ingress": json.dumps(ingress), "deploy": json.dumps({"defaultDeploymentMode": default_mode})}
    return _obj("ConfigMap", "inferenceservice-config", "kserve", data=data)


def _record(status: int | None, body: str = "", host: str | None = "iris.ml.example.com",
            path: str = "/v1/models/iris:predict", flags: tuple[str, ...] = (), **headers: str) -> RequestRecord:
    return RequestRecord(
        display="requests/r.json#0", method="POST", path=path, authority=host, headers={}, protocol="rest",
        status=status, response_headers={k.replace("_", "-"): v for k, v in headers.items()}, body=body,
        envoy_flags=flags,
    )


@pytest.mark.parametrize(
    ("value", "mode"),
    [("Serverless", Mode.KNATIVE), ("knative", Mode.KNATIVE), ("RawDeployment", Mode.STANDARD),
     ("Standard", Mode.STANDARD), ("ModelMesh", Mode.MODELMESH), ("raw", None), (None, None), (3, None)],
)
def test_modes_old_and_new_spellings(value: Any, mode: Mode | None) -> None:
    assert mode_of(value) is mode


def test_deployment_mode_status_then_annotation_then_configmap() -> None:
    config = _config({"ingressGateway": "knative-serving/knative-ingress-gateway"}, default_mode="RawDeployment")
    plain = _obj("InferenceService", "a")
    annotated = _obj("InferenceService", "b", metadata={"annotations": {"serving.kserve.io/deploymentMode": "Serverless"}})
    both = _obj("InferenceService", "c", metadata={"annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
                status={"deploymentMode": "Standard"})
    snap = _snap(config, plain, annotated, both)
    where = "kube/test.yaml#inferenceservice-config ConfigMap/inferenceservice-config .data.deploy"
    assert deployment_mode(snap, plain) == (Mode.STANDARD, where)
    annotated_mode = deployment_mode(snap, annotated)
    assert annotated_mode is not None and annotated_mode[0] is Mode.KNATIVE and "annotations" in annotated_mode[1]
    both_mode = deployment_mode(snap, both)
    assert both_mode is not None and both_mode[0] is Mode.STANDARD and both_mode[1].endswith(".status.deploymentMode")
    assert deployment_mode(_snap(plain), plain) is None


def test_ingress_config_reads_the_json_section_and_its_flags() -> None:
    config = ingress_config(_snap(_config({"ingressGateway": "knative-serving/gw", "disableIngressCreation": True,
                                           "enableGatewayApi": "false"})))
    assert config is not None
    assert config.text("ingressGateway") == "knative-serving/gw"
    assert config.flag("disableIngressCreation") and not config.flag("enableGatewayApi")
    assert config.text("localGateway") == ""
    broken = _obj("ConfigMap", "inferenceservice-config", "kserve", data={"ingress": "{not json"})
    assert ingress_config(_snap(broken)) is None


@pytest.mark.parametrize(
    ("pod", "labels", "owner"),
    [
        ("iris-predictor-00001-deployment-7c8d9b6f4d-x2x7q", {}, ("iris", "predictor")),
        ("iris-predictor-default-00003-deployment-6b9f8d7c5-kq2vx", {}, ("iris", "predictor")),
        ("churn-predictor-predictor-5f7c9d8b6-m4t2z", {}, ("churn-predictor", "predictor")),
        ("reviews-transformer-00002-deployment-5b4c3d2e1-k8j7h", {}, ("reviews", "transformer")),
        ("anything", {"serving.kserve.io/inferenceservice": "x", "component": "explainer"}, ("x", "explainer")),
        ("seldon-scheduler-0", {}, None),
        ("iris-predictor", {}, None),
    ],
)
def test_isvc_of_pod_from_labels_or_knative_and_standard_names(pod: str, labels: dict[str, str],
                                                               owner: tuple[str, str] | None) -> None:
    assert isvc_of_pod(pod, labels) == owner


def test_owner_of_knative_objects_needs_the_label_or_an_existing_isvc() -> None:
    isvc = _obj("InferenceService", "fraud")
    labelled = _obj("Revision", "other-predictor-00001",
                    metadata={"labels": {"serving.kserve.io/inferenceservice": "other"}})
    named = _obj("Revision", "fraud-transformer-00002")
    stranger = _obj("Revision", "hello-00001")
    snap = _snap(isvc, labelled, named, stranger)
    assert owner_isvc(snap, labelled) == ("other", "predictor")
    assert owner_isvc(snap, named) == ("fraud", "transformer")
    assert owner_isvc(snap, stranger) is None


@pytest.mark.parametrize(
    ("record", "answer"),
    [
        (_record(404, server="istio-envoy"), Answer.ENVOY_NO_ROUTE),
        (_record(404, flags=("NR",)), Answer.ENVOY_NO_ROUTE),
        (_record(404, '{"error":"Model with name x does not exist."}', server="istio-envoy",
                 x_envoy_upstream_service_time="3"), Answer.MODEL_SERVER),
        (_record(404, "<pre>Cannot POST /v1/models/iris:predict</pre>", x_powered_by="Express"), Answer.OTHER_APP),
        (_record(503, "no healthy upstream", server="istio-envoy"), Answer.ENVOY_NO_UPSTREAM),
        (_record(503, flags=("NC",)), Answer.ENVOY_NO_UPSTREAM),
        (_record(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
         Answer.ENVOY_CONNECT),
        (_record(504, "request timeout"), Answer.QUEUE_PROXY_TIMEOUT),
        (_record(504, "activator request timeout"), Answer.ACTIVATOR_TIMEOUT),
        (_record(504, "upstream request timeout", server="istio-envoy"), Answer.ENVOY_TIMEOUT),
        (_record(200, '{"predictions":[1]}', server="istio-envoy"), Answer.MODEL_SERVER),
        (_record(None), Answer.OTHER),
    ],
)
def test_who_answered(record: RequestRecord, answer: Answer) -> None:
    assert who_answered(record) is answer


def test_request_model_and_host_forms() -> None:
    assert request_model("/v1/models/sklearn-iris:predict") == "sklearn-iris"
    assert request_model("/v2/models/iris/versions/1/infer") == "iris"
    assert request_model("/healthz") is None
    assert bare_host("Iris.ML.example.com:8080") == "iris.ml.example.com"
    assert bare_host("[::1]:80") == "[::1]"
    assert bare_host(None) == ""


def test_isvc_for_request_by_host_then_by_model_name() -> None:
    iris = _obj("InferenceService", "iris", status={"url": "http://iris.ml.example.com",
                                                    "address": {"url": "http://iris.ml.svc.cluster.local"}})
    wine = _obj("InferenceService", "wine", status={"url": "http://wine.ml.example.com"})
    snap = _snap(iris, wine)
    assert isvc_for_request(snap, _record(200, host="iris.ml.svc.cluster.local:80")) is iris
    assert isvc_for_request(snap, _record(404, host="10.0.0.1", path="/v1/models/wine:predict")) is wine
    assert isvc_for_request(snap, _record(404, host="10.0.0.1", path="/v1/models/nope:predict")) is None


def test_storage_uri_from_model_or_legacy_framework_key() -> None:
    modern = _obj("InferenceService", "a", spec={"predictor": {"model": {"storageUri": "s3://b/p"}}})
    legacy = _obj("InferenceService", "b", spec={"predictor": {"sklearn": {"storageUri": "gs://b/p"}}})
    assert storage_uri(modern) == ("s3://b/p", "kube/test.yaml#a InferenceService/a .spec.predictor.model.storageUri")
    found = storage_uri(legacy)
    assert found is not None and found[0] == "gs://b/p"
    assert storage_uri(_obj("InferenceService", "c", spec={"predictor": {"model": {}}})) is None


def test_revision_timeouts_from_revision_then_config_defaults_then_knative_default() -> None:
    revision = _obj("Revision", "r-00001", spec={"timeoutSeconds": 60, "responseStartTimeoutSeconds": 60})
    words, where = revision_timeout_words(_snap(revision), revision)
    assert words == "Revision r-00001 timeoutSeconds 60 s, responseStartTimeoutSeconds 60 s" and len(where) == 2
    bare = _obj("Revision", "r-00002", spec={})
    defaults = _obj("ConfigMap", "config-defaults", "knative-serving", data={"revision-timeout-seconds": "120"})
    words, _ = revision_timeout_words(_snap(bare, defaults), bare)
    assert words.startswith("revision-timeout-seconds 120 s")
    words, where = revision_timeout_words(_snap(), None)
    assert "300 s" in words and where == []
