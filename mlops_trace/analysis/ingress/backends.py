"""Ingress backends: which Service and port each rule path (or the defaultBackend) of an Ingress sends traffic to.

Reads the Ingress object only (networking.k8s.io/v1 and the extensions/v1beta1 shapes); what the Service behind a
backend is, and which controller serves the Ingress, are `resolution`'s and `controllers`' jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis import fields
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot


class PathType(StrEnum):
    """The `pathType` of an Ingress path (how ingress-nginx matches each one is in `nginx.simulate_path`)."""

    PREFIX = "Prefix"
    EXACT = "Exact"
    IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass(frozen=True)
class PortRef:
    """A Service port as a backend names it: by number or by name (both None: unknown)."""

    number: int | None = None
    name: str | None = None

    @property
    def known(self) -> bool:
        return self.number is not None or self.name is not None

    def __str__(self) -> str:
        if self.number is not None:
            return str(self.number)
        return self.name if self.name is not None else "?"


@dataclass(frozen=True)
class IngressBackend:
    """One Service backend of an Ingress: a rule path, or the defaultBackend (path None)."""

    ingress: KubeObject
    service: str
    port: PortRef
    field: str  # ".spec.rules[0].http.paths[1].backend"
    host: str | None
    path: str | None
    path_type: str
    path_field: str | None  # ".spec.rules[0].http.paths[1].path"

    @property
    def namespace(self) -> str:
        return self.ingress.namespace or "default"

    @property
    def where(self) -> str:
        return self.ingress.field_where(self.field)

    def describe(self) -> str:
        """`host h path /x (Prefix) → svc:80`, or `defaultBackend → svc:80`."""
        target = f"{self.service}:{self.port}"
        if self.path is None:
            return f"defaultBackend → {target}"
        host = f"host {self.host} " if self.host else ""
        return f"{host}path {self.path} ({self.path_type}) → {target}"


def ingresses(snap: Snapshot) -> list[KubeObject]:
    """Ingress objects of the networking.k8s.io (or legacy extensions) API."""
    return [
        ing
        for ing in snap.objects_of("Ingress")
        if not ing.api_version or ing.api_version.startswith(("networking.k8s.io/", "extensions/"))
    ]


def ingress_backends(ingress: KubeObject) -> list[IngressBackend]:
    """Service backends of the rules' paths, then the defaultBackend (`spec.backend` in extensions/v1beta1)."""
    found: list[IngressBackend] = []
    for r_index, rule_value in enumerate(as_list(ingress.spec.get("rules"))):
        rule = as_mapping(rule_value)
        host = str(rule["host"]) if rule.get("host") else None
        for p_index, path_value in enumerate(as_list(as_mapping(rule.get("http")).get("paths"))):
            item = as_mapping(path_value)
            base = f".spec.rules[{r_index}].http.paths[{p_index}]"
            backend = _service_backend(ingress, as_mapping(item.get("backend")), base + ".backend")
            if backend is None:
                continue
            service, port, field = backend
            found.append(
                IngressBackend(
                    ingress=ingress,
                    service=service,
                    port=port,
                    field=field,
                    host=host,
                    path=str(item.get("path") or "/"),
                    path_type=str(item.get("pathType") or PathType.IMPLEMENTATION_SPECIFIC),
                    path_field=base + ".path",
                )
            )
    for key in ("defaultBackend", "backend"):
        default = _service_backend(ingress, as_mapping(ingress.spec.get(key)), f".spec.{key}")
        if default is not None:
            service, port, field = default
            found.append(IngressBackend(ingress, service, port, field, None, None, "", None))
            break
    return found


def _service_backend(ingress: KubeObject, backend: Mapping[str, Any], field: str) -> tuple[str, PortRef, str] | None:
    service = as_mapping(backend.get("service"))
    if service.get("name"):
        port = as_mapping(service.get("port"))
        return str(service["name"]), _port_ref(port.get("number"), port.get("name")), field + ".service"
    if backend.get("serviceName"):
        raw = backend.get("servicePort")
        return str(backend["serviceName"]), _port_ref(raw, None), field
    return None


def _port_ref(number: Any, name: Any) -> PortRef:
    """The port a backend asks for (`port.number`/`port.name`, or v1beta1's IntOrString `servicePort`); a value that
    is neither a port number nor a name leaves the port unknown."""
    for value in (number, name):
        if isinstance(value, str):
            value = value.strip()
        found = fields.port_number(value)
        if found is not None:
            return PortRef(number=found)
        if isinstance(value, str) and value and fields.integer(value) is None:
            return PortRef(name=value)
    return PortRef()
