"""Which hop a failed request to an InferenceService died at, from the shape of its answer (KSERVE-FACTS §4.3) and
the gateway's access-log lines of the request: what only the sender saw. Why it failed is the catalog's to say, from
the recorded request.

- Istio's Envoy, no route for the Host/path: 404, empty body, `server: istio-envoy`, no upstream service time (`NR`,
  `route_not_found`; envoyproxy/envoy source/common/router/router.cc) → the gateway whose line says so (the ingress
  gateway, or the local gateway for a component Host).
- Envoy, no healthy upstream: 503 `no healthy upstream` (`UH`/`NC`); connect failure: 503 `upstream connect error or
  disconnect/reset before headers…` (`UF`/`URX`) → the hop whose upstream cluster failed (the local gateway, or the
  revision).
- Envoy's route timeout: 504 `upstream request timeout` (`UT`).
- Knative: queue-proxy's 504 `request timeout` (the revision's timeout), the activator's 504 `activator request
  timeout`, queue-proxy's 502 with Go's dial error when the container refuses (knative/serving 98e5ef9
  pkg/queue/sharedmain/handlers.go, cmd/activator/main.go, vendored knative.dev/pkg/network/error_handler.go).
- The model server: JSON bodies, `{"error":"Model with name X does not exist."}` 404 (kserve/errors.py ModelNotFound),
  400/422/500; a transformer's `{"error":"ConnectError : …"}` / `HTTPStatusError : …` 500 when its call to the
  predictor fails (kserve 0.21.0 `kserve/model.py`, measured in KSERVE-FACTS §5.3).
"""

from __future__ import annotations

import json
import re
from typing import Protocol

from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.trace.kserve.hops import Hop
from mlops_trace.trace.kserve.logs import GatewayLine, RequestLines
from mlops_trace.trace.kserve.path import KPath
from mlops_trace.trace.record import ErrorKind, Exchange, Failure
from mlops_trace.trace.target import Target

UNREACHABLE = "unreachable"
NO_ROUTE = "no-route"
NO_HEALTHY_UPSTREAM = "no-healthy-upstream"
UPSTREAM_CONNECT = "upstream-connect"
GATEWAY_TIMEOUT = "upstream-timeout"
REVISION_TIMEOUT = "revision-timeout"
ACTIVATOR_TIMEOUT = "activator-timeout"
CONTAINER_REFUSED = "container-refused"
MODEL_NOT_FOUND = "model-not-found"
TRANSFORMER_UPSTREAM = "transformer-upstream"
UPSTREAM_TIME = "x-envoy-upstream-service-time"
_WRAPPED_STATUS = re.compile(r"'(\d{3}) [A-Za-z ]+'")
_TRANSFORMER_ERRORS = ("ConnectError", "HTTPStatusError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError")


def _answer(exchange: Exchange) -> Evidence:
    shown = {k: exchange.headers[k] for k in ("server", UPSTREAM_TIME, "content-type") if k in exchange.headers}
    body = exchange.body[:160].decode("utf-8", "replace").strip() or "(empty body)"
    return Evidence(
        f"response to {exchange.request_id}", evidence_line(f"{exchange.outcome()}, headers {shown}, body {body!r}")
    )


def _lines(lines: RequestLines) -> list[Evidence]:
    return [Evidence(line.where, evidence_line(line.record.raw)) for line in lines.gateway]


def error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(document, dict):
        for key in ("error", "detail"):
            if key in document:
                return str(document[key])[:200]
    return body[:200].decode("utf-8", "replace")


def _failing_line(lines: RequestLines) -> GatewayLine | None:
    """The gateway line that did not end `via_upstream`: the pass through the gateway pods that failed (the last
    failing one: an inner failure is passed outwards by the outer passes)."""
    failing = [
        line
        for line in lines.gateway
        if line.record.response_flags or (line.record.response_code_details not in (None, "via_upstream"))
    ]
    return failing[-1] if failing else None


def _hop_of_line(path: KPath, line: GatewayLine | None, isvc_host: str | None) -> Hop:
    """The gateway pass a line belongs to: the ingress gateway (the client's Host) or the local gateway routing to a
    component (its `<isvc>-<component>` Host)."""
    if line is None:
        return Hop.GATEWAY
    authority = (line.record.authority or "").lower()
    if isvc_host and authority.split(":", 1)[0] == isvc_host.lower():
        return Hop.GATEWAY
    if "knative-local-gateway" in (line.record.upstream_cluster or ""):
        return Hop.GATEWAY  # the ingress gateway's pass (its line shows the Host KServe's VirtualService set)
    if "-predictor." in authority and path.isvc.transformer:
        return Hop.PREDICTOR_ROUTE
    return Hop.KNATIVE_ROUTE


def _cluster_hop(path: KPath, line: GatewayLine | None, pass_hop: Hop) -> Hop:
    """Where an upstream failure sits: a cluster of the local gateway is the Knative route's; a revision's is the
    revision pod's queue-proxy (or the predictor route's, behind a transformer)."""
    cluster = (line.record.upstream_cluster or "") if line is not None else ""
    if "knative-local-gateway" in cluster or pass_hop is Hop.GATEWAY:
        return Hop.KNATIVE_ROUTE
    if pass_hop is Hop.PREDICTOR_ROUTE:
        return Hop.PREDICTOR_ROUTE
    return Hop.QUEUE_PROXY


def explain(exchange: Exchange, target: Target, path: KPath, lines: RequestLines) -> Failure | None:
    """The failure of `exchange` placed at its hop of `path`, or None when it succeeded."""
    if exchange.ok:
        return None
    answer = [_answer(exchange)]
    logs = _lines(lines)

    def at(key: Hop, code: str, summary: str, extra: tuple[Evidence, ...] = ()) -> Failure:
        hop = path.hop(key)
        shown = tuple(hop.evidence) if hop is not None else ()
        return Failure(path.number(key), code, summary, (*answer, *extra, *logs, *shown))

    if exchange.error_kind is ErrorKind.CONNECT:
        return Failure(
            path.number(Hop.EXTERNAL_IP),
            UNREACHABLE,
            f"could not connect to {exchange.url}: {exchange.error}",
            (Evidence(exchange.url, exchange.error or "connection failed"),),
        )
    if exchange.error_kind is ErrorKind.TLS:
        return at(Hop.GATEWAY, "tls", f"TLS handshake with {exchange.url} failed: {exchange.error}")
    if exchange.error_kind in (ErrorKind.TIMEOUT, ErrorKind.PROTOCOL):
        key = Hop.SERVER if lines.queue else (Hop.KNATIVE_ROUTE if lines.gateway else Hop.GATEWAY)
        code = "timeout" if exchange.error_kind is ErrorKind.TIMEOUT else "protocol"
        return at(
            key,
            code,
            f"{exchange.error} ({exchange.url}); the last hop with a trace of it is {path.number(key)} {key.value}",
        )
    if exchange.grpc_status is not None:
        return _grpc(exchange, path, lines, at)
    return _http(exchange, target, path, lines, at)


def _http(exchange: Exchange, target: Target, path: KPath, lines: RequestLines, at: _At) -> Failure:
    status = exchange.status or 0
    body = exchange.body.strip()
    text = body.decode("utf-8", "replace")
    lowered = text.lower()
    line = _failing_line(lines)
    flags = set(line.record.response_flags) if line is not None else set()
    pass_hop = _hop_of_line(path, line, target.host_header)
    proxied = UPSTREAM_TIME in exchange.headers
    if status == 504 and lowered == "request timeout":
        return at(
            Hop.QUEUE_PROXY,
            REVISION_TIMEOUT,
            "queue-proxy answered 504 `request timeout`: the model did not answer within the revision's timeout",
        )
    if status == 504 and lowered == "activator request timeout":
        return at(
            Hop.ACTIVATOR,
            ACTIVATOR_TIMEOUT,
            "the activator answered 504: no pod of the revision became ready to take the request in time",
        )
    if status == 504 and ("UT" in flags or lowered == "upstream request timeout"):
        return at(pass_hop, GATEWAY_TIMEOUT, f"Istio's Envoy gave up waiting (504 UT) at {pass_hop.value}")
    if status == 404 and not body and (not proxied or "NR" in flags):
        key = pass_hop if "NR" in flags else Hop.GATEWAY
        return at(
            key,
            NO_ROUTE,
            f"Istio's Envoy answered 404 with an empty body: no VirtualService route takes Host "
            f"{target.authority if key is Hop.GATEWAY else (line.record.authority if line else '?')} "
            f"and path {target.infer_path} ({'NR' if flags else 'no upstream time: Envoy answered itself'})",
        )
    if status in (500, 503) and (flags & {"UH", "NC"} or lowered == "no healthy upstream"):
        key = _cluster_hop(path, line, pass_hop)
        cluster = line.record.upstream_cluster if line is not None else None
        return at(
            key,
            NO_HEALTHY_UPSTREAM,
            f"Istio's Envoy had no healthy endpoint for "
            f"{cluster or 'the route destination'} ({status} {','.join(sorted(flags)) or 'no healthy upstream'})",
        )
    if status in (502, 503) and (flags & {"UF", "URX", "UC", "UR", "LR"} or lowered.startswith("upstream connect")):
        key = _cluster_hop(path, line, pass_hop)
        cluster = line.record.upstream_cluster if line is not None else None
        return at(
            key,
            UPSTREAM_CONNECT,
            f"Istio's Envoy could not connect to {cluster or 'the upstream'} "
            f"({status} {','.join(sorted(flags)) or 'upstream connect error'}): {text[:160]}",
        )
    if status == 502 and ("dial tcp" in lowered or "connection refused" in lowered) and not body.startswith(b"{"):
        return at(
            Hop.SERVER, CONTAINER_REFUSED, f"queue-proxy answered 502: the serving container refused it ({text[:120]})"
        )
    if body.startswith(b"{"):
        return _model_server(status, body, path, at)
    return at(
        Hop.GATEWAY if not proxied else Hop.SERVER,
        f"http-{status}",
        f"answered {status}: {text[:160] or '(empty body)'}",
    )


def _model_server(status: int, body: bytes, path: KPath, at: _At) -> Failure:
    message = error_text(body)
    transformer = path.isvc.transformer
    if transformer and message.startswith("HTTPStatusError"):
        # httpx's `Client error '404 Not Found' for url …` / `Server error '504 Gateway Timeout' …`, wrapped by the
        # transformer's 500: the predictor side answered that status to the transformer.
        inner = _WRAPPED_STATUS.search(message)
        code = int(inner.group(1)) if inner else 0
        if code == 504:
            return at(
                Hop.PREDICTOR_ROUTE,
                REVISION_TIMEOUT,
                "the predictor's side answered the transformer 504 (its "
                f"queue-proxy's revision timeout, or the gateway's): {message}",
            )
        if code == 404:
            return at(
                Hop.SERVER,
                MODEL_NOT_FOUND,
                f"the predictor does not serve the model the transformer asks for: {message}",
            )
        if code in (502, 503):
            return at(
                Hop.PREDICTOR_ROUTE,
                UPSTREAM_CONNECT,
                f"the transformer's call could not reach a predictor pod ({code}): {message}",
            )
        return at(Hop.MODEL, f"http-{code or status}", f"the predictor failed the transformer's call: {message}")
    if transformer and message.startswith(_TRANSFORMER_ERRORS):
        return at(
            Hop.TRANSFORMER,
            TRANSFORMER_UPSTREAM,
            f"the transformer's call to the predictor failed ({status}): {message}",
        )
    server = Hop.TRANSFORMER if transformer else Hop.SERVER
    if status == 404 and "does not exist" in message:
        return at(
            server,
            MODEL_NOT_FOUND,
            f"the {'transformer' if transformer else 'model server'} does not serve this model: {message}",
        )
    if status in (400, 422):
        return at(
            server,
            f"http-{status}",
            f"the {'transformer' if transformer else 'model server'} refused the request body ({status}): {message}",
        )
    return at(
        Hop.MODEL if not transformer else server,
        f"http-{status}",
        f"the {'transformer' if transformer else 'model'} failed ({status}): {message}",
    )


def _grpc(exchange: Exchange, path: KPath, lines: RequestLines, at: _At) -> Failure:
    status = exchange.grpc_status or "UNKNOWN"
    message = exchange.grpc_message or ""
    if status == "UNIMPLEMENTED":
        # grpc-core turns any HTTP 404 into UNIMPLEMENTED: Envoy's own (no route) or a server's that speaks no gRPC
        # on that port; the gateway's line tells them apart (`via_upstream`), the answer does not.
        if any(g.record.status == 404 and g.record.response_code_details == "via_upstream" for g in lines.gateway):
            key = Hop.TRANSFORMER if path.isvc.transformer else Hop.SERVER
            return at(
                key,
                "grpc-not-served",
                f"gRPC UNIMPLEMENTED: the {key.value} answered HTTP 404 to the gRPC "
                f"call: it serves no gRPC on the port the revision exposes ({message})",
            )
        return at(
            Hop.GATEWAY,
            NO_ROUTE,
            f"gRPC UNIMPLEMENTED: an HTTP 404 — Istio's Envoy found no route for the call, "
            f"or a server behind it speaks no gRPC (no gateway line of the call says which) ({message})",
        )
    if status == "NOT_FOUND":
        return at(Hop.SERVER, MODEL_NOT_FOUND, f"the model server does not serve this model: {message}")
    if status == "UNAVAILABLE":
        return at(Hop.KNATIVE_ROUTE, "unavailable", f"gRPC UNAVAILABLE: {message}")
    if status == "DEADLINE_EXCEEDED":
        return at(Hop.QUEUE_PROXY, "timeout", f"gRPC DEADLINE_EXCEEDED: {message}")
    return at(Hop.MODEL, f"grpc-{status.lower()}", f"gRPC {status}: {message}")


class _At(Protocol):
    """The signature of `explain`'s local `at`: place a failure at a hop."""

    def __call__(self, key: Hop, code: str, summary: str, extra: tuple[Evidence, ...] = ()) -> Failure: ...
