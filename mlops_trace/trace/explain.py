"""Which hop a failed request died at, and what its answer says there: what no check can know, because only the
sender saw the answer and its timing. Why it failed is the checks' to say: `request` records the exchange into the
Snapshot and runs the catalog on it, as `doctor` does on a bundle with `requests/`.

The shape of the answer tells the origins apart (SELDON-FACTS §1.5): Envoy's own 404 for no route has an empty
body and neither `x-seldon-route` nor `x-envoy-upstream-service-time` (gRPC: UNIMPLEMENTED); the agent's
`404 page not found` comes *with* `x-seldon-route`; MLServer answers `{"error":"Model … not found"}`; ingress-nginx's
default backend answers for a host or path no Ingress rule matches. The access-log lines of the request and the
reconstructed path add evidence.
"""

from __future__ import annotations

import json

from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    UPSTREAM_TIME_HEADER,
    experiment_of_route_value,
    lua_effective_headers,
    route_models,
    select_route,
    split_versioned,
)
from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.path import RequestPath
from mlops_trace.trace.record import ErrorKind, Exchange, Failure
from mlops_trace.trace.target import Target

INGRESS_NO_MATCH = "ingress-no-match"
UNREACHABLE = "unreachable"
NO_ANSWER = "timeout"
NO_ROUTE = "no-route"
NO_CLUSTER = "no-cluster"
AGENT_CANNOT_SERVE = "agent-cannot-serve"
MODEL_NOT_FOUND = "model-not-found"
UPSTREAM_TIMEOUT = "upstream-timeout"


def _answer_evidence(exchange: Exchange) -> Evidence:
    shown = {
        k: exchange.headers[k]
        for k in ("server", STICKY_HEADER, UPSTREAM_TIME_HEADER, "content-length")
        if k in exchange.headers
    }
    body = exchange.body[:120].decode("utf-8", "replace").strip() or "(empty body)"
    status = exchange.outcome()
    return Evidence(f"response to {exchange.request_id}", evidence_line(f"{status}, headers {shown}, body {body!r}"))


def _log_evidence(found: Found | None) -> list[Evidence]:
    return [Evidence(found.where, evidence_line(found.line))] if found is not None else []


def _is_default_backend(exchange: Exchange, nginx: Found | None, path: RequestPath | None) -> bool:
    if UPSTREAM_TIME_HEADER in exchange.headers or STICKY_HEADER in exchange.headers:
        return False
    if nginx is not None and nginx.nginx is not None:
        record = nginx.nginx
        if record.proxy_upstream_name and "default-backend" in record.proxy_upstream_name:
            return True
        return bool(not record.upstream_addrs)
    body = exchange.body.lower()
    if b"default backend" in body or (b"<html" in body and b"nginx" in body):
        return True
    return path is not None and path.ingress_matched is False


def explain(
    exchange: Exchange,
    target: Target,
    path: RequestPath | None,
    snap: Snapshot | None,
    nginx: Found | None = None,
    envoy: Found | None = None,
    ingress_error: Found | None = None,
) -> Failure | None:
    """The failure of `exchange`, or None when it succeeded. `ingress_error` is the ingress controller's error-log
    line for this request, when there is one: it says why the ingress answered 502 or 504."""
    if exchange.ok:
        return None
    logs = _log_evidence(nginx) + _log_evidence(envoy)
    answer = [_answer_evidence(exchange)]
    if exchange.error_kind is ErrorKind.CONNECT:
        return Failure(
            1,
            UNREACHABLE,
            f"could not connect to {exchange.url}: {exchange.error}",
            (Evidence(exchange.url, exchange.error or "connection failed"),),
        )
    if exchange.error_kind is ErrorKind.TLS:
        return Failure(
            2,
            "tls",
            f"TLS handshake with {exchange.url} failed: {exchange.error}",
            (Evidence(exchange.url, exchange.error or "TLS failed"),),
        )
    if exchange.error_kind in (ErrorKind.TIMEOUT, ErrorKind.PROTOCOL):
        hop = 2 if nginx is None else (6 if envoy is not None and envoy.envoy and envoy.envoy.upstream_host else 4)
        return Failure(
            hop,
            NO_ANSWER if exchange.error_kind is ErrorKind.TIMEOUT else "protocol",
            f"{exchange.error} ({exchange.url}); the last hop with a trace of it is hop {hop}",
            tuple([Evidence(exchange.url, exchange.error or "")] + logs),
        )
    if exchange.grpc_status is not None:
        return _explain_grpc(exchange, target, path, snap, logs)
    status = exchange.status or 0
    has_route = STICKY_HEADER in exchange.headers
    body = exchange.body
    if status == 404:
        if has_route and b"404 page not found" in body:
            summary = (
                f"the agent answered 404 `404 page not found` for {exchange.route}: it could not serve the model, "
                "although Envoy routes to it"
            )
            return Failure(6, AGENT_CANNOT_SERVE, summary, tuple(answer + logs))
        if has_route and b"not found" in body.lower():
            summary = f"MLServer does not know the model: {_error_text(body)}"
            return Failure(7, MODEL_NOT_FOUND, summary, tuple(answer + logs))
        if _is_default_backend(exchange, nginx, path):
            return _ingress_no_match(exchange, target, path, logs)
        return _no_route(exchange, target, path, snap, logs)
    if status in (502, 503, 504) and not has_route:
        flags = envoy.envoy.response_flags if envoy is not None and envoy.envoy is not None else ()
        if "NC" in flags:
            return Failure(5, NO_CLUSTER, f"Envoy has no cluster for the route ({status} NC)", tuple(answer + logs))
        if "UT" in flags:
            summary = f"the server pod did not answer within Envoy's route timeout ({status} UT)"
            return Failure(6, UPSTREAM_TIMEOUT, summary, tuple(answer + logs))
        if "UH" in flags or "UF" in flags or b"no healthy upstream" in body:
            return Failure(
                6, "no-healthy-upstream", f"Envoy found no healthy agent endpoint ({status})", tuple(answer + logs)
            )
        if UPSTREAM_TIME_HEADER not in exchange.headers and exchange.headers.get("server") != "envoy":
            summary = f"the ingress could not get an answer from its backend ({status})"
            evidence = answer + logs
            if ingress_error is not None and ingress_error.nginx_error is not None:
                cause = ingress_error.nginx_error.cause
                upstream = ingress_error.nginx_error.upstream
                summary += f": {cause.summary if cause else ingress_error.nginx_error.message}"
                summary += f" (upstream {upstream})" if upstream else ""
                evidence.append(Evidence(ingress_error.where, evidence_line(ingress_error.line)))
            return Failure(3, "ingress-upstream", summary, tuple(evidence))
        return Failure(
            4, "envoy-upstream", f"Envoy could not get an answer from the agent ({status})", tuple(answer + logs)
        )
    if has_route:
        hop = 7 if body.lstrip().startswith(b"{") else 6
        return Failure(
            hop,
            f"http-{status}",
            f"the {'model server' if hop == 7 else 'agent'} answered {status}: {_error_text(body)}",
            tuple(answer + logs),
        )
    ingress_alone = nginx is not None and nginx.nginx is not None and not nginx.nginx.upstream_addrs
    envoy_seen = exchange.headers.get("server") == "envoy" or UPSTREAM_TIME_HEADER in exchange.headers
    if ingress_alone or (nginx is None and not envoy_seen and exchange.headers.get("server", "").startswith("nginx")):
        summary = f"the ingress answered {status} itself, without passing the request on"
        if status == 421 and (exchange.http_version or "").upper().startswith("HTTP/2"):
            summary += (
                f": over HTTP/2 NGINX sends 421 when the server block for Host {target.authority} does not have "
                "`http2 on` for this address while another server on it does, or when the TLS name (SNI) is "
                "another host's; send without --http2, or enable HTTP/2 for that server"
            )
        return Failure(2, f"http-{status}", summary, tuple(answer + logs))
    return Failure(4, f"http-{status}", f"answered {status} before reaching a model", tuple(answer + logs))


def _error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])[:200]
    return body[:200].decode("utf-8", "replace")


def _ingress_no_match(exchange: Exchange, target: Target, path: RequestPath | None, logs: list[Evidence]) -> Failure:
    extra: list[Evidence] = []
    if path is not None:
        extra.extend(path.hops[2].evidence)
    summary = (
        f"ingress-nginx answered 404 from its default backend: Host {target.authority!r} and path "
        f"{target.infer_path} matched no Ingress rule"
    )
    return Failure(2, INGRESS_NO_MATCH, summary, (_answer_evidence(exchange), *extra, *logs))


def _names(snap: Snapshot | None, kind: str, namespace: str | None) -> set[str]:
    if snap is None:
        return set()
    objects = snap.objects_of(kind, namespace) if namespace else snap.objects_of(kind)
    return {obj.name for obj in objects}


def _no_route(
    exchange: Exchange, target: Target, path: RequestPath | None, snap: Snapshot | None, logs: list[Evidence]
) -> Failure:
    """Envoy's own 404: no route took the request's headers. Which of them was wrong is the checks' to say (a
    missing experiment header, a stale sticky route, a versioned name, a route Envoy lacks); here, what was sent, and
    whether it names anything that exists."""
    sent = target.header_map()
    envoy_path = path.upstream_path if path is not None and path.upstream_path else target.infer_path
    effective = dict(path.route_headers) if path is not None else lua_effective_headers(envoy_path, sent, False)
    seldon_model = effective.get(SELDON_MODEL)
    namespace = path.namespace if path is not None else None
    evidence = [_answer_evidence(exchange), *(path.hops[4].evidence if path is not None else ()), *logs]
    lua = SELDON_MODEL not in {k.lower() for k in sent} and SELDON_MODEL in effective
    how = f"{SELDON_MODEL}: {seldon_model}" if seldon_model else f"no {SELDON_MODEL} header"
    how += " (set by the Lua filter from the path)" if lua else ""
    if STICKY_HEADER in sent:
        without = {k: v for k, v in effective.items() if k != STICKY_HEADER}
        routable = None
        if path is not None and path.envoy_config is not None:
            routable = select_route(path.envoy_config, target.authority, envoy_path, without)
        reason = f"; without it route {routable.name} would take the request" if routable is not None else ""
        summary = (
            f"Envoy answered 404 (no route) for {how} with {STICKY_HEADER}: {sent[STICKY_HEADER]}, which no "
            f"sticky route matches{reason}"
        )
        return Failure(4, NO_ROUTE, summary, tuple(evidence))
    experiments = _names(snap, "Experiment", namespace)
    models = _names(snap, "Model", namespace)
    experiment = experiment_of_route_value(seldon_model)
    if experiment is not None:
        if snap is not None and experiments and experiment not in experiments:
            summary = f"Envoy answered 404 (no route): there is no Experiment {experiment} ({how})"
            return Failure(4, "unknown-experiment", summary, tuple(evidence))
    else:
        base = seldon_model or target.name
        known = models | experiments | {split_versioned(name)[0] for name in models}
        if snap is not None and known and base not in known and split_versioned(base)[0] not in known:
            summary = f"Envoy answered 404 (no route): no Model or Experiment named {base} in the snapshot ({how})"
            return Failure(4, "unknown-model", summary, tuple(evidence))
    return Failure(4, NO_ROUTE, f"Envoy answered 404 (no route) for {how}", tuple(evidence))


def _explain_grpc(
    exchange: Exchange, target: Target, path: RequestPath | None, snap: Snapshot | None, logs: list[Evidence]
) -> Failure:
    status = exchange.grpc_status or "UNKNOWN"
    answer = [_answer_evidence(exchange)]
    if status == "UNIMPLEMENTED":
        # Envoy's no-route 404 reaches a gRPC client as UNIMPLEMENTED (SELDON-FACTS §1.5).
        return _no_route(exchange, target, path, snap, logs)
    if status == "NOT_FOUND":
        served = route_models(exchange.route)
        model = split_versioned(served[0])[0] if served else target.name
        summary = f"the agent or MLServer does not know model {model}: {exchange.grpc_message}"
        return Failure(6, MODEL_NOT_FOUND, summary, tuple(answer + logs))
    if status == "UNAVAILABLE":
        return Failure(3, "unavailable", f"gRPC UNAVAILABLE: {exchange.grpc_message}", tuple(answer + logs))
    hop = 7 if exchange.route else 4
    return Failure(hop, f"grpc-{status.lower()}", f"gRPC {status}: {exchange.grpc_message}", tuple(answer + logs))
