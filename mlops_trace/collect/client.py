"""A thin read-only client over the official `kubernetes` package: raw GETs on REST paths, errors in one line.

Objects are read as raw JSON (no model classes), so they stay exactly as the API server returned them. The client's
retries are off and every call is bounded as a whole (connect, headers and body) by the `--request-timeout` and by
the run's `--timeout` (deadline.py): a watchdog shuts the call's socket when its time is up, so neither a dead
server nor one that trickles its answer holds the run. Transport failures become `ClusterError` naming the server
and the cause; HTTP error statuses become `ApiStatusError` for the caller to record (403: a missing permission,
404: an API that is not served).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.collect.deadline import SOCKET_GRACE_SECONDS, CallBound, Clock, SocketWatch, Watchdog
from mlops_trace.errors import ClusterError, UsageError

Query = Sequence[tuple[str, str | int]]


class ApiStatusError(Exception):
    """The API server answered with an error status (the caller decides whether it is fatal)."""

    def __init__(self, status: int, path: str, message: str) -> None:
        super().__init__(f"{status} on {path}: {message}" if message else f"{status} on {path}")
        self.status = status
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Connection:
    """What we connected to, for bundle.yaml and error messages."""

    server: str
    context: str  # kubeconfig context name, or "in-cluster"
    kubeconfig: str | None


class KubeApi:
    """GET-only access to one API server, every call within the run's `Clock`."""

    def __init__(self, api_client: Any, connection: Connection, clock: Clock) -> None:
        self.api_client = api_client
        self.connection = connection
        self.clock = clock

    @property
    def timeout(self) -> float:
        """The `--request-timeout` of one call."""
        return self.clock.request_timeout

    # --- public calls ------------------------------------------------------------------------------------------

    def get_json(self, path: str, query: Query = ()) -> dict[str, Any]:
        body = self.get_bytes(path, query, accept="application/json")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ApiStatusError(200, path, f"the answer is not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ApiStatusError(200, path, "the answer is not a JSON object")
        return data

    def get_bytes(self, path: str, query: Query = (), accept: str = "*/*") -> bytes:
        with self._bounded(path) as (bound, watch):
            response = self._open(path, query, accept, bound, watch)
            try:
                return bytes(self._guard(lambda: response.read(), path))
            finally:
                _finish(response, watch)

    def stream_lines(self, path: str, query: Query = ()) -> Iterator[bytes]:
        """The body line by line (with line endings), read as it arrives: container logs."""
        with self._bounded(path) as (bound, watch):
            response = self._open(path, query, "*/*", bound, watch)
            try:
                pending = b""
                chunks = self._guard(lambda: response.stream(64 * 1024, decode_content=True), path)
                while True:
                    chunk = self._guard(lambda: next(chunks, None), path)
                    if chunk is None:
                        break
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield line + b"\n"
                if watch.expired:
                    return  # the body was cut short: _bounded raises the bound's error, not a last partial line
                if pending:
                    yield pending
            finally:
                _finish(response, watch)

    def describe_transport_error(self, exc: BaseException) -> str:
        return f"cannot reach the Kubernetes API server {self.connection.server}: {_cause(exc, self.timeout)}"

    # --- plumbing ----------------------------------------------------------------------------------------------

    @contextmanager
    def _bounded(self, path: str) -> Iterator[tuple[CallBound, SocketWatch]]:
        """One call within its bound: when the bound passes, its sockets are shut and the call ends in the
        bound's error (`CallTimedOut` or `RunDeadlinePassed`), whatever the read it was blocked in raised."""
        bound = self.clock.call()
        watch = SocketWatch()
        with Watchdog(bound, watch.expire):
            try:
                yield bound, watch
            except Exception:
                if watch.expired:
                    raise bound.error(self._calling(path)) from None
                raise
            finally:
                watch.close()
            if watch.expired:
                # A body without a length ends at the shut socket as if it were complete: it is not.
                raise bound.error(self._calling(path))

    def _calling(self, path: str) -> str:
        return f"GET {path} on the Kubernetes API server {self.connection.server}"

    def _open(self, path: str, query: Query, accept: str, bound: CallBound, watch: SocketWatch) -> Any:
        socket_timeout = bound.remaining() + SOCKET_GRACE_SECONDS
        _current.watch = watch
        try:
            status, response = self._guard(
                lambda: _raw_get(self.api_client, path, query, accept, socket_timeout), path
            )
        finally:
            _current.watch = None
        # Also the connection a response holds, in case the client's connection classes could not be watched.
        watch.attach(getattr(response, "connection", None))
        if 200 <= status <= 299:
            return response
        try:
            body = self._guard(lambda: response.read(), path) if hasattr(response, "read") else b""
        finally:
            _finish(response, watch)
        message = _status_message(body if isinstance(body, bytes) else b"")
        if status == 401:
            raise ClusterError(
                f"the Kubernetes API server {self.connection.server} (context {self.connection.context}) rejected "
                f"our credentials (401 Unauthorized){': ' + message if message else ''}"
            )
        raise ApiStatusError(status, path, message)

    def _guard(self, call: Any, path: str) -> Any:
        """Run one step of a request; transport failures become a one-line ClusterError."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return call()
        except ApiException as exc:
            if exc.status and exc.status != 0:
                raise ApiStatusError(int(exc.status), path, _status_message(_as_bytes(exc.body))) from None
            raise ClusterError(self.describe_transport_error(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(self.describe_transport_error(exc)) from None


# The call the current thread is making: urllib3 opens (or reuses) the connection inside the client, where the
# watched connection classes below find it.
_current = threading.local()


def _finish(response: Any, watch: SocketWatch) -> None:
    """End the watch, then hand the connection back to the pool (closed first when the call was cut: it is shut)."""
    if watch.close() and hasattr(response, "close"):
        try:
            response.close()
        except (OSError, ValueError):
            pass
    if hasattr(response, "release_conn"):
        response.release_conn()


def _attach_to_current(connection: Any, sock: Any) -> None:
    watch = getattr(_current, "watch", None)
    if isinstance(watch, SocketWatch):
        watch.attach(connection, sock)


def _watched_connection_class(base: type[Any]) -> type[Any]:
    """`base` (a urllib3 connection class) telling the current call about each socket it opens or reuses."""

    def new_conn(self: Any) -> Any:
        sock = base._new_conn(self)
        _attach_to_current(self, sock)
        return sock

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        _attach_to_current(self, None)
        return base.request(self, *args, **kwargs)

    return type(f"Watched{base.__name__}", (base,), {"_new_conn": new_conn, "request": request})


def _watch_connections(api_client: Any) -> None:
    """Make the client's urllib3 pools open watched connections (left as they are when the client is shaped
    otherwise: the response's own connection is watched then, which covers the body but not the headers)."""
    manager = getattr(getattr(api_client, "rest_client", None), "pool_manager", None)
    pool_classes = getattr(manager, "pool_classes_by_scheme", None)
    if manager is None or not isinstance(pool_classes, dict):
        return
    watched: dict[str, type[Any]] = {}
    for scheme, pool_class in pool_classes.items():
        connection_class = getattr(pool_class, "ConnectionCls", None)
        if not isinstance(pool_class, type) or not isinstance(connection_class, type):
            return
        attributes = {"ConnectionCls": _watched_connection_class(connection_class)}
        watched[scheme] = type(f"Watched{pool_class.__name__}", (pool_class,), attributes)
    manager.clear()
    manager.pool_classes_by_scheme = watched


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return b""


def _raw_get(api_client: Any, path: str, query: Query, accept: str, timeout: float) -> tuple[int, Any]:
    """One GET through `ApiClient.call_api`, returning (status, unread urllib3 response or error body holder)."""
    headers = {"Accept": accept}
    params = [(k, str(v)) for k, v in query]
    if hasattr(api_client, "param_serialize"):
        # kubernetes >= 32: serialize (adds auth), then call_api returns an unread RESTResponse for any status.
        method, url, header_params, body, post_params = api_client.param_serialize(
            "GET", path, query_params=params, header_params=headers, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(
            method, url, header_params=header_params, body=body, post_params=post_params, _request_timeout=timeout
        )
        return int(response.status), response.response
    # kubernetes <= 31: non-2xx statuses are raised as ApiException by the REST layer.
    from kubernetes.client.exceptions import ApiException

    try:
        raw = api_client.call_api(
            path,
            "GET",
            query_params=params,
            header_params=headers,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=timeout,
        )
    except ApiException as exc:
        if not exc.status:
            raise
        return int(exc.status), _BodyHolder(_as_bytes(exc.body))
    return int(raw.status), raw


class _BodyHolder:
    """An already-read error body, shaped like the urllib3 response the caller expects."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self) -> bytes:
        return self._body

    def release_conn(self) -> None:
        return None


def _status_message(body: bytes) -> str:
    """The `message` of a Kubernetes Status object, or the first line of a plain body: one printable line."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text.splitlines()[0]) if text else ""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return _one_line(str(data["message"]))
    return _one_line(text)


def _cause(exc: BaseException, timeout: float) -> str:
    """Words for a transport failure: connection refused, DNS, timeout, TLS."""
    import urllib3

    inner: BaseException = exc
    for _ in range(5):
        reason = getattr(inner, "reason", None)
        if isinstance(inner, urllib3.exceptions.MaxRetryError) and isinstance(reason, BaseException):
            inner = reason
            continue
        break
    text = str(inner)
    lowered = text.lower()
    name_errors: tuple[type[BaseException], ...] = (socket.gaierror,)
    name_resolution = getattr(urllib3.exceptions, "NameResolutionError", None)
    if isinstance(name_resolution, type):
        name_errors += (name_resolution,)
    if isinstance(inner, name_errors) or "name or service not known" in lowered or "name resolution" in lowered:
        return "DNS lookup failed (the host name does not resolve)"
    # Before the timeout test: urllib3's NewConnectionError derives from ConnectTimeoutError.
    if isinstance(inner, ConnectionRefusedError) or "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused (nothing listens on that address and port)"
    if "timed out" in lowered or isinstance(
        inner, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError, TimeoutError)
    ):
        return f"no answer within {timeout:g} s (--request-timeout)"
    if "no route to host" in lowered or "network is unreachable" in lowered:
        return "no route to the host (network unreachable)"
    if isinstance(inner, urllib3.exceptions.SSLError) or "ssl" in lowered or "certificate" in lowered:
        return "TLS error: " + _one_line(text)
    if isinstance(inner, urllib3.exceptions.ProtocolError) or "connection reset" in lowered:
        return "the connection was closed or reset by the server"
    return f"{type(inner).__name__}: {_one_line(text)}"


def _one_line(text: str) -> str:
    """At most 300 characters on one line, control characters (terminal escapes from a server) replaced."""
    line = " ".join(text[:2000].split())
    return "".join(c if c.isprintable() else "\ufffd" for c in line[:300])


# --- connecting ------------------------------------------------------------------------------------------------------


def connect(kubeconfig: str | None, context: str | None, clock: Clock) -> KubeApi:
    """Load credentials the way kubectl does (--kubeconfig, $KUBECONFIG, ~/.kube/config), else in-cluster."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from yaml import YAMLError

    # Some releases of the client are partly annotated and some are not: call it as untyped either way.
    config: Any = kube_config
    configuration = client.Configuration()
    if kubeconfig is not None or _default_kubeconfig_exists():
        source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
            raise ClusterError(f"kubeconfig {kubeconfig}: no such file")
        try:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
            )
            context_name = context or _current_context(kubeconfig)
        except (config.ConfigException, OSError, ValueError, KeyError, TypeError, AttributeError, YAMLError) as exc:
            raise ClusterError(f"kubeconfig {source}: {_one_line(str(exc)) or type(exc).__name__}") from None
        used: str | None = source
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        if context is not None:
            raise UsageError("--context needs a kubeconfig; none was found (--kubeconfig, $KUBECONFIG, ~/.kube/config)")
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as exc:
            raise ClusterError(f"in-cluster configuration: {_one_line(str(exc))}") from None
        context_name, used = "in-cluster", None
    else:
        raise ClusterError(
            "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running inside a cluster"
        )
    # One attempt per call: the user's --request-timeout is the whole budget, not one of several tries.
    configuration.retries = False
    api_client = client.ApiClient(configuration)
    api_client.user_agent = "mlops-trace (read-only collector)"
    _watch_connections(api_client)
    return KubeApi(api_client, Connection(str(configuration.host), context_name, used), clock)


def _default_kubeconfig_exists() -> bool:
    env = os.environ.get("KUBECONFIG")
    if env:
        return any(Path(p).expanduser().is_file() for p in env.split(os.pathsep) if p)
    return Path("~/.kube/config").expanduser().is_file()


def _current_context(kubeconfig: str | None) -> str:
    from kubernetes import config as kube_config

    config: Any = kube_config
    _, current = config.list_kube_config_contexts(config_file=kubeconfig)
    if isinstance(current, dict):
        return str(current.get("name") or "")
    return ""


IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace kubectl would use with no -n: the context's `namespace`, else `default`; inside a pod with no
    kubeconfig, the ServiceAccount's namespace."""
    if kubeconfig is not None or _default_kubeconfig_exists():
        source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
            raise ClusterError(f"kubeconfig {kubeconfig}: no such file")
        contexts, current = _merged_contexts(kubeconfig, source)
        chosen = current
        if current is None and context is None:
            raise ClusterError(f"kubeconfig {source}: no current-context, or it names no context of the file "
                               "(--context NAME)")
        if context is not None:
            chosen = next((c for c in contexts or () if isinstance(c, dict) and c.get("name") == context), None)
            if chosen is None:
                raise ClusterError(f"kubeconfig {source}: no context named {context!r}")
        body = chosen.get("context") if isinstance(chosen, dict) else None
        namespace = body.get("namespace") if isinstance(body, dict) else None
        return str(namespace) if isinstance(namespace, str) and namespace else "default"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            namespace = IN_CLUSTER_NAMESPACE_FILE.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClusterError(f"in-cluster namespace {IN_CLUSTER_NAMESPACE_FILE}: {exc.strerror or exc}") from None
        return namespace or "default"
    raise ClusterError(
        "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running inside a cluster"
    )


def _merged_contexts(kubeconfig: str | None, source: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The contexts (name and body) of the kubeconfig, merged by the client's own loader as kubectl merges them (a
    $KUBECONFIG may list several files; the first file that names a context wins), and the current one if it names
    one: a kubeconfig without `current-context` is fine when the user names the context."""
    from kubernetes.config import kube_config
    from yaml import YAMLError

    loader: Any = kube_config
    try:
        merged = loader.KubeConfigMerger(kubeconfig or loader.KUBE_CONFIG_DEFAULT_LOCATION).config
        document = getattr(merged, "value", merged) or {}
        items = document.get("contexts") or []
        current_name = document.get("current-context")
    except (loader.ConfigException, OSError, ValueError, KeyError, TypeError, AttributeError, YAMLError) as exc:
        raise ClusterError(f"kubeconfig {source}: {_one_line(str(exc)) or type(exc).__name__}") from None
    contexts = [entry for entry in (getattr(item, "value", item) for item in items) if isinstance(entry, dict)]
    current = next((c for c in contexts if current_name and c.get("name") == current_name), None)
    return contexts, current


def kubeconfig_contexts(kubeconfig: str | None) -> tuple[str, ...]:
    """Every context's name, in the kubeconfig's order (see `_merged_contexts`)."""
    if kubeconfig is None and not _default_kubeconfig_exists():
        raise ClusterError("--all-contexts needs a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config)")
    source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
        raise ClusterError(f"kubeconfig {kubeconfig}: no such file")
    contexts, _ = _merged_contexts(kubeconfig, source)
    found = tuple(dict.fromkeys(str(c["name"]) for c in contexts if isinstance(c.get("name"), str) and c["name"]))
    if not found:
        raise ClusterError(f"kubeconfig {source}: it names no context")
    return found
