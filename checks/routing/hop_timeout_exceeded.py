"""MT308 hop-timeout-exceeded: a proxy hop gave up on a request that took longer than its timeout, and answered
504: Seldon's Envoy (flag `UT`, body `upstream request timeout`; its route `timeout` from the config_dump, Envoy's
15 s when a route sets none), ingress-nginx (`upstream timed out (110: …)` against `proxy-*-timeout`, 60 s for a
read by default), the gRPC client's own deadline (DEADLINE_EXCEEDED), or on KServe Knative's queue-proxy or activator
(`request timeout`, against the Revision's `timeoutSeconds`) and Istio's gateway. Names the hop, its timeout, and how
long the request ran, from Envoy access lines, recorded requests, queue-proxy's log and the ingress controller's error
log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress.controllers import nginx_ingress_for_host
from mlops_trace.analysis.ingress.nginx import ANNOTATION_PREFIX, nginx_annotation
from mlops_trace.analysis.kserve import (
    Answer,
    component_revision,
    isvc_for_request,
    isvc_of_log,
    revision_timeout_words,
    who_answered,
)
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    envoy_access_logs,
    lua_effective_headers,
    object_of_route_value,
    serving_route_configs,
    split_routes,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access, nginx_error
from mlops_trace.parsers.envoy_config import EnvoyConfig, Route
from mlops_trace.parsers.logs.kserve import QueueProxyEvent, queue_proxy_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT308",
    slug="hop-timeout-exceeded",
    title="A proxy hop timed out before the model answered (504)",
    severity=Severity.CRITICAL,
    requires=("envoy:access|requests|logs:ingress|logs:queue-proxy",),
    reads=(
        "envoy:config_dump",
        "kube:Ingress",
        "kube:IngressClass",
        "kube:InferenceService",
        "kube:Revision",
        "kube:ConfigMap",
        "kube:Pod",
        "kube:VirtualService",
    ),
    playbook="timeouts",
    fix="Raise the timeout of the hop that gave up above the model's worst latency (Envoy route timeout: seldon-core "
    "v2.7+ sets none; ingress-nginx: the proxy-read-timeout annotation; gRPC: the client's deadline; KServe: the "
    "component's `timeout`, which sets the Knative Revision's timeoutSeconds), or make the model answer faster.",
)

SAMPLES = 3
ENVOY_TIMEOUT_FLAG = "UT"  # Envoy's UpstreamRequestTimeout response flag
ENVOY_TIMEOUT_BODY = "upstream request timeout"  # the body Envoy's router sends with its 504
ENVOY_DEFAULT_ROUTE_TIMEOUT_S = 15.0  # RouteAction.timeout when a route sets none
SELDON_OLD_ROUTE_TIMEOUT_S = 60.0  # DefaultRouteTimeoutSecs of seldon-core v2.0-v2.6 (0 since v2.7, PR #5099)
_DEADLINE = frozenset({"DEADLINE_EXCEEDED", "4"})
_INFERENCE_PATH = re.compile(r"/v2/|/inference\.")
# ingress-nginx: the phase of the error line → (annotation, controller default in seconds)
_NGINX_PHASES: tuple[tuple[str, str, float], ...] = (
    ("reading response header from upstream", "proxy-read-timeout", 60.0),
    ("connecting to upstream", "proxy-connect-timeout", 5.0),
    ("sending request to upstream", "proxy-send-timeout", 60.0),
)


@dataclass
class _Group:
    namespace: str | None
    object: str
    hop: str
    limit: str  # the timeout, in words, with where it comes from
    samples: list[Evidence] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    count: int = 0
    context: list[Evidence] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    groups: dict[tuple[str | None, str, str, str], _Group] = {}
    looked = 0
    looked += _from_access_lines(snap, groups)
    looked += _from_requests(snap, groups)
    looked += _from_ingress_errors(snap, groups)
    looked += _from_queue_proxy(snap, groups)
    if not looked:
        raise SkipCheck("no Envoy access line, recorded request, ingress-nginx error or queue-proxy line to read")
    for group in groups.values():
        yield _finding(group)


def _add(groups: dict[tuple[str | None, str, str, str], _Group], template: _Group, sample: Evidence,
         duration_ms: float | None) -> None:
    key = (template.namespace, template.object, template.hop, template.limit)
    group = groups.setdefault(key, template)
    group.count += 1
    if len(group.samples) < SAMPLES:
        group.samples.append(sample)
    if duration_ms is not None:
        group.durations.append(duration_ms)


# --- Envoy -------------------------------------------------------------------------------------------------------


def _seconds(ms: float) -> str:
    return f"{ms / 1000.0:.1f} s"


def _route_limit(route: Route) -> str:
    if route.timeout_text is None:
        return f"route {route.name or route.index} sets no timeout: Envoy's default {ENVOY_DEFAULT_ROUTE_TIMEOUT_S:g} s"
    if route.timeout_ms is None:
        return f"route {route.name or route.index} timeout {route.timeout_text!r} is not a duration Envoy accepts"
    if route.timeout_ms == 0:
        return (
            f"route {route.name or route.index} timeout 0s (none): the limit came from the request (a timeout "
            "header it carried) or a per-try timeout"
        )
    old = " (the fixed route timeout of seldon-core v2.0-v2.6)" if route.timeout_ms == SELDON_OLD_ROUTE_TIMEOUT_S * 1000 else ""
    return f"route {route.name or route.index} timeout {route.timeout_text}{old}"


def _route_of(snap: Snapshot, namespace: str | None, seldon_model: str | None) -> tuple[str, Evidence] | None:
    """(the route's timeout in words, where it was read) for requests with this `seldon-model` in the namespace."""
    if not seldon_model:
        return None
    for env in snap.envoy_configs(namespace):
        config: EnvoyConfig | None = env.config
        if config is None:
            continue
        serving = set(serving_route_configs(config))
        for route in split_routes(config, seldon_model):
            if route.route_config in serving:
                limit = _route_limit(route)
                shown = route.timeout_text if route.timeout_text is not None else "(not set)"
                return limit, Evidence(f"{env.config_display} route_config {route.route_config} route {route.name}",
                                       f"timeout: {evidence_line(shown)}")
    return None


def _envoy_template(snap: Snapshot, namespace: str | None, seldon_model: str | None, fallback: str) -> _Group:
    found = _route_of(snap, namespace, seldon_model)
    obj = object_of_route_value(seldon_model) if seldon_model else fallback
    if found is None:
        limit = "its route timeout (no config_dump of the namespace shows the route)"
        return _Group(namespace, obj, "Seldon Envoy (hop 4)", limit)
    limit, where = found
    return _Group(namespace, obj, "Seldon Envoy (hop 4)", limit, context=[where])


def _from_access_lines(snap: Snapshot, groups: dict[tuple[str | None, str, str, str], _Group]) -> int:
    logs = envoy_access_logs(snap)
    for log in logs:
        for record in envoy_access.iter_records(log.lines_mentioning((ENVOY_TIMEOUT_FLAG,))):
            if ENVOY_TIMEOUT_FLAG not in record.response_flags:
                continue
            path = record.path or ""
            grpc = path.startswith("/inference.")
            value = lua_effective_headers(path, record.headers, grpc).get(SELDON_MODEL)
            template = _envoy_template(snap, log.namespace, value, f"Pod/{log.pod}")
            _add(groups, template, Evidence(log.where(record.lineno), evidence_line(record.raw)), record.duration_ms)
    return len(logs)


# --- recorded requests -------------------------------------------------------------------------------------------


def _record_namespace(snap: Snapshot, record: RequestRecord) -> str | None:
    if record.namespace:
        return record.namespace
    namespaces = sorted({env.namespace for env in snap.envoy_configs()})
    return namespaces[0] if len(namespaces) == 1 else None


def _describe(record: RequestRecord) -> str:
    outcome: str = str(record.status) if record.status is not None else "no status"
    if record.protocol == "grpc" and record.grpc_status:
        outcome = record.grpc_status + (f" {record.grpc_message!r}" if record.grpc_message else "")
    elif record.body.strip():
        outcome += f" {record.body.strip()!r}"
    flags = f", Envoy flags {','.join(record.envoy_flags)}" if record.envoy_flags else ""
    took = f" after {record.duration_ms:g} ms" if record.duration_ms is not None else ""
    return evidence_line(f"{record.method} {record.path} -> {outcome}{flags}{took}")


def _envoy_timed_out(record: RequestRecord) -> bool:
    said = f"{record.body} {record.grpc_message or ''}".lower()
    return ENVOY_TIMEOUT_FLAG in record.envoy_flags or (
        (record.status == 504 or record.protocol == "grpc") and ENVOY_TIMEOUT_BODY in said
    )


def _nginx_timed_out(record: RequestRecord) -> bool:
    return record.status == 504 and "nginx" in record.response_headers.get("server", "").lower()


def _from_requests(snap: Snapshot, groups: dict[tuple[str | None, str, str, str], _Group]) -> int:
    for record in snap.requests:
        namespace = _record_namespace(snap, record)
        path = record.path[record.path.find("/v2/") :] if "/v2/" in record.path else record.path
        value = lua_effective_headers(path, record.headers, record.protocol == "grpc").get(SELDON_MODEL)
        sample = Evidence(record.display, _describe(record))
        knative = _knative_template(snap, record)
        if knative is not None:
            template = knative
        elif _envoy_timed_out(record):
            template = _envoy_template(snap, namespace, value, "Service/seldon-mesh")
        elif _nginx_timed_out(record):
            ingress = nginx_ingress_for_host(snap, record.authority)
            template = _nginx_template(ingress, _NGINX_PHASES[0], None)
        elif (record.grpc_status or "").upper() in _DEADLINE:
            obj = object_of_route_value(value) if value else "Service/seldon-mesh"
            took = f"about {record.duration_ms:g} ms" if record.duration_ms is not None else "its length unknown"
            template = _Group(namespace, obj, "the gRPC client's deadline", f"the deadline it set ({took})")
        else:
            continue
        _add(groups, template, sample, record.duration_ms)
    return len(snap.requests)


# --- KServe: Knative's queue-proxy and activator, Istio's gateway -------------------------------------------------

# queue-proxy's and the activator's timeout handler (knative/serving 98e5ef9 pkg/http/handler/timeout.go): a 504 with
# the body `request timeout` (pkg/queue/sharedmain/handlers.go) or `activator request timeout` (cmd/activator/
# main.go), and the warnings `Request timeout: %v`, `Response start timeout: %v`, `Idle timeout: %v`, which
# `parsers.logs.kserve.queue_proxy_line` reads.
_QUEUE_PROXY_TIMEOUTS = frozenset(
    {QueueProxyEvent.REQUEST_TIMEOUT, QueueProxyEvent.RESPONSE_START_TIMEOUT, QueueProxyEvent.IDLE_TIMEOUT}
)
_KNATIVE_HOPS = {
    Answer.QUEUE_PROXY_TIMEOUT: "Knative queue-proxy of the revision",
    Answer.ACTIVATOR_TIMEOUT: "Knative activator",
    Answer.ENVOY_TIMEOUT: "Istio's gateway (VirtualService route timeout)",
}


def _knative_template(snap: Snapshot, record: RequestRecord) -> _Group | None:
    """The hop of a KServe request's 504: queue-proxy or the activator (the revision's timeouts), or Istio's Envoy for
    a request to an InferenceService."""
    answer = who_answered(record)
    hop = _KNATIVE_HOPS.get(answer)
    if hop is None:
        return None
    isvc = isvc_for_request(snap, record)
    if isvc is None and answer is Answer.ENVOY_TIMEOUT:
        return None  # Seldon's Envoy, or a proxy this check reads from its config_dump
    namespace = isvc.namespace if isvc is not None else record.namespace
    obj = f"InferenceService/{isvc.name}" if isvc is not None else "Revision/(unknown)"
    if answer is Answer.ENVOY_TIMEOUT and isvc is not None:
        return _istio_template(snap, isvc, obj, hop)
    revision = component_revision(snap, isvc) if isvc is not None else None
    limit, where = revision_timeout_words(snap, revision)
    return _Group(namespace, obj, hop, limit, context=where)


def _istio_template(snap: Snapshot, isvc: KubeObject, obj: str, hop: str) -> _Group:
    """The `timeout` of the InferenceService's VirtualService routes (KServe's own sets none: Envoy's then come from a
    VirtualService someone edited or added)."""
    service = snap.get("VirtualService", isvc.namespace, isvc.name)
    routes = as_list(service.spec.get("http")) if service is not None else []
    timeouts = [(index, as_mapping(route).get("timeout")) for index, route in enumerate(routes)]
    set_ = [(index, value) for index, value in timeouts if value is not None]
    if service is None or not set_:
        limit = "a route timeout on the way (the InferenceService's VirtualService sets none, or was not collected)"
        return _Group(isvc.namespace, obj, hop, limit)
    index, value = set_[0]
    where = Evidence(service.field_where(f".spec.http[{index}].timeout"), f"timeout: {evidence_line(str(value))}")
    return _Group(isvc.namespace, obj, hop, f"VirtualService {service.name} route timeout {value}", context=[where])


def _from_queue_proxy(snap: Snapshot, groups: dict[tuple[str | None, str, str, str], _Group]) -> int:
    logs = snap.logs_of(Role.QUEUE_PROXY)
    for log in logs:
        owner = isvc_of_log(snap, log)
        for lineno, line in log.lines_mentioning(("timeout: ",)):
            found = queue_proxy_line(lineno, line)
            if found is None or found.event not in _QUEUE_PROXY_TIMEOUTS:
                continue
            namespace, _, name = (found.revision or "").partition("/")
            revision = snap.get("Revision", namespace, name) if name else None
            if revision is None:
                pod = snap.get("Pod", log.namespace, log.pod)
                label = pod.labels.get("serving.knative.dev/revision") if pod is not None else None
                revision = snap.get("Revision", log.namespace, label) if label else None
            limit, where = revision_timeout_words(snap, revision)
            said = f"{found.record.message} (queue-proxy's log)"
            obj = f"InferenceService/{owner[0]}" if owner else f"Pod/{log.pod}"
            template = _Group(log.namespace, obj, "Knative queue-proxy of the revision", f"{said}; {limit}",
                              context=where)
            shown = found.record.message + (f" (knative.dev/key {found.revision})" if found.revision else "")
            _add(groups, template, Evidence(log.where(lineno), evidence_line(shown)), None)
    return len(logs)


# --- ingress-nginx -----------------------------------------------------------------------------------------------


def _nginx_template(ingress: KubeObject | None, phase: tuple[str, str, float], pod: tuple[str, str] | None) -> _Group:
    _, annotation, default = phase
    key = ANNOTATION_PREFIX + annotation
    if ingress is not None:
        value = nginx_annotation(ingress, key)
        if value is not None:
            limit = f"{annotation} {value} s (annotation on {ingress.ref})"
            where = Evidence(ingress.field_where(f".metadata.annotations[{key}]"), f"{key}: {evidence_line(value)}")
            return _Group(ingress.namespace, ingress.ref, "ingress-nginx (hop 2)", limit, context=[where])
        limit = f"{annotation} {default:g} s (the controller's default; {ingress.ref} sets no annotation)"
        return _Group(ingress.namespace, ingress.ref, "ingress-nginx (hop 2)", limit)
    namespace, obj = pod if pod is not None else (None, "Service/ingress-nginx-controller")
    limit = f"{annotation} (the controller's default is {default:g} s; no Ingress of the host was found)"
    return _Group(namespace, obj, "ingress-nginx (hop 2)", limit)


def _from_ingress_errors(snap: Snapshot, groups: dict[tuple[str | None, str, str, str], _Group]) -> int:
    logs = snap.logs_of(Role.INGRESS)
    for log in logs:
        for record in nginx_error.iter_records(log.lines_mentioning(("upstream timed out", "(110: "))):
            cause = record.cause
            if cause is None or cause.cause != "upstream-timeout":
                continue
            if record.path is not None and not _INFERENCE_PATH.search(record.path):
                continue  # an app beside Seldon on the same controller
            message = record.message.lower()
            phase = next((p for p in _NGINX_PHASES if p[0] in message), None)
            if phase is None:
                continue
            ingress = nginx_ingress_for_host(snap, record.host)
            template = _nginx_template(ingress, phase, (log.namespace, f"Pod/{log.pod}"))
            _add(groups, template, Evidence(log.where(record.lineno), evidence_line(record.raw)), None)
    return len(logs)


# --- the finding -------------------------------------------------------------------------------------------------


def _finding(group: _Group) -> Finding:
    more = f" (showing {SAMPLES})" if group.count > len(group.samples) else ""
    if group.durations:
        shortest, longest = _seconds(min(group.durations)), _seconds(max(group.durations))
        took = f"after {shortest}" if shortest == longest else f"after {shortest} to {longest}"
    else:
        took = "after at least the timeout (the lines give no duration)"
    return CHECK.finding(
        namespace=group.namespace,
        object=group.object,
        message=f"{group.count} request(s){more} timed out at {group.hop} {took}: {group.limit}. The hop gave up "
        "before the model answered.",
        evidence=[*group.samples, *group.context],
    )
