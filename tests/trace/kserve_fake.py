"""A KServe path for the trace tests: a copy of a test bundle (tests/trace/data/kserve/, objects shaped as KServe's,
Knative's and net-istio's controllers make them, KSERVE-FACTS §2) with empty logs, and a respx side effect that
answers as the path would and appends the lines each component writes for that request:

- the Istio gateway's access line per pass (Istio's default TEXT format, istio/istio 86c9f01
  pilot/pkg/model/telemetry_logging.go, KSERVE-FACTS §5.7): the ingress gateway's, the local gateway's to the entry
  revision, and (with a transformer) the local gateway's for its call to the predictor;
- queue-proxy's request-log line (Knative config-observability's example template: `httpRequest.latency`, `traceId`
  from X-B3-Traceid; knative/serving 98e5ef9 config/core/configmaps/observability.yaml);
- the model server's `kserve.trace requestId: …, preprocess_ms: …` line (kserve 0.21.0 kserve/model.py, §5.2).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DATA = Path(__file__).resolve().parent / "data" / "kserve"
NAMESPACE = "kserve-test"
HOST = "sklearn-iris.kserve-test.example.com"
GATEWAY_URL = "http://192.0.2.10"
GATEWAY_POD = "istio-ingressgateway-6d8b7f9c54-x7k2q"
PREDICTOR_POD = "sklearn-iris-predictor-00001-deployment-s49z8z9pdk-d9t95"
CANARY_POD = "sklearn-iris-predictor-00002-deployment-skbh45s56g-ndp9q"
TRANSFORMER_POD = "sklearn-iris-transformer-00001-deployment-knjgbtgmgc-kcnrf"
LOCAL_CLUSTER = "outbound|80||knative-local-gateway.istio-system.svc.cluster.local"
V1_BODY = b'{"predictions":[0,2]}'


def bundle(tmp_path: Path, name: str = "serverless") -> Path:
    """A copy of test bundle `name` with the empty log files of the gateway and the revision pods."""
    root = tmp_path / name
    shutil.copytree(DATA / name, root)
    pods = {f"istio-system/{GATEWAY_POD}": ("istio-proxy",)}
    for pod in (PREDICTOR_POD, TRANSFORMER_POD, CANARY_POD):
        pods[f"{NAMESPACE}/{pod}"] = ("queue-proxy", "kserve-container")
    for key, containers in pods.items():
        directory = root / "logs" / key
        directory.mkdir(parents=True, exist_ok=True)
        for container in containers:
            (directory / f"{container}.log").touch()
    return root


def gateway_line(
    request: httpx.Request,
    *,
    status: int,
    flags: str = "-",
    details: str = "via_upstream",
    duration: int,
    upstream: int | None,
    authority: str,
    cluster: str,
    request_id: str | None = None,
    user_agent: str | None = None,
) -> str:
    rid = request_id or request.headers.get("x-request-id", "-")
    agent = user_agent or request.headers.get("user-agent", "python-httpx/0.28.1")
    ust = str(upstream) if upstream is not None else "-"
    return (
        f'[2026-08-21T09:31:02.123Z] "POST {request.url.path} HTTP/1.1" {status} {flags} {details} - "-" '
        f'{len(request.content)} 21 {duration} {ust} "10.244.0.1" "{agent}" "{rid}" "{authority}" '
        f'"10.244.0.159:8012" {cluster} 10.244.0.9:41234 10.244.0.9:8080 10.244.0.1:50000 - -'
    )


def queue_line(request: httpx.Request, *, status: int, latency_s: float) -> str:
    trace = request.headers.get("x-b3-traceid", "")
    return (
        '{"httpRequest": {"requestMethod": "POST", "requestUrl": "'
        + request.url.path
        + '", "requestSize": "'
        + str(len(request.content))
        + '", "status": '
        + str(status)
        + ', "responseSize": "21", "userAgent": '
        '"python-httpx/0.28.1", "remoteIp": "10.244.0.9:41234", "serverIp": "10.244.0.159", "referer": "", '
        f'"latency": "{latency_s:.9f}s", "protocol": "HTTP/1.1"}}, "traceId": "{trace}"}}'
    )


def trace_line(request: httpx.Request, predict_ms: float) -> str:
    rid = request.headers.get("x-request-id", "N.A.")
    return (
        f"2026-08-21 09:31:02.125 1 kserve.trace requestId: {rid}, preprocess_ms: 0.012, explain_ms: 0, "
        f"predict_ms: {predict_ms}, postprocess_ms: 0.004"
    )


@dataclass
class FakePath:
    """Answers like the Knative path of `root` and writes its lines. `revision` picks the predictor revision per
    request (index → `sklearn-iris-predictor-0000N`)."""

    root: Path
    status: int = 200
    body: bytes = V1_BODY
    headers: dict[str, str] = field(
        default_factory=lambda: {"server": "istio-envoy", "content-type": "application/json"}
    )
    transformer: bool = True
    revision: Callable[[int], int] = lambda index: 1
    requests: list[httpx.Request] = field(default_factory=list)
    # True: the ingress gateway replaces the client's x-request-id with its own (an edge Envoy does, unless told to
    # preserve external ids); the passes behind it keep that one, and the transformer forwards it to its predictor.
    envoy_ids: bool = False
    server_lines: bool = True  # False: the model server writes no kserve.trace line (its metrics time the model)

    def _append(self, namespace: str, pod: str, container: str, line: str) -> None:
        with (self.root / "logs" / namespace / pod / f"{container}.log").open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        index = len(self.requests)
        self.requests.append(request)
        number = self.revision(index)
        revision = f"sklearn-iris-predictor-0000{number}"
        predictor_pod = PREDICTOR_POD if number == 1 else CANARY_POD
        gw = ("istio-system", GATEWAY_POD, "istio-proxy")
        # Times (ms): ingress gateway 9 (upstream 8), local gateway to the entry 7 (upstream 7), transformer's
        # queue-proxy 6.5, its call to the predictor 3 (upstream 3), predictor queue-proxy 2.5, model 0.372.
        entry = "sklearn-iris-transformer" if self.transformer else "sklearn-iris-predictor"
        entry_revision = "sklearn-iris-transformer-00001" if self.transformer else revision
        envoy_id = f"5b0e7c2a-1f3d-4e6b-9a8c-{index:012d}" if self.envoy_ids else None
        self._append(
            *gw,
            gateway_line(
                request,
                status=self.status,
                duration=9,
                upstream=8,
                authority=HOST,
                cluster=LOCAL_CLUSTER,
                request_id=envoy_id,
            ),
        )
        self._append(
            *gw,
            gateway_line(
                request,
                status=self.status,
                duration=7,
                upstream=7,
                authority=f"{entry}.{NAMESPACE}.svc.cluster.local",
                cluster=f"outbound|80||{entry_revision}.{NAMESPACE}.svc.cluster.local",
                request_id=envoy_id,
            ),
        )
        if self.transformer:
            self._append(
                NAMESPACE, TRANSFORMER_POD, "queue-proxy", queue_line(request, status=self.status, latency_s=0.0065)
            )
            self._append(
                *gw,
                gateway_line(
                    request,
                    status=200,
                    duration=3,
                    upstream=3,
                    authority=f"sklearn-iris-predictor.{NAMESPACE}",
                    cluster=f"outbound|80||{revision}.{NAMESPACE}.svc.cluster.local",
                    request_id=envoy_id,
                    user_agent="python-httpx/0.28.1",
                ),
            )
        self._append(NAMESPACE, predictor_pod, "queue-proxy", queue_line(request, status=200, latency_s=0.0025))
        if self.server_lines:
            self._append(NAMESPACE, predictor_pod, "kserve-container", trace_line(request, 0.356))
        headers = dict(self.headers)
        headers["x-envoy-upstream-service-time"] = "8"
        return httpx.Response(self.status, content=self.body, headers=headers)


def envoy_answer(
    root: Path,
    status: int,
    body: bytes,
    *,
    flags: str,
    details: str,
    upstream_cluster: str = "-",
    authority: str = HOST,
    duration: int = 1,
) -> Callable[[httpx.Request], httpx.Response]:
    """Istio's Envoy answering itself (no route, no upstream): its own line, `server: istio-envoy`, no upstream time."""

    def answer(request: httpx.Request) -> httpx.Response:
        line = gateway_line(
            request,
            status=status,
            flags=flags,
            details=details,
            duration=duration,
            upstream=None,
            authority=authority,
            cluster=upstream_cluster,
        )
        with (root / "logs" / "istio-system" / GATEWAY_POD / "istio-proxy.log").open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        headers = {"server": "istio-envoy", "date": "Fri, 21 Aug 2026 09:31:02 GMT"}
        if body:
            headers["content-type"] = "text/plain"
        return httpx.Response(status, content=body, headers=headers)

    return answer
