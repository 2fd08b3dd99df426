"""Envoy admin `/config_dump` JSON turned into listeners, route configs and clusters, with Envoy's route selection.

The public surface is re-exported here; each module holds one part:

- `model`: the values (`EnvoyConfig`, `Listener`, `RouteConfig`, `VirtualHost`, `Route`, `HeaderMatcher`,
  `ClusterWeight`, `Cluster`) and `ConfigDumpWithoutRouting`;
- `selection`: Envoy's first-match route selection (virtual host by authority, path and header matchers), behind
  `EnvoyConfig.select_route`, `Route.matches` and `HeaderMatcher.matches`;
- `document`: a loaded dump document read section by section (`parse_config_dump`);
- `resources`: one route, route configuration, listener or cluster document read into the model;
- `protojson`: lenient reading of protobuf JSON values and camelCase keys;
- `streaming`: the ijson read of a large dump file;
- `load`: reading a dump file, streamed or whole (`load_config_dump`).

Envoy writes snake_case keys; camelCase keys (protobuf JSON from other tools) are accepted too. A dump filtered with
`?resource=` or `?mask=` may lack sections: `EnvoyConfig.has_routes` / `has_clusters` say whether it can answer "is
there a route / cluster for X", and a dump with no Listeners, Routes or Clusters section at all raises
`ConfigDumpWithoutRouting` (an InputError) instead of reading as an empty config.
"""

from __future__ import annotations

from mlops_trace.parsers.envoy_config.document import parse_config_dump
from mlops_trace.parsers.envoy_config.load import load_config_dump
from mlops_trace.parsers.envoy_config.model import (
    Cluster,
    ClusterWeight,
    ConfigDumpWithoutRouting,
    EnvoyConfig,
    HeaderMatcher,
    Listener,
    Route,
    RouteConfig,
    VirtualHost,
)
from mlops_trace.parsers.envoy_config.selection import HeaderMatchKind

__all__ = [
    "Cluster",
    "ClusterWeight",
    "ConfigDumpWithoutRouting",
    "EnvoyConfig",
    "HeaderMatchKind",
    "HeaderMatcher",
    "Listener",
    "Route",
    "RouteConfig",
    "VirtualHost",
    "load_config_dump",
    "parse_config_dump",
]
