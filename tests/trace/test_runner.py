"""`request` end to end over a mocked network: the answer, the ingress log line it leaves in a bundle, MLServer's
metrics and the probes, put together into hops; and many requests into percentiles and a split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import respx

from mlops_trace.errors import ClusterError
from mlops_trace.trace.command import RequestArgs, execute
from mlops_trace.trace.record import SourceKind
from mlops_trace.trace.runner import RunOptions, run_many, run_one
from mlops_trace.trace.sources import ClusterSource
from mlops_trace.trace.target import build_target
from tests.trace.helpers import EXPERIMENT, HEALTHY_AB, HOST, LB_IP, nginx_line

BASE = f"http://{LB_IP}"
INFER = f"{BASE}/v2/models/{EXPERIMENT}/infer"
METRICS = "http://mlserver:8082/metrics"
METADATA = {"name": "txn-baseline_1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4]}]}
INGRESS_LOG = "logs/ingress-nginx/ingress-nginx-controller-7d9c5b8f46-xq7vz/controller.log"


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(HEALTHY_AB, target)
    return target


class _Ingress:
    """A fake ingress: answers like Seldon behind NGINX and writes NGINX's access line for each request."""

    def __init__(self, log: Path, routes: list[str], status: int = 200) -> None:
        self.log = log
        self.routes = routes
        self.status = status
        self.calls = 0
        self.model_count = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = self.routes[self.calls % len(self.routes)]
        self.calls += 1
        rid = request.headers["x-request-id"]
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(nginx_line(rid, "0.009", "0.006", self.status) + "\n")
        if self.status != 200:
            return httpx.Response(self.status, headers={"server": "nginx"})
        self.model_count += 1
        headers = {"x-seldon-route": route, "x-envoy-upstream-service-time": "4", "server": "nginx"}
        return httpx.Response(200, headers=headers, json={"model_name": route.strip(":"), "outputs": []})

    def metrics(self, request: httpx.Request) -> httpx.Response:
        text = (
            f'model_infer_request_duration_count{{model="txn-baseline_1",version="1"}} {self.model_count}\n'
            f'model_infer_request_duration_sum{{model="txn-baseline_1",version="1"}} {0.0025 * self.model_count}\n'
        )
        return httpx.Response(200, text=text)


def _options(bundle: Path, **kwargs: object) -> RunOptions:
    target = build_target(BASE, host=HOST, model=None, experiment=EXPERIMENT)
    defaults: dict[str, object] = {
        "target": target,
        "source": ClusterSource(bundle=bundle),
        "metrics_url": METRICS,
        "probes": 0,
        "log_wait_s": 0.0,
        "lean_client": False,  # respx mocks httpx; the lean client is tested against real sockets in test_fastclient
    }
    defaults.update(kwargs)
    return RunOptions(**defaults)  # type: ignore[arg-type]


@respx.mock
def test_one_request_traced_through_every_hop(bundle: Path) -> None:
    ingress = _Ingress(bundle / INGRESS_LOG, [":txn-baseline_1:"])
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(return_value=httpx.Response(200, json=METADATA))
    infer = respx.post(INFER).mock(side_effect=ingress)
    respx.get(METRICS).mock(side_effect=ingress.metrics)
    respx.post("http://envoy:9000/v2/models/txn-ab/infer").mock(side_effect=lambda r: httpx.Response(200))
    respx.post("http://agent:9001/v2/models/txn-ab/infer").mock(return_value=httpx.Response(200))
    respx.post("http://mlserver:9000/v2/models/txn-baseline_1/infer").mock(return_value=httpx.Response(200))
    options = _options(
        bundle,
        probes=3,
        entry_points={"envoy": "http://envoy:9000", "agent": "http://agent:9001", "mlserver": "http://mlserver:9000"},
    )
    result = run_one(options)
    sent = json.loads(infer.calls[0].request.content)
    assert sent["inputs"][0]["shape"] == [1, 4] and len(sent["inputs"][0]["data"]) == 4
    assert infer.calls[0].request.headers["seldon-model"] == "txn-ab.experiment"
    assert infer.calls[0].request.headers["traceparent"].startswith("00-")
    assert result.ok and result.exchange.route == ":txn-baseline_1:"
    hops = {hop.hop: hop for hop in result.hops}
    assert hops[2].duration_ms == pytest.approx(3.0) and hops[2].evidence[0].where.startswith(INGRESS_LOG)
    assert hops[4].duration_ms == pytest.approx(2.0)
    assert hops[7].duration_ms == pytest.approx(2.5) and hops[7].source_kind is SourceKind.METRIC
    assert "this request only" in hops[7].source
    assert hops[6].duration_ms == pytest.approx(1.5)
    assert "Pod fraud-serving/mlserver-0" in hops[6].component
    assert hops[2].probe_ms is not None and hops[4].probe_ms is not None and hops[7].probe_ms is not None
    timed = [hop for hop in result.hops if hop.duration_ms is not None]
    assert len(timed) >= 4 and all(hop.source and hop.source != "not timed" for hop in timed)
    assert result.total_ms is not None and result.unexplained_ms is not None
    assert abs(sum(hop.duration_ms for hop in timed) + result.unexplained_ms - result.total_ms) < 0.01
    document = result.to_dict()
    for key in ("request_id", "status", "route", "total_ms", "unexplained_ms", "hops"):
        assert key in document
    assert set(document["hops"][0]) >= {"hop", "name", "component", "duration_ms", "source", "evidence"}


@respx.mock
def test_a_failed_request_is_explained_and_placeholder_payload_noted(bundle: Path) -> None:
    ingress = _Ingress(bundle / INGRESS_LOG, [":x:"], status=404)
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(return_value=httpx.Response(404))
    respx.post(INFER).mock(side_effect=ingress)
    respx.get(METRICS).mock(side_effect=ingress.metrics)
    target = build_target(BASE, host=HOST, model=EXPERIMENT, experiment=None)
    result = run_one(_options(bundle, target=target))
    assert not result.ok
    assert result.failure is not None and (result.failure.hop, result.failure.code) == (4, "no-route")
    assert result.failure.checks == ("MT301",) and [f.id for f in result.findings] == ["MT301"]
    assert any("placeholder" in note for note in result.notes)
    assert result.hops[3].status.value == "failed" and result.hops[6].status.value == "not-reached"


@respx.mock
def test_unreachable_ingress_is_a_cluster_error(bundle: Path) -> None:
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ClusterError, match=str(LB_IP)):
        run_one(_options(bundle))


@respx.mock
def test_many_requests_give_percentiles_per_hop_and_the_split(bundle: Path) -> None:
    routes = [":txn-baseline_1:"] * 7 + [":txn-challenger_1:"] * 3
    ingress = _Ingress(bundle / INGRESS_LOG, routes)
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(return_value=httpx.Response(200, json=METADATA))
    respx.post(INFER).mock(side_effect=ingress)
    respx.get(METRICS).mock(side_effect=ingress.metrics)
    summary = run_many(_options(bundle, count=100, concurrency=4))
    assert summary.count == 100 and summary.succeeded == 100 and summary.success_rate == 1.0
    hops = {hop.hop: hop for hop in summary.hops}
    assert hops[2].samples == 100 and hops[2].p50 == pytest.approx(3.0, abs=0.01)
    assert hops[3].samples == 0 and hops[3].untimed_reason
    split = summary.split
    assert split is not None
    assert split.observed == {"txn-baseline": 70, "txn-challenger": 30}
    assert split.expected == {"txn-baseline": 0.7, "txn-challenger": 0.3}
    assert split.envoy == {"txn-baseline": 0.7, "txn-challenger": 0.3}
    assert split.consistent is True and split.p_value == pytest.approx(1.0)
    document = summary.to_dict()
    assert set(document["latency_ms"]) >= {"p50", "p95", "p99"}
    assert set(document["split"]) >= {"expected", "envoy", "observed", "p_value", "consistent"}
    assert document["trace"]["request_id"].startswith("mt-")


@respx.mock
def test_until_decided_stops_early(bundle: Path) -> None:
    ingress = _Ingress(bundle / INGRESS_LOG, [":txn-baseline_1:", ":txn-challenger_1:"])
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(return_value=httpx.Response(200, json=METADATA))
    respx.post(INFER).mock(side_effect=ingress)
    respx.get(METRICS).mock(side_effect=ingress.metrics)
    summary = run_many(_options(bundle, count=5000, concurrency=2, until_decided=True, split_tolerance=0.1))
    assert summary.count < 5000
    assert summary.split is not None and summary.split.sequential == "inconsistent"
    assert {f.id for f in summary.findings} == {"MT403"}


@respx.mock
def test_execute_json_and_exit_codes(bundle: Path, tmp_path: Path) -> None:
    ingress = _Ingress(bundle / INGRESS_LOG, [":txn-baseline_1:"])
    respx.get(f"{BASE}/v2/models/{EXPERIMENT}").mock(return_value=httpx.Response(200, json=METADATA))
    respx.post(INFER).mock(side_effect=ingress)
    saved = tmp_path / "record.json"
    args = RequestArgs(
        url=BASE,
        host=HOST,
        experiment=EXPERIMENT,
        bundle=bundle,
        output="json",
        no_stack=True,
        probes=0,
        log_wait=0.0,
        save=saved,
    )
    outcome = execute(args)
    assert outcome.exit_code == 0
    document = json.loads(outcome.text)
    assert document["status"] == 200 and document["route"] == ":txn-baseline_1:"
    assert json.loads(saved.read_text())["request_id"] == document["request_id"]
    ingress.status = 404
    failed = execute(
        RequestArgs(
            url=BASE,
            host="wrong.example",
            experiment=EXPERIMENT,
            bundle=bundle,
            output="table",
            no_stack=True,
            probes=0,
            log_wait=0.0,
        )
    )
    assert failed.exit_code == 1
    assert "failed at hop" in failed.text
