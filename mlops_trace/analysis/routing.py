"""Seldon request-routing helpers the routing checks share: header names, which Envoy route configs serve inference,
which access lines are Envoy's own 404s, and how to quote a log line as evidence."""

from __future__ import annotations

from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.envoy_config import EnvoyConfig
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

SELDON_MODEL = "seldon-model"
STICKY_HEADER = "x-seldon-route"
INTERNAL_MODEL = "seldon-internal-model"
SERVING_LISTENER = "seldon_http"
SERVING_ROUTE_CONFIG = "listener_0"
EVIDENCE_WIDTH = 200


def short_line(text: str) -> str:
    """A log line cut to one readable evidence line."""
    return text if len(text) <= EVIDENCE_WIDTH else text[: EVIDENCE_WIDTH - 3] + "..."


def serving_route_configs(config: EnvoyConfig) -> list[str]:
    """Route configs that serve inference: those of the `seldon_http` listener, else `listener_0`, else every route
    config with a `seldon-model` route (a hand-made or renamed setup)."""
    for listener in config.listeners:
        if listener.name == SERVING_LISTENER and listener.route_config_names:
            return list(listener.route_config_names)
    if config.route_config(SERVING_ROUTE_CONFIG) is not None:
        return [SERVING_ROUTE_CONFIG]
    return [rc.name for rc in config.route_configs if any(r.header_exact(SELDON_MODEL) for r in config.routes(rc.name))]


def envoy_access_logs(snap: Snapshot) -> list[LogSource]:
    """Every log that may hold Envoy access lines: Envoy container logs and `envoy/<ns>/<pod>/access.log`."""
    logs = list(snap.logs_of(Role.ENVOY))
    logs += [env.access_log for env in snap.envoys if env.access_log is not None]
    return logs


def envoy_no_route(record: EnvoyAccessRecord) -> bool:
    """A 404 Envoy produced itself: flag NR, or no flag at all and nothing upstream answered."""
    if record.status != 404:
        return False
    if "NR" in record.response_flags:
        return True
    return not record.response_flags and record.upstream_host is None and record.upstream_service_time_ms is None


def request_succeeded(record: RequestRecord) -> bool:
    if record.protocol == "grpc":
        return (record.grpc_status or "").upper() in ("0", "OK")
    return record.status is not None and 200 <= record.status < 300


def namespace_from_upstream(candidates: list[str], upstream: str) -> str | None:
    """The namespace an ingress-nginx line went to: the one `[$proxy_upstream_name]` (`<ns>-<svc>-<port>`) starts
    with, else the only candidate; None when it stays ambiguous."""
    named = [ns for ns in candidates if upstream.startswith(ns + "-")]
    if named:
        return max(named, key=len)
    return candidates[0] if len(candidates) == 1 else None
