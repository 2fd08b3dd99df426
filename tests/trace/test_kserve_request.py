"""`request --isvc` end to end against a faked KServe path (respx answers as the gateway would and appends the lines
each component writes: tests/trace/kserve_fake.py): the timed hop table, the JSON keys of the Seldon path, the
failure at its hop with the catalog's findings, the canary split, and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from mlops_trace.cli import app
from mlops_trace.trace.kserve.hops import Hop
from mlops_trace.trace.kserve.runner import KServeRun, run_many, run_one
from mlops_trace.trace.record import HopStatus
from mlops_trace.trace.sources import ClusterSource
from tests.trace.kserve_fake import GATEWAY_URL, HOST, LOCAL_CLUSTER, FakePath, bundle, envoy_answer

PREDICT = f"{GATEWAY_URL}/v1/models/sklearn-iris:predict"
SELDON_TRACE_KEYS = {
    "request_id",
    "traceparent",
    "url",
    "protocol",
    "http_version",
    "target",
    "status",
    "ok",
    "error",
    "route",
    "served_model",
    "total_ms",
    "unexplained_ms",
    "unexplained_source",
    "client_phases",
    "hops",
    "failure",
    "findings",
    "path_source",
    "response_headers",
    "notes",
}


@pytest.fixture
def body(tmp_path: Path) -> Path:
    path = tmp_path / "iris.json"
    path.write_text('{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}', encoding="utf-8")
    return path


def _run(root: Path, body: Path, **kwargs: object) -> KServeRun:
    return KServeRun(
        url=GATEWAY_URL, isvc="sklearn-iris", data=body, source=ClusterSource(bundle=root), log_wait_s=0.3, **kwargs
    )  # type: ignore[arg-type]


def test_a_served_request_is_timed_hop_by_hop(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    fake = FakePath(root)
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=fake)
        result = run_one(_run(root, body))
    sent = fake.requests[0].headers
    assert sent["host"] == HOST and sent["x-request-id"].startswith("mt-") and len(sent["x-b3-traceid"]) == 32
    assert result.ok and result.failure is None
    durations = {hop.name: hop.duration_ms for hop in result.hops}
    # gateway 9 - 8; ingress upstream 8 - local upstream 7; local upstream 7 - transformer queue-proxy 6.5;
    # 6.5 - the call's 3; the call's 3 - predictor queue-proxy 2.5; 2.5 - model; the model's own line.
    assert durations == {
        "external IP": None,
        "Istio gateway": 1.0,
        "Knative route": 1.0,
        "activator": None,
        "queue-proxy": 0.5,
        "transformer": 3.5,
        "→ predictor": 0.5,
        "kserve-container": 2.128,
        "model": 0.372,
    }
    assert result.served_model == "sklearn-iris (sklearn-iris-predictor-00001)"
    document = result.to_dict()
    assert set(document) == SELDON_TRACE_KEYS
    assert [hop["hop"] for hop in document["hops"]] == list(range(1, 10))


def test_passes_are_found_when_the_gateway_replaces_the_request_id(tmp_path: Path, body: Path) -> None:
    # Our id rides in the User-Agent too; the passes behind the edge carry the id Envoy gave the request.
    root = bundle(tmp_path)
    fake = FakePath(root, envoy_ids=True)
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=fake)
        result = run_one(_run(root, body))
    assert fake.requests[0].headers["user-agent"] == f"mlops-trace ({result.exchange.request_id})"
    durations = {hop.name: hop.duration_ms for hop in result.hops}
    assert (durations["Istio gateway"], durations["Knative route"], durations["→ predictor"]) == (1.0, 1.0, 0.5)


def test_the_transformers_wrapped_504_is_the_predictors_revision_timeout(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    wrapped = (
        b'{"error":"HTTPStatusError : Server error \'504 Gateway Timeout\' for url '
        b"'http://sklearn-iris-predictor.kserve-test/v1/models/sklearn-iris:predict'\"}"
    )
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=FakePath(root, status=500, body=wrapped))
        result = run_one(_run(root, body))
    assert result.failure is not None
    assert (result.failure.hop, result.failure.code) == (7, "revision-timeout")


def test_a_not_ready_isvc_gets_the_host_knative_will_give_it(tmp_path: Path, body: Path) -> None:
    import yaml

    root = bundle(tmp_path)
    isvc_file = root / "kube" / "kserve-isvc.yaml"
    isvc = yaml.safe_load(isvc_file.read_text())
    del isvc["status"]["url"]
    isvc_file.write_text(yaml.safe_dump(isvc))
    fake = FakePath(root)
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=fake)
        result = run_one(_run(root, body))
    assert fake.requests[0].headers["host"] == HOST  # {{.Name}}.{{.Namespace}}.{{.Domain}} over config-domain
    assert any("no .status.url" in note and "config-domain" in note for note in result.notes)


def test_without_a_trace_line_the_model_servers_metric_times_the_model(tmp_path: Path, body: Path) -> None:
    # kserve/metrics.py's histogram on the predictor's /metrics, read before and after the request.
    root = bundle(tmp_path)
    metrics = "http://10.244.0.159:8080/metrics"
    exposition = (
        "# TYPE request_predict_seconds histogram\n"
        'request_predict_seconds_sum{{model_name="sklearn-iris"}} {total}\n'
        'request_predict_seconds_count{{model_name="sklearn-iris"}} {count}\n'
    )
    answers = [
        httpx.Response(200, text=exposition.format(total=0.5, count=10)),
        httpx.Response(200, text=exposition.format(total=0.5004, count=11)),
    ]
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=FakePath(root, server_lines=False))
        respx.get(metrics).mock(side_effect=answers)
        result = run_one(_run(root, body, metrics_url=metrics))
    model = result.hops[-1]
    assert model.duration_ms == 0.4 and model.source_kind.value == "metric" and model.per_request
    assert result.hops[-2].duration_ms == 2.1  # queue-proxy's 2.5 ms minus the model's 0.4


def test_a_host_no_route_takes_fails_at_the_gateway_with_its_check(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    with respx.mock:
        respx.post(PREDICT).mock(
            side_effect=envoy_answer(
                root, 404, b"", flags="NR", details="route_not_found", authority="sklearn-iris-kserve-test.example.com"
            )
        )
        result = run_one(_run(root, body, host="sklearn-iris-kserve-test.example.com"))
    assert result.failure is not None
    assert (result.failure.hop, result.failure.code) == (2, "no-route")
    assert [hop.status for hop in result.hops][:3] == [HopStatus.OK, HopStatus.FAILED, HopStatus.NOT_REACHED]
    assert result.hops[1].duration_ms == 1.0  # the gateway answered itself: its %DURATION%
    assert "MT713" in result.failure.checks


def test_a_refused_local_gateway_fails_at_the_knative_route(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    answer = envoy_answer(
        root,
        503,
        b"upstream connect error or disconnect/reset before headers. retried and the "
        b"latest reset reason: remote connection failure, transport failure reason: delayed connect "
        b"error: Connection refused",
        flags="URX,UF",
        details="upstream_reset_before_response_started{remote_connection_failure}",
        upstream_cluster=LOCAL_CLUSTER,
    )
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=answer)
        result = run_one(_run(root, body))
    assert result.failure is not None
    assert (result.failure.hop, result.failure.code) == (3, "upstream-connect")


def test_queue_proxys_timeout_fails_at_queue_proxy(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    fake = FakePath(
        root,
        status=504,
        body=b"request timeout",
        headers={"server": "istio-envoy", "content-type": "text/plain; charset=utf-8"},
    )
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=fake)
        result = run_one(_run(root, body))
    assert result.failure is not None
    assert (result.failure.hop, result.failure.code) == (5, "revision-timeout")
    assert result.hops[8].status is HopStatus.NOT_REACHED and result.hops[8].duration_ms is None


def test_count_runs_a_canary_split_three_ways(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path, "serverless-canary")
    fake = FakePath(root, revision=lambda index: 2 if index % 5 == 0 else 1)
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=fake)
        summary = run_many(_run(root, body, count=20, concurrency=2))
    assert summary.count == summary.succeeded == 20
    assert [hop.name for hop in summary.hops][5] == "transformer" and summary.hops[5].samples == 20
    split = summary.split
    assert split is not None
    assert split.expected == {"sklearn-iris-predictor-00002": 0.2, "sklearn-iris-predictor-00001": 0.8}
    assert split.envoy == {"sklearn-iris-predictor-00001": 1.0}
    assert split.observed == {"sklearn-iris-predictor-00001": 16, "sklearn-iris-predictor-00002": 4}
    assert split.envoy_matches_experiment is False and split.consistent is False
    assert set(summary.to_dict()) >= {"count", "hops", "errors", "split", "trace", "latency_ms"}


def test_the_cli_prints_the_path_and_exits_0(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    with respx.mock:
        respx.post(PREDICT).mock(side_effect=FakePath(root))
        result = CliRunner().invoke(
            app,
            [
                "request",
                "--isvc",
                "sklearn-iris",
                "-n",
                "kserve-test",
                "--url",
                GATEWAY_URL,
                "--bundle",
                str(root),
                "--data",
                str(body),
                "--no-stack",
                "--log-wait",
                "0.3",
                "-o",
                "json",
            ],
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["target"] == "InferenceService kserve-test/sklearn-iris"
    assert [hop["name"] for hop in document["hops"]][-2:] == [Hop.SERVER.value, Hop.MODEL.value]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--isvc-protocol", "v3"], "--isvc-protocol must be v1 or v2"),
        (["--protocol", "grpc", "--isvc-protocol", "v1"], "gRPC is KServe's V2 protocol"),
        (["--experiment", "ab"], "--experiment is Seldon's"),
        (["-n", "a", "-n", "b"], "one namespace"),
    ],
)
def test_bad_isvc_flags_exit_2_with_one_line(tmp_path: Path, body: Path, extra: list[str], words: str) -> None:
    root = bundle(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "request",
            "--isvc",
            "sklearn-iris",
            "--url",
            GATEWAY_URL,
            "--bundle",
            str(root),
            "--data",
            str(body),
            "--no-stack",
            *extra,
        ],
    )
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output


def test_an_unknown_isvc_is_named(tmp_path: Path, body: Path) -> None:
    root = bundle(tmp_path)
    with respx.mock:
        result = CliRunner().invoke(
            app,
            [
                "request",
                "--isvc",
                "nosuch",
                "--url",
                GATEWAY_URL,
                "--bundle",
                str(root),
                "--data",
                str(body),
                "--no-stack",
            ],
        )
    assert result.exit_code == 2
    assert "no such InferenceService" in result.output and "kserve-test/sklearn-iris" in result.output


def test_v2_rest_uses_the_infer_path(tmp_path: Path) -> None:
    root = bundle(tmp_path)
    data = tmp_path / "v2.json"
    data.write_text('{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}')
    answer = b'{"model_name":"sklearn-iris","model_version":null,"id":"x","parameters":null,"outputs":[]}'
    with respx.mock:
        route = respx.post(f"{GATEWAY_URL}/v2/models/sklearn-iris/infer").mock(side_effect=FakePath(root, body=answer))
        result = run_one(_run(root, data, api="v2"))
    assert route.called and result.ok and result.served_model == "sklearn-iris (sklearn-iris-predictor-00001)"
