"""Seldon backends: the Ingress backends whose resolution lands on Seldon's Envoy, and on which of its ports.

Joins the other modules of the package: the backends of ingress-nginx Ingresses (`backends`, `controllers`),
followed to their last Service (`resolution`), kept when that Service is `seldon-mesh` or selects Envoy pods.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_trace.analysis.ingress.backends import IngressBackend, ingress_backends, ingresses
from mlops_trace.analysis.ingress.controllers import is_nginx_ingress
from mlops_trace.analysis.ingress.resolution import Resolution, Stop, resolve_backend, target_port
from mlops_trace.analysis.seldon import MESH_SERVICE, envoy_services
from mlops_trace.snapshot.snapshot import Snapshot

ENVOY_STATS_PORT = 9003


@dataclass(frozen=True)
class SeldonBackend:
    """An Ingress backend that leads to Seldon's Envoy in `namespace`."""

    backend: IngressBackend
    resolution: Resolution
    namespace: str


def envoy_namespace(snap: Snapshot, resolution: Resolution) -> str | None:
    """The namespace whose Seldon Envoy the backend reaches: its last Service is `seldon-mesh` (even when that
    namespace was not collected) or a Service selecting Envoy pods. None when it leads elsewhere or nowhere known."""
    if resolution.stop in (Stop.EXTERNAL, Stop.LOOP):
        return None
    final = resolution.final
    if final.is_external_name:
        return None
    if final.name == MESH_SERVICE:
        return final.namespace
    if final.service is not None and any(s.name == final.name for s in envoy_services(snap, final.namespace)):
        return final.namespace
    return None


def is_envoy_data_port(resolution: Resolution) -> bool:
    """False when the backend lands on Envoy's stats/admin port (9003) rather than its data-plane listener."""
    port = target_port(resolution)
    if isinstance(port, int):
        return port != ENVOY_STATS_PORT
    if isinstance(port, str):
        return not any(word in port.lower() for word in ("stats", "admin"))
    asked = resolution.final.port.number
    return asked != ENVOY_STATS_PORT


def seldon_backends(snap: Snapshot, *, nginx_only: bool = True) -> list[SeldonBackend]:
    """Every Ingress backend (of ingress-nginx Ingresses, unless told otherwise) that leads to Seldon's Envoy."""
    found: list[SeldonBackend] = []
    for ing in ingresses(snap):
        if nginx_only and not is_nginx_ingress(snap, ing):
            continue
        for backend in ingress_backends(ing):
            resolution = resolve_backend(snap, backend.namespace, backend.service, backend.port)
            namespace = envoy_namespace(snap, resolution)
            if namespace is not None:
                found.append(SeldonBackend(backend, resolution, namespace))
    return found
