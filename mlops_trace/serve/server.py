"""`mlops-trace bundle serve`: a read-only Kubernetes REST API over a bundle, bound to 127.0.0.1.

Like troubleshoot's sbctl, it lets kubectl and the official `kubernetes` client read an offline bundle as if it were a
cluster: discovery (`/api`, `/apis`, resource lists), list and get (per namespace and cluster-wide, with label and
field selectors), pod logs (`container`, `tailLines`, `limitBytes`, `previous`), Envoy admin output through the pod
proxy subresource, and `watch` requests that end at once. kubectl's table requests get the columns a cluster would
print (`tables.py`), discovery puts the workloads in the `all` category, and `kubectl auth can-i` is answered: the
one POST served is a SelfSubjectAccessReview, allowed for reading and refused for any write. Otherwise only GET and
HEAD are served: a write (POST, PUT, PATCH, DELETE) or any other method is answered 405, and a malformed selector,
parameter or path 400, each as a `kind: Status`.
Every request is recorded (verb and path) so tests can prove a client only read. Files are opened only inside the
bundle and never through a link (`files.py`); the HTTP side, with its bounds on hostile clients, is `httpd.py`.
"""

from __future__ import annotations

import io
import json
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from mlops_trace.errors import InputError
from mlops_trace.kinds import NEVER_SERVED, SYNTHESIZED_ANNOTATION, KindSpec
from mlops_trace.serve.files import RefusedFile, open_in_bundle
from mlops_trace.serve.httpd import (
    BundleHTTPServer,
    Response,
    json_response,
    log_line,
    printable,
    serving,
    status_response,
)
from mlops_trace.serve.resources import ResourceTable
from mlops_trace.serve.selectors import SelectorError, labels_match, parse_field_selector, parse_label_selector
from mlops_trace.serve.tables import INCLUDE_OBJECT, table
from mlops_trace.snapshot.kube import as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

if TYPE_CHECKING:
    from mlops_trace.limits import InputLimits

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_VERBS = frozenset({"get", "list", "watch"})

# `kubectl auth can-i` asks this; it is the one POST served, and the one request whose body is read.
AUTHORIZATION_GROUP = "authorization.k8s.io"
ACCESS_REVIEW_PATH = f"/apis/{AUTHORIZATION_GROUP}/v1/selfsubjectaccessreviews"
_ACCESS_REVIEW_RESOURCE = {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
                           "namespaced": False, "kind": "SelfSubjectAccessReview", "verbs": ["create"]}

# The resources kubectl's `get all` expands to through discovery (the API server's `categories: ["all"]`): pods,
# services, replicationcontrollers, daemonsets, deployments, replicasets, statefulsets, horizontalpodautoscalers, jobs,
# cronjobs. Only those the registry serves are listed, and only when the bundle holds the kind: `get all` fails as a
# whole on one 404. Knative's CRDs put theirs there too (knative/serving config/core/300-resources/*.yaml
# `categories: [all, knative, serving]`); kinds are named by their registry key.
ALL_CATEGORY_KINDS = frozenset({"Pod", "Service", "ReplicationController", "DaemonSet", "Deployment", "ReplicaSet",
                                "StatefulSet", "HorizontalPodAutoscaler", "Job", "CronJob",
                                "Service.serving.knative.dev", "Configuration", "Revision", "Route"})


@dataclass
class ServedBundle:
    """The bundle's objects arranged for the API: by kind, with stand-in Pods for pods that only have logs."""

    snap: Snapshot
    table: ResourceTable
    objects_by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, snap: Snapshot) -> ServedBundle:
        table = ResourceTable((o.api_version, o.kind) for o in snap.objects)
        served = cls(snap=snap, table=table)
        for obj in snap.objects:
            if obj.kind in NEVER_SERVED:
                continue
            body = dict(obj.raw)
            resource = table.for_kind(obj.kind)
            if resource is not None:
                body.setdefault("apiVersion", resource.group_version)
            served.objects_by_kind.setdefault(obj.kind, []).append(body)
        served._add_stand_ins()
        return served

    def _add_stand_ins(self) -> None:
        """Namespaces and Pods the bundle implies (by logs or Envoy data) but does not hold, so clients find them."""
        pods = {(p["metadata"].get("namespace"), p["metadata"].get("name")) for p in self.objects_by_kind.get("Pod", [])}
        containers: dict[tuple[str, str], list[str]] = {}
        for log in self.snap.logs:
            containers.setdefault((log.namespace, log.pod), []).append(log.container)
        for env in self.snap.envoys:
            containers.setdefault((env.namespace, env.pod), []).append("envoy")
        for (namespace, pod), names in sorted(containers.items()):
            if (namespace, pod) in pods:
                continue
            self.objects_by_kind.setdefault("Pod", []).append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod,
                        "namespace": namespace,
                        "annotations": {SYNTHESIZED_ANNOTATION: "true"},
                    },
                    "spec": {"containers": [{"name": c} for c in sorted(set(names))]},
                }
            )
        known_ns = {n["metadata"].get("name") for n in self.objects_by_kind.get("Namespace", [])}
        for namespace in self.snap.namespaces():
            if namespace not in known_ns:
                self.objects_by_kind.setdefault("Namespace", []).append(
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": namespace,
                            "labels": {"kubernetes.io/metadata.name": namespace},
                            "annotations": {SYNTHESIZED_ANNOTATION: "true"},
                        },
                        "status": {"phase": "Active"},
                    }
                )

    def holds(self, kind: str) -> bool:
        """Whether the bundle collected this kind (objects of it, or the bundle says it listed it and found none)."""
        meta = self.snap.metadata
        return bool(self.objects_by_kind.get(kind)) or kind in meta.kinds or kind in meta.empty_kinds

    def items(self, resource: KindSpec, namespace: str | None) -> list[dict[str, Any]]:
        found = self.objects_by_kind.get(resource.key, [])
        if namespace is None or not resource.namespaced:
            return list(found)
        return [o for o in found if as_mapping(o.get("metadata")).get("namespace") == namespace]


# --- request handling --------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """A request the API server would answer 400: its message becomes the Status message."""


_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP method is a token
_INT64_MAX = 2**63 - 1


def _int_param(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    """An integer query parameter the way the API server reads it (an int64), or None when absent."""
    text = query.get(name)
    if text is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", text.strip()) or int(text) > _INT64_MAX:
        raise BadRequest(f"{name}: invalid value {printable(text[:40])!r}: must be an integer")
    value = int(text)
    if value < minimum:
        raise BadRequest(f"{name}: invalid value {value}: must be greater than or equal to {minimum}")
    return value


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"", "0", "f", "F", "FALSE", "false", "False"})


def _bool_param(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter the way the API server reads it (Go's strconv.ParseBool); absent is false."""
    text = query.get(name, "")
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"{name}: invalid value {printable(text[:40])!r}: must be a boolean")


def _path_segments(path: str) -> list[str]:
    """The non-empty segments of a request path, each percent-decoded (so `%2F` stays inside its segment)."""
    segments = [unquote(raw, errors="replace") for raw in path.split("/") if raw]
    if any(segment in (".", "..") for segment in segments):
        raise BadRequest(f"the path {printable(path)!r} holds a '.' or '..' segment")
    return segments


class BundleApi:
    """Route one request to an answer. Pure over the ServedBundle, so it is testable without sockets."""

    def __init__(self, served: ServedBundle, server_address: str) -> None:
        self.served = served
        self.server_address = server_address

    def reads_body(self, method: str, raw_path: str) -> bool:
        """Whether the HTTP side should read this request's body: only for the access review."""
        return method == "POST" and urlsplit(raw_path).path.rstrip("/") == ACCESS_REVIEW_PATH

    def handle(self, method: str, raw_path: str, accept: str = "", body: bytes = b"") -> Response:
        if not _METHOD.fullmatch(method):
            return status_response(400, f"{printable(method)!r} is not an HTTP method")
        if self.reads_body(method, raw_path):
            try:
                return self._access_review(body)
            except BadRequest as exc:
                return status_response(400, str(exc))
        if method in WRITE_METHODS:
            return status_response(405, f"{method} is not allowed: this API serves a bundle read-only")
        if method not in ("GET", "HEAD"):
            return status_response(405, f"{method} is not supported: this API serves GET and HEAD only")
        try:
            return self._route(raw_path, accept)
        except BadRequest as exc:
            return status_response(400, str(exc))

    def _route(self, raw_path: str, accept: str) -> Response:
        try:
            url = urlsplit(raw_path)
        except ValueError as exc:
            raise BadRequest(f"the request target is not a URL path: {exc}") from None
        query = {k: v[-1] for k, v in parse_qs(url.query, errors="replace").items()}
        parts = _path_segments(url.path)
        if parts == ["version"]:
            return json_response(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0+mlops-trace-bundle",
                                       "platform": "linux/amd64"})
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return Response(200, b"ok", "text/plain")
        if parts == ["api"]:
            return json_response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}]})
        if parts == ["apis"]:
            return json_response(200, self._group_list())
        if parts and parts[0] == "api":
            return self._resource_request("", parts[1:], query, accept)
        if parts and parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                group = self._group(parts[1])
                return json_response(200, group) if group else status_response(404, f"group {parts[1]} not found")
            return self._resource_request(parts[1], parts[2:], query, accept)
        return status_response(404, f"the server could not find the requested resource ({printable(url.path)})")

    # access reviews

    def _access_review(self, body: bytes) -> Response:
        """`kubectl auth can-i`: reading is allowed (Secrets excepted: never served), every write refused."""
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the SelfSubjectAccessReview is not JSON: {exc}") from None
        if not isinstance(review, dict) or review.get("kind") not in (None, "SelfSubjectAccessReview"):
            raise BadRequest("the body is not a SelfSubjectAccessReview")
        spec = as_mapping(review.get("spec"))
        attributes = as_mapping(spec.get("resourceAttributes")) or as_mapping(spec.get("nonResourceAttributes"))
        verb = str(attributes.get("verb") or "")
        if not verb:
            raise BadRequest("spec.resourceAttributes.verb or spec.nonResourceAttributes.verb is required")
        resource = str(attributes.get("resource") or "")
        if verb not in READ_VERBS:
            outcome = {"allowed": False, "denied": True,
                       "reason": f"bundle serve is read-only: {verb} is never allowed, only get, list and watch"}
        elif resource == "secrets" and not attributes.get("group"):
            outcome = {"allowed": False, "denied": True, "reason": "a bundle never holds Secrets: they are not served"}
        else:
            outcome = {"allowed": True, "reason": "bundle serve allows reading everything it serves"}
        return json_response(201, {"kind": "SelfSubjectAccessReview", "apiVersion": f"{AUTHORIZATION_GROUP}/v1",
                                   "metadata": {"creationTimestamp": None}, "spec": dict(spec), "status": outcome})

    # discovery

    def _group(self, name: str) -> dict[str, Any] | None:
        if name == AUTHORIZATION_GROUP:
            entry = {"groupVersion": f"{AUTHORIZATION_GROUP}/v1", "version": "v1"}
            return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [entry],
                    "preferredVersion": entry}
        versions = self.served.table.group_versions().get(name)
        if not versions:
            return None
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": entries,
                "preferredVersion": entries[0]}

    def _group_list(self) -> dict[str, Any]:
        groups = [self._group(name) for name in [*self.served.table.group_versions(), AUTHORIZATION_GROUP]]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}

    def _resource_list(self, group: str, version: str) -> Response:
        resources: list[dict[str, Any]] = []
        if (group, version) == (AUTHORIZATION_GROUP, "v1"):
            resources.append(dict(_ACCESS_REVIEW_RESOURCE))
        for r in self.served.table.resources:
            if r.group != group or r.version != version:
                continue
            entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                     "kind": r.kind, "verbs": ["get", "list", "watch"], "shortNames": list(r.short_names)}
            if r.key in ALL_CATEGORY_KINDS and self.served.holds(r.key):
                entry["categories"] = ["all"]
            resources.append(entry)
            if r.kind == "Pod":
                resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                                  "verbs": ["get"]})
                resources.append({"name": "pods/proxy", "singularName": "", "namespaced": True,
                                  "kind": "PodProxyOptions", "verbs": ["get"]})
        if not resources:
            return status_response(404, f"no resources in {group or 'core'}/{version}")
        gv = f"{group}/{version}" if group else version
        return json_response(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                   "resources": resources})

    # objects

    def _resource_request(self, group: str, rest: list[str], query: Mapping[str, str], accept: str) -> Response:
        if not rest:
            return status_response(404, "no version given")
        version, path = rest[0], rest[1:]
        if not path:
            return self._resource_list(group, version)
        namespace: str | None = None
        if path[0] == "namespaces" and len(path) >= 3:
            namespace, path = path[1], path[2:]
        plural, name, sub = path[0], path[1] if len(path) > 1 else None, path[2:] if len(path) > 2 else []
        resource = self.served.table.lookup(group, version, plural)
        if resource is None:
            return status_response(404, f"the server could not find the requested resource ({plural})")
        if not self.served.holds(resource.key):
            # The bundle never collected this kind: answering with an empty list would claim "none exist".
            return status_response(404, f"the bundle holds no {resource.plural} (not collected)")
        if name is None:
            if query.get("watch") in ("1", "true"):
                return Response(200, b"")  # a watch that ends at once: the bundle never changes
            return self._list(resource, namespace, query, accept)
        if sub == ["log"] and resource.kind == "Pod":
            return self._log(namespace, name, query)
        if sub and sub[0] == "proxy" and resource.kind == "Pod":
            # `[scheme:]name[:port]`, as the API server reads a proxy target.
            pieces = name.split(":")
            pod, port = (pieces[1], pieces[2]) if len(pieces) == 3 else (pieces[0], pieces[1] if len(pieces) > 1 else "")
            return self._proxy(namespace, pod, port, sub[1:])
        if sub:
            return status_response(404, f"subresource {'/'.join(sub)} is not served")
        obj = self._find(resource, namespace, name)
        if obj is None:
            return status_response(404, f'{resource.plural} "{name}" not found')
        if _wants_table(accept):
            return json_response(200, table(resource.key, [obj], _include_object(query)))
        return json_response(200, obj)

    def _find(self, resource: KindSpec, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.served.items(resource, namespace):
            if as_mapping(obj.get("metadata")).get("name") == name:
                return obj
        return None

    def _list(self, resource: KindSpec, namespace: str | None, query: Mapping[str, str], accept: str) -> Response:
        try:
            by_labels = parse_label_selector(query.get("labelSelector", ""))
            by_fields = parse_field_selector(query.get("fieldSelector", ""), resource.key)
        except SelectorError as exc:
            raise BadRequest(str(exc)) from None
        items = [
            o for o in self.served.items(resource, namespace)
            if labels_match(by_labels, {str(k): str(v) for k, v in as_mapping(
                as_mapping(o.get("metadata")).get("labels")).items()})
            and all(term.matches(o) for term in by_fields)
        ]
        if _wants_table(accept):
            return json_response(200, table(resource.key, items, _include_object(query)))
        return json_response(200, {"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                                   "metadata": {"resourceVersion": "1"}, "items": items})

    def _log(self, namespace: str | None, pod: str, query: Mapping[str, str]) -> Response:
        tail = _int_param(query, "tailLines", minimum=0)
        limit = _int_param(query, "limitBytes", minimum=1)
        logs = [log for log in self.served.snap.logs if log.namespace == namespace and log.pod == pod]
        if not logs:
            return status_response(404, f'no logs for pod "{pod}" in the bundle')
        container = query.get("container")
        if container:
            logs = [log for log in logs if log.container == container]
            if not logs:
                return status_response(400, f'container "{container}" is not valid for pod "{pod}"')
        elif len(logs) > 1:
            names = " ".join(sorted(log.container for log in logs))
            return status_response(400, f"a container name must be specified for pod {pod}, choose one of: [{names}]")
        source = logs[0]
        if _bool_param(query, "previous"):
            # The previous run of a restarted container (`<container>.previous.log`); the API server answers 400
            # with these words when the kubelet holds none.
            if source.previous_run is None:
                return status_response(
                    400, f'previous terminated container "{source.container}" in pod "{pod}" not found'
                )
            source = source.previous_run
        handle = self._open(source.display)
        if isinstance(handle, Response):
            return handle
        with handle:
            return Response(200, _log_text(handle, tail, limit), "text/plain")

    def _proxy(self, namespace: str | None, pod: str, port: str, path: list[str]) -> Response:
        envoy = next((e for e in self.served.snap.envoys if e.namespace == namespace and e.pod == pod), None)
        target = "/".join(path)
        if envoy is None:
            return status_response(503, f"no admin data for pod {pod} in the bundle")
        if port not in ("", "9901"):
            return status_response(503, f"only the Envoy admin port 9901 is served, not {port}")
        source = None
        if target in ("config_dump", "config_dump.json") and envoy.config_display:
            source = envoy.config_display
        elif target in ("stats", "stats.txt") and envoy.stats_display:
            source = envoy.stats_display
        if source is None:
            return status_response(404, f"{target} is not in the bundle for pod {pod}")
        handle = self._open(source)
        if isinstance(handle, Response):
            return handle
        with handle:
            body = handle.read()
        return Response(200, body, "application/json" if source.endswith(".json") else "text/plain")

    def _open(self, relative: str) -> BinaryIO | Response:
        """A bundle file opened for reading, or the 404 that says why it is not served."""
        root = self.served.snap.root
        if root is None:
            return status_response(404, f"{relative} is not on disk")
        try:
            return open_in_bundle(root, relative)
        except RefusedFile as exc:
            log_line(f"not serving {printable(exc.relative)}: {exc.reason}")
            return status_response(404, f"{exc.relative} is not served: {exc.reason}")


def _log_text(handle: BinaryIO, tail: int | None, limit: int | None) -> bytes:
    """The log as the bundle reader sees it (UTF-8 with replacement, one `\n` per line), its last `tail` lines, at
    most `limit` bytes; only `tail` lines are held while reading."""
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
    lines: Iterable[str] = (line.rstrip("\r\n") for line in text)
    if tail is not None:
        lines = deque(lines, maxlen=min(tail, sys.maxsize)) if tail else ()
    out = bytearray()
    for line in lines:
        out += line.encode("utf-8") + b"\n"
        if limit is not None and len(out) >= limit:
            del out[limit:]
            break
    text.detach()  # the caller closes the file
    return bytes(out)


def _wants_table(accept: str) -> bool:
    """Whether the client asks for a `meta.k8s.io` Table first (kubectl `get`: `application/json;as=Table;v=v1;
    g=meta.k8s.io,...,application/json`); a client that lists JSON first gets the List."""
    first = accept.split(",")[0].replace(" ", "").split(";")
    return "as=Table" in first and "g=meta.k8s.io" in first


def _include_object(query: Mapping[str, str]) -> str:
    value = query.get("includeObject") or "Metadata"
    if value not in INCLUDE_OBJECT:
        raise BadRequest(f"includeObject: invalid value {printable(value[:40])!r}: must be one of "
                         f"{', '.join(INCLUDE_OBJECT)}")
    return value


# --- serving -----------------------------------------------------------------------------------------------------


def kubeconfig_text(server_url: str, name: str = "mlops-trace-bundle") -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: {server_url}\n"
        f"users:\n- name: {name}\n  user: {{}}\n"
        f"contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
        f"current-context: {name}\n"
    )


def serve_bundle(
    bundle: Path,
    *,
    port: int = 0,
    kubeconfig_out: Path | None = None,
    request_log: Path | None = None,
    duration: float | None = None,
    ready: Callable[[str], None] | None = None,
    limits: InputLimits | None = None,
) -> None:
    """Serve until Ctrl-C/SIGTERM or `duration` seconds; prints the kubeconfig on stdout once listening. `limits`
    bound what reading the bundle may take (`--limit`); the bounds on clients are `ServeLimits`."""
    from mlops_trace.snapshot.bundle import open_bundle

    with open_bundle(bundle) if limits is None else open_bundle(bundle, limits) as snap:
        served = ServedBundle.build(snap)
        lock = threading.Lock()
        try:
            log_handle = request_log.open("a", encoding="utf-8") if request_log else None
        except OSError as exc:
            raise InputError(f"cannot write the request log {request_log}: {exc.strerror or exc}") from exc

        def record(method: str, path: str) -> None:
            if log_handle is not None:
                with lock:
                    log_handle.write(f"{method} {path}\n")
                    log_handle.flush()

        try:
            try:
                httpd = BundleHTTPServer(port, record)
            except (OSError, OverflowError) as exc:
                raise InputError(f"cannot listen on 127.0.0.1:{port}: {getattr(exc, 'strerror', None) or exc}") from exc
            address = f"127.0.0.1:{httpd.port}"
            httpd.api = BundleApi(served, address)
            with serving(httpd):
                url = f"http://{address}"
                config = kubeconfig_text(url)
                if kubeconfig_out is not None:
                    tmp = kubeconfig_out.with_suffix(kubeconfig_out.suffix + ".tmp")
                    try:
                        tmp.write_text(config, encoding="utf-8")
                        tmp.replace(kubeconfig_out)  # atomic: a waiting test never reads half a file
                    except OSError as exc:
                        raise InputError(f"cannot write {kubeconfig_out}: {exc.strerror or exc}") from exc
                print(config, end="", flush=True)
                if ready is not None:
                    ready(url)
                _wait(duration)
        finally:
            if log_handle is not None:
                log_handle.close()


def _wait(duration: float | None) -> None:
    """Until SIGTERM or Ctrl-C, or `duration` seconds."""
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    deadline = time.monotonic() + duration if duration else None
    while not stop.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        stop.wait(0.5 if remaining is None else min(0.5, remaining))
