"""Envoy admin `/config_dump` and `/stats` of each seldon-envoy pod.

Seldon's Envoy binds its admin API to 127.0.0.1:9901 only (SELDON-FACTS §1.1), so the first way in is the Kubernetes
port-forward API (a websocket to `pods/<pod>/portforward`, which reaches the pod's loopback). When that fails, the API
server's pod proxy is tried (`pods/<pod>:9901/proxy/...`; for `/stats` also the static :9003 listener, which proxies
`/stats` to the admin). `--envoy-admin URL` (or `NS/POD=URL`) reads an admin endpoint directly instead.
A pod whose admin cannot be read is recorded and the collection goes on. Every read is bounded as a whole by the
`--request-timeout` and by the run's `--timeout` (deadline.py); once the run's time is up, what is left is recorded
as not collected.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mlops_trace.collect.client import ApiStatusError, KubeApi
from mlops_trace.collect.deadline import (
    SOCKET_GRACE_SECONDS,
    Clock,
    RunDeadlinePassed,
    SocketWatch,
    Watchdog,
    shut,
)
from mlops_trace.collect.names import NameRule, name_problem
from mlops_trace.collect.outcome import FetchError, Forbidden
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.snapshot.roles import Role, pod_role

ADMIN_PORT = 9901
STATS_LISTENER_PORT = 9003
DOCUMENTS = ("config_dump", "stats")

T = TypeVar("T")


@dataclass(frozen=True)
class EnvoyPod:
    namespace: str
    pod: str


@dataclass(frozen=True)
class AdminUrl:
    """One `--envoy-admin` value: `URL`, or `NAMESPACE/POD=URL` to say which pod it belongs to."""

    url: str
    namespace: str | None = None
    pod: str | None = None


@dataclass
class EnvoyResult:
    pod: EnvoyPod
    documents: dict[str, bytes] = field(default_factory=dict)  # "config_dump" / "stats" -> body
    via: dict[str, str] = field(default_factory=dict)  # how each document was read
    errors: list[FetchError] = field(default_factory=list)
    forbidden: list[Forbidden] = field(default_factory=list)
    deadline: RunDeadlinePassed | None = None  # the run's --timeout passed before the documents not read were


def envoy_pods(pods: Iterable[Mapping[str, Any]]) -> list[EnvoyPod]:
    found: list[EnvoyPod] = []
    for pod in pods:
        metadata = pod.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        raw_labels = metadata.get("labels")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
        if not isinstance(name, str) or not isinstance(namespace, str) or pod_role(name, labels) is not Role.ENVOY:
            continue
        # The collector leaves such pods out (with a warning) before; they name paths, so check again.
        if name_problem(namespace, NameRule.LABEL) is None and name_problem(name, NameRule.SUBDOMAIN) is None:
            found.append(EnvoyPod(namespace, name))
    return found


def parse_admin_urls(values: Sequence[str]) -> list[AdminUrl]:
    urls: list[AdminUrl] = []
    for value in values:
        target, sep, url = value.partition("=")
        if sep and "/" in target and "://" not in target:
            namespace, _, pod = target.partition("/")
            if not namespace or not pod or "/" in pod:
                raise UsageError(f"--envoy-admin {value!r}: expected URL or NAMESPACE/POD=URL")
            problem = name_problem(namespace, NameRule.LABEL) or name_problem(pod, NameRule.SUBDOMAIN)
            if problem is not None:
                raise UsageError(f"--envoy-admin {value!r}: {namespace}/{pod} is not a Kubernetes pod name ({problem})")
            urls.append(AdminUrl(_check_url(url, value), namespace, pod))
        else:
            urls.append(AdminUrl(_check_url(value, value)))
    return urls


def _check_url(url: str, value: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--envoy-admin {value!r}: the URL must start with http:// or https://")
    return url.rstrip("/")


def assign_urls(urls: Sequence[AdminUrl], pods: Sequence[EnvoyPod]) -> dict[EnvoyPod, str]:
    """Which admin URL serves which pod. A bare URL needs exactly one Envoy pod to belong to."""
    assigned: dict[EnvoyPod, str] = {}
    bare = [u for u in urls if u.namespace is None]
    for u in urls:
        if u.namespace is not None and u.pod is not None:
            assigned[EnvoyPod(u.namespace, u.pod)] = u.url
    if len(bare) > 1:
        raise UsageError("several --envoy-admin URLs without a pod: name each one as NAMESPACE/POD=URL")
    if bare:
        unclaimed = [p for p in pods if p not in assigned]
        if len(unclaimed) != 1:
            names = ", ".join(f"{p.namespace}/{p.pod}" for p in unclaimed) or "none"
            raise UsageError(
                f"--envoy-admin {bare[0].url}: {len(unclaimed)} Envoy pods could be meant ({names}); "
                "say which one: --envoy-admin NAMESPACE/POD=URL"
            )
        assigned[unclaimed[0]] = bare[0].url
    return assigned


def fetch_envoy(api: KubeApi, pod: EnvoyPod, admin_url: str | None) -> EnvoyResult:
    result = EnvoyResult(pod)
    try:
        _fetch(api, pod, admin_url, result)
    except RunDeadlinePassed as exc:
        # What was read (or failed every way) before is kept; the documents left are not collected.
        result.deadline = exc
    return _checked(result)


def _fetch(api: KubeApi, pod: EnvoyPod, admin_url: str | None, result: EnvoyResult) -> None:
    if admin_url is not None:
        for what in DOCUMENTS:
            try:
                result.documents[what] = _http_get(f"{admin_url}/{what}", api.clock)
                result.via[what] = admin_url
            except RunDeadlinePassed:
                raise
            except ClusterError as exc:
                result.errors.append(FetchError(pod.namespace, pod.pod, what, str(exc)))
        return
    attempts: dict[str, list[str]] = {what: [] for what in DOCUMENTS}
    forwarded: dict[str, bytes] = {}
    try:
        _port_forward_get(api, pod, [f"/{what}" for what in DOCUMENTS], forwarded)
    except _Forbidden as exc:
        result.forbidden.append(_forbidden(pod, "pods/portforward", ("get", "create"), exc.message))
        for what in DOCUMENTS:
            attempts[what].append("port-forward: forbidden")
    except RunDeadlinePassed:
        _keep_forwarded(forwarded, result)
        raise
    except ClusterError as exc:
        for what in DOCUMENTS:
            if f"/{what}" not in forwarded:
                attempts[what].append(f"port-forward: {exc}")
    _keep_forwarded(forwarded, result)
    for what in DOCUMENTS:
        if what in result.documents:
            continue
        ports = (ADMIN_PORT, STATS_LISTENER_PORT) if what == "stats" else (ADMIN_PORT,)
        for port in ports:
            path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.pod}:{port}/proxy/{what}"
            try:
                result.documents[what] = api.get_bytes(path)
                result.via[what] = f"pods/proxy :{port}"
                break
            except ApiStatusError as exc:
                if exc.status == 403:
                    if not any(f.resource == "pods/proxy" for f in result.forbidden):
                        result.forbidden.append(_forbidden(pod, "pods/proxy", ("get",), exc.message))
                    attempts[what].append(f"pods/proxy :{port}: forbidden")
                    break
                attempts[what].append(f"pods/proxy :{port}: HTTP {exc.status} {exc.message}".rstrip())
            except RunDeadlinePassed:
                raise
            except ClusterError as exc:
                attempts[what].append(f"pods/proxy :{port}: {exc}")
        if what not in result.documents:
            result.errors.append(FetchError(pod.namespace, pod.pod, what, "; ".join(attempts[what])))


def _keep_forwarded(forwarded: Mapping[str, bytes], result: EnvoyResult) -> None:
    for path, body in forwarded.items():
        result.documents[path.lstrip("/")] = body
        result.via[path.lstrip("/")] = f"port-forward :{ADMIN_PORT}"


def _checked(result: EnvoyResult) -> EnvoyResult:
    """A config_dump must be a JSON object; anything else is recorded, not written."""
    body = result.documents.get("config_dump")
    if body is not None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            del result.documents["config_dump"]
            via = result.via.pop("config_dump", "")
            result.errors.append(
                FetchError(result.pod.namespace, result.pod.pod, "config_dump", f"the answer via {via} is not JSON")
            )
    return result


def _forbidden(pod: EnvoyPod, resource: str, verbs: tuple[str, ...], message: str) -> Forbidden:
    """Port-forwards over websockets need `get`, and also `create` from Kubernetes 1.35 (deploy/rbac-readonly.yaml)."""
    return Forbidden(
        permission=f"{' and '.join(verbs)} {resource} in namespace {pod.namespace} (core)",
        verb=",".join(verbs),
        resource=resource,
        group="",
        namespace=pod.namespace,
        kind=None,
        message=message,
    )


class _Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _http_get(url: str, clock: Clock) -> bytes:
    """GET an admin URL given with --envoy-admin, bounded as a whole like an API call."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ClusterError(f"{url}: no host in the URL")
    bound = clock.call()
    timeout = bound.remaining() + SOCKET_GRACE_SECONDS
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    watch = SocketWatch()
    watch.attach(connection)
    _watch_new_sockets(connection, watch)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with Watchdog(bound, watch.expire):
            try:
                connection.request("GET", target, headers={"Accept": "*/*"})
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                if watch.expired:
                    raise bound.error(url) from None
                raise ClusterError(f"{url}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
            if watch.expired:
                raise bound.error(url)
    finally:
        connection.close()
        watch.close()
    if response.status != 200:
        raise ClusterError(f"{url}: HTTP {response.status}")
    return body


def _watch_new_sockets(connection: http.client.HTTPConnection, watch: SocketWatch) -> None:
    """Tell `watch` about the socket `connection` opens, before TLS is set up on it (so a slow handshake is cut
    too)."""
    create: Callable[..., socket.socket] = connection._create_connection  # type: ignore[attr-defined]

    def create_watched(*args: Any, **kwargs: Any) -> socket.socket:
        sock = create(*args, **kwargs)
        watch.attach(new_socket=sock)
        return sock

    connection._create_connection = create_watched  # type: ignore[attr-defined]


def _port_forward_get(api: KubeApi, pod: EnvoyPod, paths: Sequence[str], documents: dict[str, bytes]) -> None:
    """GET each path from the pod's 127.0.0.1:9901 over one port-forward (HTTP keep-alive), into `documents`.

    Opening the forward is one call and each GET another, each within its own bound."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import portforward

    bound = api.clock.call()
    # A client of its own: `portforward` swaps the client's call_api while it runs.
    core = client.CoreV1Api(client.ApiClient(api.api_client.configuration))

    def open_forward() -> Any:
        return portforward(
            core.connect_get_namespaced_pod_portforward,
            pod.pod,
            pod.namespace,
            ports=str(ADMIN_PORT),
            _request_timeout=bound.remaining() + SOCKET_GRACE_SECONDS,
        )

    try:
        forward = _with_deadline(open_forward, bound.remaining(), lambda late: late.close())
    except ApiException as exc:
        reason = " ".join(str(exc.reason or exc).split())
        if "403" in reason:
            raise _Forbidden(reason[:300]) from None
        raise ClusterError(_short_handshake(reason)) from None
    except TimeoutError:
        raise bound.error("websocket upgrade") from None
    try:
        sock = forward.socket(ADMIN_PORT)
        connection = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT)
        connection.sock = sock
        for path in paths:
            bound = api.clock.call()
            sock.settimeout(bound.remaining() + SOCKET_GRACE_SECONDS)
            with Watchdog(bound, lambda: shut(sock)) as watchdog:
                try:
                    connection.request("GET", path, headers={"Accept": "*/*", "Host": f"127.0.0.1:{ADMIN_PORT}"})
                    response = connection.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    if watchdog.fired:
                        raise bound.error(f"admin {path}") from None
                    error = forward.error(ADMIN_PORT)
                    detail = " ".join(str(error).split())[:300] if error else f"{type(exc).__name__}: {exc}"
                    if documents:
                        break  # keep what came through; the rest goes the other way
                    raise ClusterError(detail) from None
                if watchdog.fired:
                    raise bound.error(f"admin {path}")
            if response.status != 200:
                if documents:
                    break
                raise ClusterError(f"admin {path} answered HTTP {response.status}")
            documents[path] = body
            if response.will_close:
                break
    finally:
        shut(forward.socket(ADMIN_PORT))
        forward.close()


def _short_handshake(reason: str) -> str:
    """websocket-client puts the whole failed handshake in the message; keep its status line."""
    marker = "Handshake status "
    if marker in reason:
        tail = reason.split(marker, 1)[1]
        return "websocket upgrade refused: HTTP " + " ".join(tail.split()[:2])
    return reason[:300]


def _with_deadline(call: Callable[[], T], timeout: float, discard: Callable[[T], None]) -> T:
    """Run `call` in a daemon thread and give up after `timeout` (the websocket connect has no timeout of its own);
    a value that only comes after that is handed to `discard`."""
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which re-raises it
            box["error"] = exc
            return
        with lock:
            late = box.get("abandoned", False)
            box["value"] = value
        if late:
            discard(value)

    worker = threading.Thread(target=run, name="mlops-trace-port-forward", daemon=True)
    worker.start()
    worker.join(timeout)
    with lock:
        if "value" not in box and "error" not in box:
            box["abandoned"] = True
            raise TimeoutError
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value

