"""The KServe path read from bundles shaped as the controllers make them: the hops of both deployment modes, with and
without a transformer, the hop a broken object puts a problem on, and the failure-at-hop verdicts from the answer's
shape (KSERVE-FACTS §4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mlops_trace.parsers.envoy_access import parse_line
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.kserve.explain import explain
from mlops_trace.trace.kserve.hops import Hop
from mlops_trace.trace.kserve.logs import GatewayLine, RequestLines
from mlops_trace.trace.kserve.path import KPath, KRequest
from mlops_trace.trace.kserve.reconstruct import reconstruct
from mlops_trace.trace.kserve.target import build_isvc_target, read_isvc
from mlops_trace.trace.record import ErrorKind, Protocol
from tests.trace.helpers import exchange
from tests.trace.kserve_fake import DATA, HOST, LOCAL_CLUSTER, gateway_line


@pytest.fixture
def serverless() -> Iterator[Snapshot]:
    with open_bundle(DATA / "serverless") as snap:
        yield snap


def _path(snap: Snapshot, host: str | None = None, model: str | None = None) -> KPath:
    isvc = read_isvc(snap, "sklearn-iris", None)
    target = build_isvc_target("http://192.0.2.10", isvc, api="v1", protocol=Protocol.REST, host=host, model=model)
    return reconstruct(snap, isvc, KRequest("192.0.2.10", 80, target.authority, target.infer_path, target.name))


def test_knative_path_with_a_transformer_names_every_hop(serverless: Snapshot) -> None:
    path = _path(serverless)
    assert [path.hops[key].name for key in path.keys] == [
        "external IP",
        "Istio gateway",
        "Knative route",
        "activator",
        "queue-proxy",
        "transformer",
        "→ predictor",
        "kserve-container",
        "model",
    ]
    assert [path.hops[key].hop for key in path.keys] == list(range(1, 10))
    assert all(hop.problem is None for hop in path.hops.values())
    gateway = path.hops[Hop.GATEWAY].component
    assert "VirtualService kserve-test/sklearn-iris http[0]" in gateway
    assert "Host sklearn-iris-transformer.kserve-test.svc.cluster.local" in gateway
    assert "sklearn-iris-transformer-00001.kserve-test.svc.cluster.local" in path.hops[Hop.KNATIVE_ROUTE].component
    assert "sklearn-iris-predictor-00001" in path.hops[Hop.PREDICTOR_ROUTE].component
    assert "--predictor_host sklearn-iris-predictor.kserve-test" in str(path.hops[Hop.TRANSFORMER].evidence)
    assert path.activator is False and path.revisions == {"sklearn-iris-predictor-00001": 1.0}


def test_a_host_no_virtualservice_takes_is_a_problem_at_the_gateway(serverless: Snapshot) -> None:
    path = _path(serverless, host="sklearn-iris-kserve-test.example.com")
    hop = path.hops[Hop.GATEWAY]
    assert hop.problem is not None and "404" in hop.problem and "NR" in hop.problem
    assert "sklearn-iris.kserve-test.example.com" in str(hop.evidence)  # the hosts the VirtualServices do take


def _edited(tmp_path: Path, name: str, edit: object) -> Path:
    import shutil

    root = tmp_path / name
    shutil.copytree(DATA / name, root)
    for file in (root / "kube").glob("*.yaml"):
        docs = [doc for doc in yaml.safe_load_all(file.read_text()) if doc is not None]
        kept = [doc for doc in docs if edit(doc) is not False]  # type: ignore[operator]
        file.write_text(yaml.safe_dump_all(kept, sort_keys=False))
    return root


def test_a_missing_local_gateway_is_a_problem_at_the_knative_route(tmp_path: Path) -> None:
    root = _edited(
        tmp_path,
        "serverless",
        lambda doc: doc["metadata"]["name"] != "knative-local-gateway" or doc["kind"] != "Gateway",
    )
    with open_bundle(root) as snap:
        path = _path(snap)
    assert path.hops[Hop.GATEWAY].problem is None
    problem = path.hops[Hop.KNATIVE_ROUTE].problem
    assert problem is not None and "knative-serving/knative-local-gateway" in problem


def test_a_stale_predictor_host_is_a_problem_at_the_transformer(tmp_path: Path) -> None:
    def stale(doc: dict[str, object]) -> None:
        text = yaml.safe_dump(doc)
        if "--predictor_host" in text:
            doc.clear()
            doc.update(
                yaml.safe_load(
                    text.replace("sklearn-iris-predictor.kserve-test\n", "sklearn-iris-predictor-default.kserve-test\n")
                )
            )

    root = _edited(tmp_path, "serverless", stale)
    with open_bundle(root) as snap:
        path = _path(snap)
    problem = path.hops[Hop.TRANSFORMER].problem
    assert problem is not None and "sklearn-iris-predictor-default.kserve-test" in problem


def test_a_revision_scaled_to_zero_puts_the_activator_on_the_path(tmp_path: Path) -> None:
    root = _edited(
        tmp_path,
        "serverless",
        lambda doc: doc["kind"] != "Pod" or not doc["metadata"]["name"].startswith("sklearn-iris-transformer-00001"),
    )
    with open_bundle(root) as snap:
        path = _path(snap)
    assert path.activator is True
    assert path.hops[Hop.ACTIVATOR].component.startswith("on the path: revision sklearn-iris-transformer-00001")


def test_standard_mode_goes_ingress_service_pod_model() -> None:
    with open_bundle(DATA / "standard") as snap:
        path = _path(snap)
    assert [key.value for key in path.keys] == [
        "external IP",
        "Ingress route",
        "Kubernetes Service",
        "predictor pod",
        "model",
    ]
    ingress = path.hops[Hop.INGRESS].component
    assert "Ingress kserve-test/sklearn-iris (class istio) → sklearn-iris-predictor" in ingress
    assert "1 ready address" in str(path.hops[Hop.SERVICE].evidence)
    assert all(hop.problem is None for hop in path.hops.values())


def test_standard_mode_without_an_ingress_address_says_no_controller_took_it(tmp_path: Path) -> None:
    def no_address(doc: dict[str, object]) -> None:
        if doc["kind"] == "Ingress":
            doc.pop("status", None)

    root = _edited(tmp_path, "standard", no_address)
    with open_bundle(root) as snap:
        path = _path(snap)
    problem = path.hops[Hop.INGRESS].problem
    assert problem is not None and "no ingress controller serves it" in problem


# --- failure at hop ------------------------------------------------------------------------------------------------


def _line(status: int, flags: str, details: str, authority: str, cluster: str) -> GatewayLine:
    request = httpx.Request(
        "POST",
        "http://192.0.2.10/v1/models/sklearn-iris:predict",
        headers={"x-request-id": "mt-abcd-000001"},
        content=b"{}",
    )
    raw = gateway_line(
        request,
        status=status,
        flags=flags,
        details=details,
        duration=2,
        upstream=None,
        authority=authority,
        cluster=cluster,
    )
    record = parse_line(1, raw)
    assert record is not None
    return GatewayLine("logs/istio-system/gw/istio-proxy.log:1", record)


ENVOY = {"server": "istio-envoy"}


@pytest.mark.parametrize(
    ("status", "headers", "body", "lines", "hop", "code"),
    [
        (404, ENVOY, b"", [_line(404, "NR", "route_not_found", HOST, "-")], Hop.GATEWAY, "no-route"),
        (404, ENVOY, b"", [], Hop.GATEWAY, "no-route"),
        (
            503,
            ENVOY,
            (
                b"upstream connect error or disconnect/reset before headers. retried and the latest reset "
                b"reason: remote connection failure, transport failure reason: delayed connect error: Connection refused"
            ),
            [
                _line(
                    503,
                    "URX,UF",
                    "upstream_reset_before_response_started{remote_connection_failure}",
                    HOST,
                    LOCAL_CLUSTER,
                )
            ],
            Hop.KNATIVE_ROUTE,
            "upstream-connect",
        ),
        (
            503,
            ENVOY,
            b"no healthy upstream",
            [
                _line(
                    503,
                    "UH",
                    "no_healthy_upstream",
                    "sklearn-iris-transformer.kserve-test.svc.cluster.local",
                    "outbound|80||sklearn-iris-transformer-00001.kserve-test.svc.cluster.local",
                )
            ],
            Hop.QUEUE_PROXY,
            "no-healthy-upstream",
        ),
        (504, ENVOY, b"request timeout", [], Hop.QUEUE_PROXY, "revision-timeout"),
        (504, ENVOY, b"activator request timeout", [], Hop.ACTIVATOR, "activator-timeout"),
        (
            500,
            ENVOY,
            b'{"error":"ConnectError : [Errno -2] Name or service not known"}',
            [],
            Hop.TRANSFORMER,
            "transformer-upstream",
        ),
        (404, ENVOY, b'{"error":"Model with name other does not exist."}', [], Hop.TRANSFORMER, "model-not-found"),
        (502, ENVOY, b"dial tcp 127.0.0.1:8080: connect: connection refused\n", [], Hop.SERVER, "container-refused"),
    ],
)
def test_the_answer_shape_places_the_failure(
    serverless: Snapshot,
    status: int,
    headers: dict[str, str],
    body: bytes,
    lines: list[GatewayLine],
    hop: Hop,
    code: str,
) -> None:
    path = _path(serverless)
    isvc = read_isvc(serverless, "sklearn-iris", None)
    target = build_isvc_target("http://192.0.2.10", isvc, api="v1", protocol=Protocol.REST)
    failure = explain(exchange(status, headers, body), target, path, RequestLines(gateway=lines))
    assert failure is not None
    assert (failure.hop, failure.code) == (path.number(hop), code)


def test_without_a_transformer_the_model_servers_404_is_the_kserve_containers(tmp_path: Path) -> None:
    def drop_transformer(doc: dict[str, object]) -> bool:
        spec = doc.get("spec")
        if doc["kind"] == "InferenceService" and isinstance(spec, dict):
            spec.pop("transformer")
        if doc["kind"] == "VirtualService" and doc["metadata"]["name"] == "sklearn-iris":  # type: ignore[index]
            text = yaml.safe_dump(doc).replace("sklearn-iris-transformer.", "sklearn-iris-predictor.")
            doc.clear()
            doc.update(yaml.safe_load(text))
        return "transformer" not in str(doc.get("metadata", {})) or doc["kind"] == "Namespace"

    root = _edited(tmp_path, "serverless", drop_transformer)
    with open_bundle(root) as snap:
        path = _path(snap)
        isvc = read_isvc(snap, "sklearn-iris", None)
    assert Hop.TRANSFORMER not in path.keys
    target = build_isvc_target("http://192.0.2.10", isvc, api="v1", protocol=Protocol.REST)
    failure = explain(
        exchange(404, ENVOY, b'{"error":"Model with name nosuch does not exist."}'), target, path, RequestLines()
    )
    assert failure is not None and (failure.hop, failure.code) == (path.number(Hop.SERVER), "model-not-found")
    assert path.hops[Hop.KNATIVE_ROUTE].component.endswith(
        "sklearn-iris-predictor-00001.kserve-test.svc.cluster.local:80"
    )


def test_grpc_unimplemented_and_a_connect_error(serverless: Snapshot) -> None:
    path = _path(serverless)
    isvc = read_isvc(serverless, "sklearn-iris", None)
    target = build_isvc_target("http://192.0.2.10", isvc, api="v2", protocol=Protocol.GRPC)
    grpc = explain(exchange(None, grpc_status="UNIMPLEMENTED"), target, path, RequestLines())
    assert grpc is not None and (grpc.hop, grpc.code) == (path.number(Hop.GATEWAY), "no-route")
    upstream_404 = _line(
        404, "-", "via_upstream", "sklearn-iris-transformer.kserve-test.svc.cluster.local", LOCAL_CLUSTER
    )
    served = explain(exchange(None, grpc_status="UNIMPLEMENTED"), target, path, RequestLines(gateway=[upstream_404]))
    assert served is not None and (served.hop, served.code) == (path.number(Hop.TRANSFORMER), "grpc-not-served")
    refused = explain(
        exchange(None, error_kind=ErrorKind.CONNECT, error="Connection refused"), target, path, RequestLines()
    )
    assert refused is not None and (refused.hop, refused.code) == (1, "unreachable")
    assert explain(exchange(200, ENVOY, b'{"predictions":[0]}'), target, path, RequestLines()) is None
