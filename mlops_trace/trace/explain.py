"""Why a request failed, said at the hop where it failed, with the check id that covers it.

The shape of the answer tells the origins apart (SELDON-FACTS §1.5): Envoy's own 404 for no route has an empty
body and neither `x-seldon-route` nor `x-envoy-upstream-service-time` (gRPC: UNIMPLEMENTED); the agent's
`404 page not found` comes *with* `x-seldon-route`; MLServer answers `{"error":"Model … not found"}`; ingress-nginx's
default backend answers for a host or path no Ingress rule matches. The access-log lines of the request and the
reconstructed path add evidence and settle which id applies: a sticky header no route takes (MT307), an Experiment
reached without `<exp>.experiment` (MT301), no route for a Model or Experiment that exists (MT302), a loaded-looking
model the agent cannot serve (MT108).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlops_trace.errors import UsageError
from mlops_trace.findings import CheckId, Evidence, Finding, Severity
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.path import RequestPath, select_route, split_versioned
from mlops_trace.trace.record import ErrorKind, Exchange, Failure
from mlops_trace.trace.target import SELDON_MODEL, STICKY_HEADER, Target, lua_effective_headers

INGRESS_NO_MATCH = "ingress-no-match"
UNREACHABLE = "unreachable"
NO_ANSWER = "timeout"


@dataclass(frozen=True)
class _Meta:
    slug: str
    severity: Severity
    title: str
    playbook: str
    fix: str


# Used when the check catalog does not (yet) define an id; the catalog's own metadata wins when it does.
_FALLBACK: Mapping[str, _Meta] = {
    "MT108": _Meta(
        "ready-but-not-served",
        Severity.CRITICAL,
        "Model or Experiment is Ready but not served",
        "models-not-loading",
        "Look at the agent log for `Cannot load model`; reload the model.",
    ),
    "MT301": _Meta(
        "seldon-model-header-missing",
        Severity.WARNING,
        "Requests to an Experiment lack the seldon-model: <exp>.experiment header",
        "envoy-404",
        "Send `seldon-model: <experiment>.experiment` with every request to the Experiment.",
    ),
    "MT302": _Meta(
        "envoy-route-missing",
        Severity.CRITICAL,
        "Envoy has no route for a Ready Model or Experiment",
        "envoy-404",
        "Make the scheduler push routes again (re-apply the resource, restart the scheduler).",
    ),
    "MT303": _Meta(
        "envoy-split-mismatch",
        Severity.WARNING,
        "Envoy's traffic split for an Experiment differs from its weights",
        "traffic-not-splitting",
        "Re-apply the Experiment so the scheduler rebuilds routes.",
    ),
    "MT306": _Meta(
        "model-name-version-suffix",
        Severity.WARNING,
        "A path names <model>_<version> where the route knows <model> (or the reverse)",
        "envoy-404",
        "Call the model by the name its route uses.",
    ),
    "MT307": _Meta(
        "stale-sticky-route",
        Severity.WARNING,
        "Requests carry an x-seldon-route that no sticky route matches",
        "envoy-404",
        "Drop the stored x-seldon-route and resend without it.",
    ),
    "MT403": _Meta(
        "split-imbalance",
        Severity.WARNING,
        "Observed traffic split deviates from the configured weights",
        "traffic-not-splitting",
        "Compare Envoy's weights with the Experiment's; re-apply the Experiment.",
    ),
}


def make_finding(
    check_id: str, *, namespace: str | None, object: str, message: str, evidence: Iterable[Evidence]
) -> Finding:
    """A Finding with the catalog's metadata for `check_id` (our fallback when the catalog lacks it)."""
    try:
        from mlops_trace.analysis.catalog import find_entry

        check = find_entry(check_id).check
        return check.finding(namespace=namespace, object=object, message=message, evidence=evidence)
    except (UsageError, RuntimeError, OSError):
        meta = _FALLBACK[check_id]
        return Finding(
            CheckId(check_id),
            meta.slug,
            meta.severity,
            meta.title,
            message,
            namespace,
            object,
            tuple(evidence),
            meta.playbook,
            meta.fix,
        )


def _answer_evidence(exchange: Exchange) -> Evidence:
    shown = {
        k: exchange.headers[k]
        for k in ("server", "x-seldon-route", "x-envoy-upstream-service-time", "content-length")
        if k in exchange.headers
    }
    body = exchange.body[:120].decode("utf-8", "replace").strip() or "(empty body)"
    status = exchange.outcome()
    return Evidence(f"response to {exchange.request_id}", f"{status}, headers {shown}, body {body!r}")


def _log_evidence(found: Found | None) -> list[Evidence]:
    return [Evidence(found.where, found.line[:300])] if found is not None else []


def _is_default_backend(exchange: Exchange, nginx: Found | None, path: RequestPath | None) -> bool:
    if "x-envoy-upstream-service-time" in exchange.headers or STICKY_HEADER in exchange.headers:
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
            return _agent_cannot_load(exchange, path, logs)
        if has_route and b"not found" in body.lower():
            return _mlserver_not_found(exchange, path, logs)
        if _is_default_backend(exchange, nginx, path):
            return _ingress_no_match(exchange, target, path, logs)
        return _no_route(exchange, target, path, snap, logs)
    if status in (502, 503, 504) and not has_route:
        flags = envoy.envoy.response_flags if envoy is not None and envoy.envoy is not None else ()
        if "NC" in flags:
            return _with_finding(
                5,
                "MT108",
                f"Envoy has no cluster for the route ({status} NC)",
                exchange,
                path,
                logs,
                object_=_route_object(path, target),
            )
        if "UH" in flags or "UF" in flags or b"no healthy upstream" in body:
            return Failure(
                6,
                "no-healthy-upstream",
                f"Envoy found no healthy agent endpoint ({status})",
                tuple([_answer_evidence(exchange)] + logs),
            )
        if "x-envoy-upstream-service-time" not in exchange.headers and exchange.headers.get("server") != "envoy":
            summary = f"the ingress could not get an answer from its backend ({status})"
            evidence = [_answer_evidence(exchange)] + logs
            if ingress_error is not None and ingress_error.nginx_error is not None:
                cause = ingress_error.nginx_error.cause
                upstream = ingress_error.nginx_error.upstream
                summary += f": {cause.summary if cause else ingress_error.nginx_error.message}"
                summary += f" (upstream {upstream})" if upstream else ""
                evidence.append(Evidence(ingress_error.where, ingress_error.line.strip()[:300]))
            return Failure(3, "ingress-upstream", summary, tuple(evidence))
        return Failure(
            4,
            "envoy-upstream",
            f"Envoy could not get an answer from the agent ({status})",
            tuple([_answer_evidence(exchange)] + logs),
        )
    if has_route:
        hop = 7 if body.lstrip().startswith(b"{") else 6
        return Failure(
            hop,
            f"http-{status}",
            f"the {'model server' if hop == 7 else 'agent'} answered {status}: {_error_text(body)}",
            tuple([_answer_evidence(exchange)] + logs),
        )
    ingress_alone = nginx is not None and nginx.nginx is not None and not nginx.nginx.upstream_addrs
    envoy_seen = exchange.headers.get("server") == "envoy" or "x-envoy-upstream-service-time" in exchange.headers
    if ingress_alone or (nginx is None and not envoy_seen and exchange.headers.get("server", "").startswith("nginx")):
        summary = f"the ingress answered {status} itself, without passing the request on"
        if status == 421 and (exchange.http_version or "").upper().startswith("HTTP/2"):
            summary += (
                f": over HTTP/2 NGINX sends 421 when the server block for Host {target.authority} does not have "
                "`http2 on` for this address while another server on it does, or when the TLS name (SNI) is "
                "another host's; send without --http2, or enable HTTP/2 for that server"
            )
        return Failure(2, f"http-{status}", summary, tuple([_answer_evidence(exchange)] + logs))
    return Failure(
        4, f"http-{status}", f"answered {status} before reaching a model", tuple([_answer_evidence(exchange)] + logs)
    )


def _error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])[:200]
    return body[:200].decode("utf-8", "replace")


def _route_object(path: RequestPath | None, target: Target) -> str:
    if path is not None and path.experiment is not None:
        return path.experiment.ref
    return f"Experiment/{target.name}" if target.is_experiment else f"Model/{target.name}"


def _with_finding(
    hop: int,
    check_id: str,
    summary: str,
    exchange: Exchange,
    path: RequestPath | None,
    logs: list[Evidence],
    *,
    object_: str,
    extra: Iterable[Evidence] = (),
) -> Failure:
    evidence = (_answer_evidence(exchange), *extra, *logs)
    finding = make_finding(
        check_id, namespace=path.namespace if path else None, object=object_, message=summary, evidence=evidence
    )
    return Failure(hop, check_id, summary, evidence, finding)


def _agent_cannot_load(exchange: Exchange, path: RequestPath | None, logs: list[Evidence]) -> Failure:
    served = exchange.route or "?"
    summary = (
        f"the agent answered 404 `404 page not found` for {served}: it could not load the model, although "
        "Envoy routes to it"
    )
    model = split_versioned(served.strip(":").split(":")[0])[0] if exchange.route else "?"
    return _with_finding(6, "MT108", summary, exchange, path, logs, object_=f"Model/{model}")


def _mlserver_not_found(exchange: Exchange, path: RequestPath | None, logs: list[Evidence]) -> Failure:
    summary = f"MLServer does not know the model: {_error_text(exchange.body)}"
    model = split_versioned((exchange.route or ":?:").strip(":").split(":")[0])[0]
    return _with_finding(7, "MT108", summary, exchange, path, logs, object_=f"Model/{model}")


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
    """Envoy's own 404: no route took the request's headers. Which id depends on what was sent."""
    sent = target.header_map()
    envoy_path = path.upstream_path if path is not None and path.upstream_path else target.infer_path
    effective = dict(path.route_headers) if path is not None else lua_effective_headers(envoy_path, sent, False)
    seldon_model = effective.get(SELDON_MODEL)
    namespace = path.namespace if path is not None else None
    extra: list[Evidence] = list(path.hops[4].evidence) if path is not None else []
    experiments = _names(snap, "Experiment", namespace)
    models = _names(snap, "Model", namespace)
    lua = SELDON_MODEL not in {k.lower() for k in sent} and SELDON_MODEL in effective
    how = f"{SELDON_MODEL}: {seldon_model}" + (" (set by the Lua filter from the path)" if lua else "")
    if STICKY_HEADER in sent:
        without = {k: v for k, v in effective.items() if k != STICKY_HEADER}
        routable = None
        if path is not None and path.envoy_config is not None:
            routable = select_route(path.envoy_config, target.authority, envoy_path, without)
        reason = f"; without it route {routable.name} would take the request" if routable is not None else ""
        summary = (
            f"Envoy answered 404 (no route): the request carries {STICKY_HEADER}: {sent[STICKY_HEADER]}, "
            f"which no sticky route of {how} matches{reason}"
        )
        return _with_finding(
            4, "MT307", summary, exchange, path, logs, object_=_route_object(path, target), extra=extra
        )
    base = seldon_model or target.name
    if seldon_model is None or not seldon_model.endswith(".experiment"):
        if (base in experiments and base not in models) or (target.is_experiment and not experiments):
            summary = (
                f"Envoy answered 404 (no route): {base} is an Experiment, but the request reached Envoy with "
                f"{how or 'no seldon-model header'} instead of {SELDON_MODEL}: {base}.experiment"
            )
            return _with_finding(4, "MT301", summary, exchange, path, logs, object_=f"Experiment/{base}", extra=extra)
        model, version = split_versioned(base)
        if version is not None and model in models and base not in models:
            summary = (
                f"Envoy answered 404 (no route): {how} names the versioned {base}; Seldon routes the Model as {model}"
            )
            return _with_finding(4, "MT306", summary, exchange, path, logs, object_=f"Model/{model}", extra=extra)
        if snap is not None and base not in models and base not in experiments and models | experiments:
            summary = f"Envoy answered 404 (no route): no Model or Experiment named {base} in the snapshot ({how})"
            return Failure(4, "unknown-model", summary, (_answer_evidence(exchange), *extra, *logs))
        summary = f"Envoy answered 404 (no route) for {how}: Envoy has no route for Model {base}"
        return _with_finding(4, "MT302", summary, exchange, path, logs, object_=f"Model/{base}", extra=extra)
    experiment = seldon_model[: -len(".experiment")]
    if snap is not None and experiments and experiment not in experiments:
        summary = f"Envoy answered 404 (no route): there is no Experiment {experiment} ({how})"
        return Failure(4, "unknown-experiment", summary, (_answer_evidence(exchange), *extra, *logs))
    summary = f"Envoy answered 404 (no route) for {how}: Envoy has no route for Experiment {experiment}"
    return _with_finding(4, "MT302", summary, exchange, path, logs, object_=f"Experiment/{experiment}", extra=extra)


def _explain_grpc(
    exchange: Exchange, target: Target, path: RequestPath | None, snap: Snapshot | None, logs: list[Evidence]
) -> Failure:
    status = exchange.grpc_status or "UNKNOWN"
    if status == "UNIMPLEMENTED":
        # Envoy's no-route 404 reaches a gRPC client as UNIMPLEMENTED (SELDON-FACTS §1.5).
        return _no_route(exchange, target, path, snap, logs)
    if status == "NOT_FOUND":
        summary = f"the agent or MLServer does not know the model: {exchange.grpc_message}"
        model = split_versioned((exchange.route or ":?:").strip(":").split(":")[0])[0]
        return _with_finding(6, "MT108", summary, exchange, path, logs, object_=f"Model/{model}")
    if status == "UNAVAILABLE":
        return Failure(
            3, "unavailable", f"gRPC UNAVAILABLE: {exchange.grpc_message}", tuple([_answer_evidence(exchange)] + logs)
        )
    hop = 7 if exchange.route else 4
    return Failure(
        hop,
        f"grpc-{status.lower()}",
        f"gRPC {status}: {exchange.grpc_message}",
        tuple([_answer_evidence(exchange)] + logs),
    )


def preflight_findings(target: Target, namespace: str | None) -> list[Finding]:
    """MT301 before sending: the user's own `-H seldon-model` replaces the experiment's header."""
    findings: list[Finding] = []
    for warning in target.warnings:
        if warning.startswith("MT301"):
            findings.append(
                make_finding(
                    "MT301",
                    namespace=namespace,
                    object=f"Experiment/{target.name}",
                    message=warning.split(": ", 1)[1],
                    evidence=(Evidence("command line", warning),),
                )
            )
    return findings
