"""MT309 grpc-message-too-large: an inference payload is larger than a hop accepts. Over gRPC the receiving side
answers RESOURCE_EXHAUSTED `Received message larger than max (<n> vs. <limit>)` (gRPC core; grpc-go writes
`grpc: received message larger than max`), and the limit is named: MLServer's `MLSERVER_GRPC_MAX_MESSAGE_LENGTH` (gRPC's
4 MiB receive default when unset), the agent's proxy, or the client's own. Over REST, ingress-nginx answers 413 and
logs `client intended to send too large body: <n> bytes` against `proxy-body-size` (1m by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress.controllers import nginx_ingress_for_host
from mlops_trace.analysis.ingress.nginx import ANNOTATION_PREFIX, nginx_annotation
from mlops_trace.analysis.routing import SELDON_MODEL, envoy_access_logs, lua_effective_headers, object_of_route_value
from mlops_trace.analysis.seldon import server_workloads
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import envoy_access, nginx_error
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.kube import KubeObject, container_env, pod_containers, pod_template_spec
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT309",
    slug="grpc-message-too-large",
    title="An inference payload is larger than a hop's message or body size limit",
    severity=Severity.CRITICAL,
    requires=("requests|logs:mlserver|logs:agent|logs:ingress|envoy:access",),
    reads=("kube:StatefulSet", "kube:Deployment", "kube:Model", "kube:Ingress", "kube:IngressClass"),
    playbook="grpc-message-size",
    fix="Raise the limit of the hop that refused the payload (MLServer: MLSERVER_GRPC_MAX_MESSAGE_LENGTH in the "
    "Server's ServerConfig; a gRPC client: its max receive length; ingress-nginx: the proxy-body-size annotation), "
    "or send smaller payloads.",
)

SAMPLES = 3
MAX_LENGTH_ENV = "MLSERVER_GRPC_MAX_MESSAGE_LENGTH"
GRPC_DEFAULT_MAX_RECEIVE = 4 * 1024 * 1024  # GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH; send is unlimited by default
SELDON_AGENT_MAX = 1000 * 1024 * 1024  # util.GRPCMaxMsgSizeBytes: the agent's gRPC proxy limits (v2.7-v2.10)
NGINX_DEFAULT_BODY_SIZE = "1m"  # ingress-nginx's proxy-body-size default
_RESOURCE_EXHAUSTED = frozenset({"RESOURCE_EXHAUSTED", "8"})
_ENVOY_RESOURCE_EXHAUSTED = frozenset({"RESOURCEEXHAUSTED", "8"})  # Envoy logs the number or the name
# gRPC core: `[CLIENT: |SERVER: ]Received|Sent message larger than max (n vs. limit)`; grpc-go: `grpc: received …` and
# `grpc: trying to send …`.
_TOO_LARGE = re.compile(
    r"(?:\b(client|server):\s*)?(?:grpc:\s*)?(received|sent|trying to send) message larger than max "
    r"\((\d{1,19}) vs\. (-?\d{1,19})\)",
    re.IGNORECASE,
)
_BODY_TOO_LARGE = re.compile(r"client intended to send too large (?:chunked )?body(?:: (\d+) bytes)?", re.IGNORECASE)
_NGINX_SIZE = re.compile(r"(\d{1,15})([kmg]?)", re.IGNORECASE)  # larger is no size nginx reads
_NEEDLES = ("message larger than max",)
_INFERENCE_PATH = re.compile(r"/v2/|/inference\.")


@dataclass
class _Group:
    namespace: str | None
    object: str
    says: str  # what the payload ran into, in words
    samples: list[Evidence] = field(default_factory=list)
    context: list[Evidence] = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True)
class _TooLarge:
    side: str | None  # "client" / "server" when the text says
    direction: str  # "received" or "sent"
    size: int
    limit: int


def _parse(text: str) -> _TooLarge | None:
    match = _TOO_LARGE.search(text)
    if match is None:
        return None
    side = match.group(1).lower() if match.group(1) else None
    direction = "received" if match.group(2).lower() == "received" else "sent"
    return _TooLarge(side, direction, int(match.group(3)), int(match.group(4)))


def _bytes(size: int) -> str:
    mib = size / (1024 * 1024)
    return f"{size} bytes ({mib:.1f} MiB)" if mib >= 0.1 else f"{size} bytes"


def run(snap: Snapshot) -> Iterator[Finding]:
    groups: dict[tuple[str | None, str, str], _Group] = {}
    looked = (
        _from_requests(snap, groups)
        + _from_server_logs(snap, groups)
        + _from_envoy_access(snap, groups)
        + _from_ingress_errors(snap, groups)
    )
    if not looked:
        raise SkipCheck("no recorded request, MLServer, agent or Envoy access log, or ingress-nginx error line to read")
    for group in groups.values():
        more = f" (showing {SAMPLES})" if group.count > len(group.samples) else ""
        yield CHECK.finding(
            namespace=group.namespace,
            object=group.object,
            message=f"{group.count} request(s){more} were refused as too large: {group.says}",
            evidence=[*group.samples, *group.context],
        )


def _add(groups: dict[tuple[str | None, str, str], _Group], template: _Group, sample: Evidence) -> None:
    group = groups.setdefault((template.namespace, template.object, template.says), template)
    group.count += 1
    if len(group.samples) < SAMPLES:
        group.samples.append(sample)


# --- the server's limit ------------------------------------------------------------------------------------------


def _mlserver_limits(snap: Snapshot, namespace: str | None, model: str | None) -> list[tuple[KubeObject, str | None]]:
    """(server workload, its MLSERVER_GRPC_MAX_MESSAGE_LENGTH or None) of the Server that serves `model` (its
    `spec.server`), else of every server workload of the namespace."""
    workloads = server_workloads(snap, namespace) if namespace else []
    if model is not None and namespace is not None:
        obj = snap.get("Model", namespace, model)
        wanted = str(obj.spec.get("server") or "") if obj is not None else ""
        if wanted:
            workloads = [w for w in workloads if w.name == wanted] or workloads
    found: list[tuple[KubeObject, str | None]] = []
    for workload in workloads:
        for container in pod_containers(pod_template_spec(workload)):
            if str(container.get("name")) == "mlserver":
                found.append((workload, container_env(container).get(MAX_LENGTH_ENV)))
    return found


def _limit_words(
    snap: Snapshot, namespace: str | None, model: str | None, parsed: _TooLarge
) -> tuple[str, list[Evidence]]:
    """Whose limit the payload hit, in words, and the fields that say so."""
    size, limit = _bytes(parsed.size), _bytes(parsed.limit)
    if parsed.direction == "sent":
        return f"the sender's own send limit ({limit}) is below the {size} message", []
    if parsed.side == "client":
        says = f"the client's receive limit ({limit}) is below the {size} response: raise its max receive length"
        return says, []
    if parsed.limit == SELDON_AGENT_MAX:
        return f"the {size} message exceeds the Seldon agent's gRPC proxy limit ({limit})", []
    servers = _mlserver_limits(snap, namespace, model)
    context: list[Evidence] = []
    matched = False
    env_path = ".spec.template.spec.containers[mlserver].env"
    for workload, value in servers[:SAMPLES]:
        if value is None:
            default = _bytes(GRPC_DEFAULT_MAX_RECEIVE)
            context.append(
                Evidence(workload.field_where(env_path), f"{MAX_LENGTH_ENV} not set: gRPC's {default} default applies")
            )
            matched = matched or parsed.limit == GRPC_DEFAULT_MAX_RECEIVE
        else:
            where = workload.field_where(f"{env_path}[{MAX_LENGTH_ENV}]")
            context.append(Evidence(where, f"{MAX_LENGTH_ENV}={evidence_line(value)}"))
            matched = matched or value.strip() == str(parsed.limit)
    if matched or (parsed.side == "server" and servers):
        on = ", ".join(workload.ref for workload, _ in servers[:SAMPLES])
        says = f"the {size} message exceeds MLServer's gRPC receive limit ({limit}): raise {MAX_LENGTH_ENV} on {on}"
        return says, context
    if parsed.limit == GRPC_DEFAULT_MAX_RECEIVE:
        says = (
            f"the {size} message exceeds gRPC's default {limit} receive limit of the receiving side (MLServer "
            f"without {MAX_LENGTH_ENV}, or a client with default options)"
        )
        return says, context
    return f"the {size} message exceeds a receiver's limit of {limit}", context


# --- recorded requests -------------------------------------------------------------------------------------------


def _namespace(snap: Snapshot, record: RequestRecord) -> str | None:
    if record.namespace:
        return record.namespace
    namespaces = snap.seldon_namespaces()
    return namespaces[0] if len(namespaces) == 1 else None


def _describe(record: RequestRecord) -> str:
    if record.protocol == "grpc":
        outcome = f"{record.grpc_status} {record.grpc_message!r}" if record.grpc_message else str(record.grpc_status)
    else:
        outcome = str(record.status) + (f" {record.body.strip()!r}" if record.body.strip() else "")
    return evidence_line(f"{record.method} {record.path} -> {outcome}")


def _from_requests(snap: Snapshot, groups: dict[tuple[str | None, str, str], _Group]) -> int:
    for record in snap.requests:
        namespace = _namespace(snap, record)
        path = record.path[record.path.find("/v2/") :] if "/v2/" in record.path else record.path
        value = lua_effective_headers(path, record.headers, record.protocol == "grpc").get(SELDON_MODEL)
        obj = object_of_route_value(value) if value else "Service/seldon-mesh"
        model = value if value and obj.startswith("Model/") else None
        sample = Evidence(record.display, _describe(record))
        if (record.grpc_status or "").upper() in _RESOURCE_EXHAUSTED:
            parsed = _parse(record.grpc_message or "")
            if parsed is None:
                continue
            says, context = _limit_words(snap, namespace, model, parsed)
            _add(groups, _Group(namespace, obj, says, context=context), sample)
        elif record.status == 413 and "nginx" in record.response_headers.get("server", "").lower():
            _add(groups, _ingress_template(nginx_ingress_for_host(snap, record.authority), None, None), sample)
    return len(snap.requests)


# --- logs ---------------------------------------------------------------------------------------------------------


def _from_server_logs(snap: Snapshot, groups: dict[tuple[str | None, str, str], _Group]) -> int:
    logs = snap.logs_of(Role.MLSERVER) + snap.logs_of(Role.AGENT)
    for log in logs:
        for record in iter_records(log.lines_mentioning(_NEEDLES)):
            parsed = _parse(record.message) or _parse(record.raw)
            if parsed is None:
                continue
            says, context = _limit_words(snap, log.namespace, None, parsed)
            template = _Group(log.namespace, f"Pod/{log.pod}", says, context=context)
            _add(groups, template, Evidence(log.where(record.lineno), evidence_line(record.raw)))
    return len(logs)


def _from_envoy_access(snap: Snapshot, groups: dict[tuple[str | None, str, str], _Group]) -> int:
    """Envoy's access lines of gRPC calls answered RESOURCE_EXHAUSTED whose request (`bytes_received`) was larger
    than the server's receive limit: MLServer logs nothing when it refuses one, Envoy's line is the server-side
    trace. A line of a recorded request is left to its record."""
    recorded = {record.request_id for record in snap.requests if record.request_id}
    logs = envoy_access_logs(snap)
    for log in logs:
        for line in envoy_access.iter_records(log.lines()):
            status = (line.grpc_status or "").upper().replace("_", "")
            if status not in _ENVOY_RESOURCE_EXHAUSTED or line.bytes_received is None:
                continue
            if line.request_id in recorded or not (line.path or "").startswith("/inference."):
                continue
            model = line.headers.get(SELDON_MODEL)
            limits = _mlserver_limits(snap, log.namespace, model)
            limit = min((_env_limit(value) for _, value in limits), default=GRPC_DEFAULT_MAX_RECEIVE)
            if line.bytes_received <= limit:
                continue  # RESOURCE_EXHAUSTED for another reason (a quota, a full queue)
            parsed = _TooLarge("server", "received", line.bytes_received, limit)
            says, context = _limit_words(snap, log.namespace, model, parsed)
            obj = object_of_route_value(model) if model else "Service/seldon-mesh"
            sample = Evidence(log.where(line.lineno), evidence_line(line.raw))
            _add(groups, _Group(log.namespace, obj, says, context=context), sample)
    return len(logs)


def _env_limit(value: str | None) -> int:
    """The receive limit an `MLSERVER_GRPC_MAX_MESSAGE_LENGTH` value sets (unset or unreadable: gRPC's default)."""
    try:
        number = int(str(value).strip()) if value is not None else GRPC_DEFAULT_MAX_RECEIVE
    except ValueError:
        return GRPC_DEFAULT_MAX_RECEIVE
    return number if number > 0 else GRPC_DEFAULT_MAX_RECEIVE


def _nginx_size(text: str) -> int | None:
    """An nginx size (`1m`, `512k`, `8M`, `0` for unlimited) in bytes; None for anything else."""
    match = _NGINX_SIZE.fullmatch(text.strip())
    if match is None:
        return None
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * scale


def _ingress_template(ingress: KubeObject | None, size: int | None, pod: tuple[str, str] | None) -> _Group:
    key = ANNOTATION_PREFIX + "proxy-body-size"
    body = f"the {_bytes(size)} body" if size is not None else "the body"
    if ingress is None:
        namespace, obj = pod if pod is not None else (None, "Service/ingress-nginx-controller")
        says = (f"{body} exceeds ingress-nginx's proxy-body-size (the controller's default is "
                f"{NGINX_DEFAULT_BODY_SIZE}; no Ingress of the host was found)")
        return _Group(namespace, obj, says)
    value = nginx_annotation(ingress, key)
    if value is None:
        says = f"{body} exceeds ingress-nginx's default proxy-body-size {NGINX_DEFAULT_BODY_SIZE} ({ingress.ref} sets none)"
        return _Group(ingress.namespace, ingress.ref, says)
    limit = _nginx_size(value)
    limit_words = f" = {_bytes(limit)}" if limit else ""
    says = f"{body} exceeds ingress-nginx's proxy-body-size {value}{limit_words} on {ingress.ref}"
    where = Evidence(ingress.field_where(f".metadata.annotations[{key}]"), f"{key}: {evidence_line(value)}")
    return _Group(ingress.namespace, ingress.ref, says, context=[where])


def _from_ingress_errors(snap: Snapshot, groups: dict[tuple[str | None, str, str], _Group]) -> int:
    logs = snap.logs_of(Role.INGRESS)
    for log in logs:
        for record in nginx_error.iter_records(log.lines_mentioning(("too large",))):
            match = _BODY_TOO_LARGE.search(record.message)
            if match is None or (record.path is not None and not _INFERENCE_PATH.search(record.path)):
                continue  # not this error, or an app beside Seldon on the same controller
            size = int(match.group(1)) if match.group(1) else None
            template = _ingress_template(nginx_ingress_for_host(snap, record.host), size, (log.namespace, f"Pod/{log.pod}"))
            _add(groups, template, Evidence(log.where(record.lineno), evidence_line(record.raw)))
    return len(logs)
