"""`mlops-trace bundle serve`: a read-only Kubernetes REST API over a bundle, bound to 127.0.0.1.

Like troubleshoot's sbctl, it lets kubectl and the official `kubernetes` client read an offline bundle as if it were a
cluster: discovery (`/api`, `/apis`, resource lists), list and get (per namespace and cluster-wide, with label
selectors), pod logs (`container`, `tailLines`), Envoy admin output through the pod proxy subresource, and `watch`
requests that end at once. Anything that would write (POST, PUT, PATCH, DELETE) is answered 405. Every request is
recorded (verb and path) so tests can prove a client only read.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mlops_trace.errors import InputError
from mlops_trace.serve.resources import NEVER_SERVED, Resource, ResourceTable
from mlops_trace.snapshot.kube import as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

SYNTHESIZED_ANNOTATION = "mlops-trace.io/synthesized"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


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

    def items(self, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
        found = self.objects_by_kind.get(resource.kind, [])
        if namespace is None or not resource.namespaced:
            return list(found)
        return [o for o in found if as_mapping(o.get("metadata")).get("namespace") == namespace]


# --- request handling --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, payload: Mapping[str, Any]) -> Response:
    return Response(status, json.dumps(payload).encode())


def _status(code: int, reason: str, message: str) -> Response:
    return _json(
        code,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code},
    )


def _label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """`a=b,c!=d,e` (equality and existence terms; set-based terms are accepted when they are `in (...)`)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "==" in term or "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif " in " in term:
            key, values = term.split(" in ", 1)
            allowed = {v.strip() for v in values.strip(" ()").split(",")}
            if labels.get(key.strip()) not in allowed:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    meta = as_mapping(obj.get("metadata"))
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        actual: Any = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}.get(key)
        if key == "status.phase":
            actual = as_mapping(obj.get("status")).get("phase")
        if (str(actual) == value) == negate:
            return False
    return True


class BundleApi:
    """Route one request to an answer. Pure over the ServedBundle, so it is testable without sockets."""

    def __init__(self, served: ServedBundle, server_address: str) -> None:
        self.served = served
        self.server_address = server_address

    def handle(self, method: str, raw_path: str, accept: str = "") -> Response:
        if method in WRITE_METHODS:
            return _status(405, "MethodNotAllowed", f"{method} is not allowed: this API serves a bundle read-only")
        if method not in ("GET", "HEAD"):
            return _status(405, "MethodNotAllowed", f"{method} is not supported")
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts == ["version"]:
            return _json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0+mlops-trace-bundle",
                               "platform": "linux/amd64"})
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return Response(200, b"ok", "text/plain")
        if parts == ["api"]:
            return _json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}]})
        if parts == ["apis"]:
            return _json(200, self._group_list())
        if parts and parts[0] == "api":
            return self._resource_request("", parts[1:], query, accept)
        if parts and parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                group = self._group(parts[1])
                return _json(200, group) if group else _status(404, "NotFound", f"group {parts[1]} not found")
            return self._resource_request(parts[1], parts[2:], query, accept)
        return _status(404, "NotFound", f"the server could not find the requested resource ({url.path})")

    # discovery

    def _group(self, name: str) -> dict[str, Any] | None:
        versions = self.served.table.group_versions().get(name)
        if not versions:
            return None
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": entries,
                "preferredVersion": entries[0]}

    def _group_list(self) -> dict[str, Any]:
        groups = [self._group(name) for name in self.served.table.group_versions()]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}

    def _resource_list(self, group: str, version: str) -> Response:
        resources: list[dict[str, Any]] = []
        for r in self.served.table.resources:
            if r.group != group or r.version != version:
                continue
            resources.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": ["get", "list", "watch"], "shortNames": list(r.short_names)})
            if r.kind == "Pod":
                resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                                  "verbs": ["get"]})
                resources.append({"name": "pods/proxy", "singularName": "", "namespaced": True,
                                  "kind": "PodProxyOptions", "verbs": ["get"]})
        if not resources:
            return _status(404, "NotFound", f"no resources in {group or 'core'}/{version}")
        gv = f"{group}/{version}" if group else version
        return _json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})

    # objects

    def _resource_request(self, group: str, rest: list[str], query: Mapping[str, str], accept: str) -> Response:
        if not rest:
            return _status(404, "NotFound", "no version given")
        version, path = rest[0], rest[1:]
        if not path:
            return self._resource_list(group, version)
        namespace: str | None = None
        if path[0] == "namespaces" and len(path) >= 3:
            namespace, path = path[1], path[2:]
        plural, name, sub = path[0], path[1] if len(path) > 1 else None, path[2:] if len(path) > 2 else []
        if plural == "namespaces" and name is not None and namespace is None and not sub:
            # GET /api/v1/namespaces/<name>: the Namespace object itself.
            pass
        resource = self.served.table.lookup(group, version, plural)
        if resource is None:
            return _status(404, "NotFound", f"the server could not find the requested resource ({plural})")
        if not self.served.holds(resource.kind):
            # The bundle never collected this kind: answering with an empty list would claim "none exist".
            return _status(404, "NotFound", f"the bundle holds no {resource.plural} (not collected)")
        if name is None:
            if query.get("watch") in ("1", "true"):
                return Response(200, b"")  # a watch that ends at once: the bundle never changes
            return self._list(resource, namespace, query, accept)
        pod_name, _, port = name.partition(":")
        obj = self._find(resource, namespace, pod_name)
        if sub == ["log"] and resource.kind == "Pod":
            return self._log(namespace, pod_name, query)
        if sub and sub[0] == "proxy" and resource.kind == "Pod":
            return self._proxy(namespace, pod_name, port, sub[1:])
        if sub:
            return _status(404, "NotFound", f"subresource {'/'.join(sub)} is not served")
        if obj is None:
            return _status(404, "NotFound", f'{resource.plural} "{name}" not found')
        return _json(200, obj)

    def _find(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.served.items(resource, namespace):
            if as_mapping(obj.get("metadata")).get("name") == name:
                return obj
        return None

    def _list(self, resource: Resource, namespace: str | None, query: Mapping[str, str], accept: str) -> Response:
        items = self.served.items(resource, namespace)
        if query.get("labelSelector"):
            items = [o for o in items if _label_selector_matches(
                query["labelSelector"], {str(k): str(v) for k, v in as_mapping(
                    as_mapping(o.get("metadata")).get("labels")).items()})]
        if query.get("fieldSelector"):
            items = [o for o in items if _field_selector_matches(query["fieldSelector"], o)]
        if "as=Table" in accept:
            return _json(200, _table(items, resource))
        return _json(200, {"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                           "metadata": {"resourceVersion": "1"}, "items": items})

    def _log(self, namespace: str | None, pod: str, query: Mapping[str, str]) -> Response:
        logs = [log for log in self.served.snap.logs if log.namespace == namespace and log.pod == pod]
        if not logs:
            return _status(404, "NotFound", f'no logs for pod "{pod}" in the bundle')
        container = query.get("container")
        if container:
            logs = [log for log in logs if log.container == container]
            if not logs:
                return _status(400, "BadRequest", f'container "{container}" is not valid for pod "{pod}"')
        elif len(logs) > 1:
            names = " ".join(sorted(log.container for log in logs))
            return _status(400, "BadRequest", f'a container name must be specified for pod {pod}, choose one of: [{names}]')
        lines = [line for _, line in logs[0].lines()]
        tail = query.get("tailLines")
        if tail is not None and tail.lstrip("-").isdigit() and int(tail) >= 0:
            lines = lines[-int(tail):] if int(tail) else []
        text = "".join(line + "\n" for line in lines)
        return Response(200, text.encode(), "text/plain")

    def _proxy(self, namespace: str | None, pod: str, port: str, path: list[str]) -> Response:
        envoy = next((e for e in self.served.snap.envoys if e.namespace == namespace and e.pod == pod), None)
        target = "/".join(path)
        if envoy is None:
            return _status(503, "ServiceUnavailable", f"no admin data for pod {pod} in the bundle")
        if port not in ("", "9901"):
            return _status(503, "ServiceUnavailable", f"only the Envoy admin port 9901 is served, not {port}")
        source = None
        if target in ("config_dump", "config_dump.json") and envoy.config_display:
            source = envoy.config_display
        elif target in ("stats", "stats.txt") and envoy.stats_display:
            source = envoy.stats_display
        if source is None:
            return _status(404, "NotFound", f"{target} is not in the bundle for pod {pod}")
        root = self.served.snap.root
        if root is None:
            return _status(404, "NotFound", f"{target} is not on disk for pod {pod}")
        body = (root / source).read_bytes()
        return Response(200, body, "application/json" if source.endswith(".json") else "text/plain")


def _table(items: Iterable[Mapping[str, Any]], resource: Resource) -> dict[str, Any]:
    """A minimal `meta.k8s.io/v1 Table`, which kubectl asks for and prints as columns."""
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    if resource.kind == "Pod":
        columns.append({"name": "Status", "type": "string", "format": "", "description": "Phase", "priority": 0})
    rows = []
    for obj in items:
        meta = as_mapping(obj.get("metadata"))
        cells: list[Any] = [meta.get("name")]
        if resource.kind == "Pod":
            cells.append(as_mapping(obj.get("status")).get("phase", "Unknown"))
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}}
        rows.append({"cells": cells, "object": partial})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
            "columnDefinitions": columns, "rows": rows}


# --- the HTTP server -------------------------------------------------------------------------------------------


def _handler(api: BundleApi, record: Callable[[str, str], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mlops-trace-bundle-serve"
        # Small answers on a kept-alive connection otherwise wait ~40 ms for Nagle to meet the client's delayed ACK.
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            record(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            response = api.handle(self.command, self.path, self.headers.get("Accept", ""))
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are recorded by `record`, not printed

    return Handler


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
) -> None:
    """Serve until Ctrl-C/SIGTERM or `duration` seconds; prints the kubeconfig on stdout once listening."""
    from mlops_trace.snapshot.bundle import open_bundle

    with open_bundle(bundle) as snap:
        served = ServedBundle.build(snap)
        lock = threading.Lock()
        log_handle = request_log.open("a", encoding="utf-8") if request_log else None

        def record(method: str, path: str) -> None:
            if log_handle is not None:
                with lock:
                    log_handle.write(f"{method} {path}\n")
                    log_handle.flush()

        try:
            httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(BundleApi(served, ""), record))
        except OSError as exc:
            raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
        httpd.daemon_threads = True
        address = f"127.0.0.1:{httpd.server_address[1]}"
        handler_api = BundleApi(served, address)
        httpd.RequestHandlerClass = _handler(handler_api, record)
        url = f"http://{address}"
        config = kubeconfig_text(url)
        if kubeconfig_out is not None:
            tmp = kubeconfig_out.with_suffix(kubeconfig_out.suffix + ".tmp")
            tmp.write_text(config, encoding="utf-8")
            tmp.replace(kubeconfig_out)  # atomic: a waiting test never reads half a file
        print(config, end="", flush=True)
        if ready is not None:
            ready(url)
        stop = threading.Event()

        def _stop(*_: Any) -> None:
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
        worker = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        worker.start()
        deadline = time.monotonic() + duration if duration else None
        try:
            while not stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                stop.wait(0.5 if remaining is None else min(0.5, remaining))
        finally:
            httpd.shutdown()
            httpd.server_close()
            if log_handle is not None:
                log_handle.close()

