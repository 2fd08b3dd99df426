"""Envoy admin `/config_dump` and `/stats` of each seldon-envoy pod.

Seldon's Envoy binds its admin API to 127.0.0.1:9901 only (SELDON-FACTS §1.1), so the first way in is the Kubernetes
port-forward API (a websocket to `pods/<pod>/portforward`, which reaches the pod's loopback). When that fails, the API
server's pod proxy is tried (`pods/<pod>:9901/proxy/...`; for `/stats` also the static :9003 listener, which proxies
`/stats` to the admin). `--envoy-admin URL` (or `NS/POD=URL`) reads an admin endpoint directly with httpx instead.
A pod whose admin cannot be read is recorded and the collection goes on.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mlops_trace.collect.client import ApiStatusError, KubeApi
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


def envoy_pods(pods: Iterable[Mapping[str, Any]]) -> list[EnvoyPod]:
    found: list[EnvoyPod] = []
    for pod in pods:
        metadata = pod.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        raw_labels = metadata.get("labels")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
        if isinstance(name, str) and isinstance(namespace, str) and pod_role(name, labels) is Role.ENVOY:
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
    if admin_url is not None:
        for what in DOCUMENTS:
            try:
                result.documents[what] = _http_get(f"{admin_url}/{what}", api.timeout)
                result.via[what] = admin_url
            except ClusterError as exc:
                result.errors.append(FetchError(pod.namespace, pod.pod, what, str(exc)))
        return _checked(result)
    attempts: dict[str, list[str]] = {what: [] for what in DOCUMENTS}
    try:
        for what, body in _port_forward_get(api, pod, [f"/{what}" for what in DOCUMENTS]).items():
            result.documents[what.lstrip("/")] = body
            result.via[what.lstrip("/")] = f"port-forward :{ADMIN_PORT}"
    except _Forbidden as exc:
        result.forbidden.append(_forbidden(pod, "pods/portforward", ("get", "create"), exc.message))
        for what in DOCUMENTS:
            attempts[what].append("port-forward: forbidden")
    except ClusterError as exc:
        for what in DOCUMENTS:
            if what not in result.documents:
                attempts[what].append(f"port-forward: {exc}")
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
            except ClusterError as exc:
                attempts[what].append(f"pods/proxy :{port}: {exc}")
        if what not in result.documents:
            result.errors.append(FetchError(pod.namespace, pod.pod, what, "; ".join(attempts[what])))
    return _checked(result)


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


def _http_get(url: str, timeout: float) -> bytes:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, verify=True, follow_redirects=False)
    except httpx.TimeoutException:
        raise ClusterError(f"{url}: no answer within {timeout:g} s (--request-timeout)") from None
    except httpx.HTTPError as exc:
        raise ClusterError(f"{url}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    if response.status_code != 200:
        raise ClusterError(f"{url}: HTTP {response.status_code}")
    return response.content


def _port_forward_get(api: KubeApi, pod: EnvoyPod, paths: Sequence[str]) -> dict[str, bytes]:
    """GET each path from the pod's 127.0.0.1:9901 over one port-forward (HTTP keep-alive)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import portforward

    # A client of its own: `portforward` swaps the client's call_api while it runs.
    core = client.CoreV1Api(client.ApiClient(api.api_client.configuration))

    def open_forward() -> Any:
        return portforward(
            core.connect_get_namespaced_pod_portforward,
            pod.pod,
            pod.namespace,
            ports=str(ADMIN_PORT),
            _request_timeout=api.timeout,
        )

    try:
        forward = _with_deadline(open_forward, api.timeout)
    except ApiException as exc:
        reason = " ".join(str(exc.reason or exc).split())
        if "403" in reason:
            raise _Forbidden(reason[:300]) from None
        raise ClusterError(_short_handshake(reason)) from None
    except TimeoutError:
        raise ClusterError(f"no answer within {api.timeout:g} s") from None
    documents: dict[str, bytes] = {}
    try:
        sock = forward.socket(ADMIN_PORT)
        sock.settimeout(api.timeout)
        connection = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=api.timeout)
        connection.sock = sock
        for path in paths:
            try:
                connection.request("GET", path, headers={"Accept": "*/*", "Host": f"127.0.0.1:{ADMIN_PORT}"})
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                error = forward.error(ADMIN_PORT)
                detail = " ".join(str(error).split())[:300] if error else f"{type(exc).__name__}: {exc}"
                if documents:
                    break  # keep what came through; the rest goes the other way
                raise ClusterError(detail) from None
            if response.status != 200:
                if documents:
                    break
                raise ClusterError(f"admin {path} answered HTTP {response.status}")
            documents[path] = body
            if response.will_close:
                break
    finally:
        forward.close()
    return documents


def _short_handshake(reason: str) -> str:
    """websocket-client puts the whole failed handshake in the message; keep its status line."""
    marker = "Handshake status "
    if marker in reason:
        tail = reason.split(marker, 1)[1]
        return "websocket upgrade refused: HTTP " + " ".join(tail.split()[:2])
    return reason[:300]


def _with_deadline(call: Callable[[], T], timeout: float) -> T:
    """Run `call` in a daemon thread and give up after `timeout` (the websocket connect has no timeout of its own)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which re-raises it
            box["error"] = exc

    worker = threading.Thread(target=run, name="mlops-trace-port-forward", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value
