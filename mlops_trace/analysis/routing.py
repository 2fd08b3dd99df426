"""Seldon Core v2's request routing, in one place (SELDON-FACTS §1): the headers that pick a route, the listener and
route configs that serve inference, the names Envoy gives routes and clusters, what Seldon's Lua filter adds to a
request, and how the shapes of an answer and an access line tell Envoy's own 404 from a model's.

The checks and `request` both read these; nothing else spells a header, a route value or a cluster name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.envoy_config import ClusterWeight, EnvoyConfig, Route
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

SELDON_MODEL = "seldon-model"  # picks the route: `<model>`, `<exp>.experiment`, `<pipeline>.pipeline`
STICKY_HEADER = "x-seldon-route"  # the candidate that served a request; sent back, it pins the next one
INTERNAL_MODEL = "seldon-internal-model"
UPSTREAM_TIME_HEADER = "x-envoy-upstream-service-time"
SERVING_LISTENER = "seldon_http"
SERVING_ROUTE_CONFIG = "listener_0"
EXPERIMENT_SUFFIX = ".experiment"
PIPELINE_SUFFIX = ".pipeline"

_VERSIONED = re.compile(r"^(?P<model>.+)_(?P<version>\d+)$")
_MODEL_CLUSTER = re.compile(r"^(?P<model>.+)_(?P<version>\d+)_(?P<protocol>http|grpc)$")
_PIPELINE_CLUSTER = re.compile(r"^(?P<pipeline>.+)_pipeline_(?:http|grpc)$")

# --- names -------------------------------------------------------------------------------------------------------


def experiment_route_name(experiment_name: str) -> str:
    """The `seldon-model` value that routes to an Experiment: `<name>.experiment`."""
    return f"{experiment_name}{EXPERIMENT_SUFFIX}"


def pipeline_route_name(pipeline_name: str) -> str:
    """The `seldon-model` value that routes to a Pipeline: `<name>.pipeline`."""
    return f"{pipeline_name}{PIPELINE_SUFFIX}"


def object_of_route_value(seldon_model: str) -> str:
    """`ab.experiment` → `Experiment/ab`, `p.pipeline` → `Pipeline/p`, anything else → `Model/<value>`."""
    if seldon_model.endswith(EXPERIMENT_SUFFIX):
        return "Experiment/" + seldon_model[: -len(EXPERIMENT_SUFFIX)]
    if seldon_model.endswith(PIPELINE_SUFFIX):
        return "Pipeline/" + seldon_model[: -len(PIPELINE_SUFFIX)]
    return "Model/" + seldon_model


def experiment_of_route_value(seldon_model: str | None) -> str | None:
    """`ab.experiment` → `ab`; None for any other value."""
    if not seldon_model or not seldon_model.endswith(EXPERIMENT_SUFFIX):
        return None
    return seldon_model[: -len(EXPERIMENT_SUFFIX)] or None


def versioned_name(model: str, version: int | str) -> str:
    """`<model>_<version>`, the name Envoy clusters, the agent and MLServer use."""
    return f"{model}_{version}"


def split_versioned(name: str) -> tuple[str, str | None]:
    """`iris_2` → (`iris`, `2`); a name without a version suffix → (name, None)."""
    match = _VERSIONED.match(name)
    return (match.group("model"), match.group("version")) if match else (name, None)


def unversioned(name: str) -> str:
    """`iris_1` → `iris`; a name without a version suffix is returned unchanged."""
    return split_versioned(name)[0]


def cluster_model(cluster: str) -> str | None:
    """The versioned model of an Envoy model cluster: `iris_2_http` → `iris_2`; None for other clusters."""
    match = _MODEL_CLUSTER.match(cluster)
    return f"{match.group('model')}_{match.group('version')}" if match else None


def model_of_cluster(cluster: str) -> str | None:
    """The model of an Envoy model cluster, without its version: `iris_1_http` → `iris`; None for other clusters."""
    match = _MODEL_CLUSTER.match(cluster)
    return match.group("model") if match else None


def pipeline_of_cluster(cluster: str) -> str | None:
    """The pipeline of an Envoy pipeline-gateway cluster: `p_pipeline_http` → `p`; None for other clusters."""
    match = _PIPELINE_CLUSTER.match(cluster)
    return match.group("pipeline") if match else None


def cluster_pattern(model: str) -> re.Pattern[str]:
    """Envoy cluster names of any version of `model`: `<model>_<n>_http` / `_grpc`."""
    return re.compile(rf"^{re.escape(model)}_(\d+)_(http|grpc)$")


def route_models(route_header: str | None) -> list[str]:
    """`:iris_1:` → [`iris_1`]; pipelines add `:p.pipeline:` values, which are kept too."""
    if not route_header:
        return []
    return [part for part in route_header.replace(" ", ":").split(":") if part]


def candidate_of_route(route_header: str) -> str:
    """The candidate an `x-seldon-route` answer names: `:baseline-predictor_1:` → `baseline-predictor`; anything
    else is kept as it came."""
    names = route_models(route_header)
    if not names:
        return route_header
    return unversioned(names[0])


# --- Envoy's routes ----------------------------------------------------------------------------------------------


def serving_route_configs(config: EnvoyConfig) -> list[str]:
    """Route configs that serve inference: those of the `seldon_http` listener, else `listener_0`, else every route
    config with a `seldon-model` route (a hand-made or renamed setup)."""
    for listener in config.listeners:
        if listener.name == SERVING_LISTENER and listener.route_config_names:
            return list(listener.route_config_names)
    if config.route_config(SERVING_ROUTE_CONFIG) is not None:
        return [SERVING_ROUTE_CONFIG]
    return [rc.name for rc in config.route_configs if any(r.header_exact(SELDON_MODEL) for r in config.routes(rc.name))]


def select_route(config: EnvoyConfig, authority: str, path: str, headers: Mapping[str, str]) -> Route | None:
    """The route Envoy's router takes for a request (headers as the router sees them: `lua_effective_headers`)."""
    for name in serving_route_configs(config):
        route = config.select_route(name, authority, path, headers)
        if route is not None:
            return route
    return None


def candidate_of_cluster(cluster: ClusterWeight, pipelines: bool = False) -> str:
    """The candidate a weighted cluster serves: from `seldon-internal-model` (`<m>_<v>` / `<p>.pipeline`), else from
    the cluster name (`<m>_<v>_http`, `<p>_pipeline_http`); an unknown cluster stands for itself."""
    internal = cluster.request_headers_to_add.get(INTERNAL_MODEL)
    if internal:
        if internal.endswith(PIPELINE_SUFFIX):
            return internal[: -len(PIPELINE_SUFFIX)]
        return unversioned(internal)
    target = pipeline_of_cluster(cluster.cluster) if pipelines else model_of_cluster(cluster.cluster)
    return target if target is not None else cluster.cluster


def split_routes(config: EnvoyConfig, seldon_model: str) -> list[Route]:
    """The routes that split first requests for a `seldon-model` value (sticky routes pin one cluster: left out)."""
    return [
        route
        for route in config.routes_with_header_exact(SELDON_MODEL, seldon_model)
        if route.header_contains(STICKY_HEADER) is None
    ]


def lua_effective_headers(path: str, headers: Mapping[str, str], grpc: bool = False) -> dict[str, str]:
    """Headers as Envoy's router sees them after Seldon's Lua filter: only for REST, and only when neither
    `seldon-model` nor `x-seldon-route` is present, `/v2/models/<n>…` gains `seldon-model: <n>` and
    `/v2/pipelines/<n>…` gains `<n>.pipeline`."""
    result = {name.lower(): value for name, value in headers.items()}
    if grpc or SELDON_MODEL in result or STICKY_HEADER in result:
        return result
    for marker, suffix in (("/v2/models/", ""), ("/v2/pipelines/", PIPELINE_SUFFIX)):
        if path.startswith(marker):
            name = path[len(marker) :].split("/", 1)[0].split("?", 1)[0]
            if name:
                result[SELDON_MODEL] = name + suffix
            break
    return result


# --- answers and access lines ------------------------------------------------------------------------------------


def envoy_no_route(record: EnvoyAccessRecord) -> bool:
    """A 404 Envoy produced itself: flag NR, or no flag at all and nothing upstream answered."""
    if record.status != 404:
        return False
    if "NR" in record.response_flags:
        return True
    return not record.response_flags and record.upstream_host is None and record.upstream_service_time_ms is None


def envoy_access_logs(snap: Snapshot) -> list[LogSource]:
    """Every log that may hold Envoy access lines: Envoy container logs and `envoy/<ns>/<pod>/access.log`."""
    logs = list(snap.logs_of(Role.ENVOY))
    logs += [env.access_log for env in snap.envoys if env.access_log is not None]
    return logs


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
