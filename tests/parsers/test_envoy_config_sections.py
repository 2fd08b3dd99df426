"""Which `/config_dump` sections a dump held, dumps without the sections checks read (filtered with `?resource=` or
`?mask=`), and the older shapes of `configs`: Envoy 1.7-1.9's map keyed by section name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config import ConfigDumpWithoutRouting, EnvoyConfig, load_config_dump, parse_config_dump
from mlops_trace.parsers.envoy_config import load as envoy_load
from mlops_trace.parsers.envoy_config.streaming import NotStreamable

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]
HEALTHY = ROOT / "fixtures/scenarios/healthy-ab/envoy/fraud-serving/seldon-envoy-66b4f9d7c8-k8m2n/config_dump.json"


@pytest.mark.parametrize(
    ("name", "sections", "message"),
    [
        (
            "envoy-ecds-secrets-only.json",
            {"ECDS", "Secrets"},
            "holds only ECDS, Secrets: no listeners, routes or clusters to check",
        ),
        ("envoy-bootstrap-only.json", {"Bootstrap"}, "holds only Bootstrap: no listeners, routes or clusters to check"),
        ("envoy-endpoints-only.json", {"Endpoints"}, "holds only Endpoints: no listeners, routes or clusters to check"),
    ],
)
def test_a_dump_without_listeners_routes_or_clusters_is_named_not_read_as_empty(
    name: str, sections: set[str], message: str
) -> None:
    path = DATA / name
    with pytest.raises(ConfigDumpWithoutRouting) as caught:
        load_config_dump(path)
    assert str(caught.value) == f"{path}: {message}"
    assert caught.value.sections == sections
    assert isinstance(caught.value, InputError)  # the bundle reader's `except InputError` records it as a problem
    with pytest.raises(ConfigDumpWithoutRouting, match=f"^{message}$"):
        parse_config_dump(json.loads(path.read_text(encoding="utf-8")))


def test_the_whole_read_gives_the_same_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_streamable(path: Path) -> EnvoyConfig:
        raise NotStreamable

    monkeypatch.setattr(envoy_load, "stream_config_dump", not_streamable)
    path = DATA / "envoy-ecds-secrets-only.json"
    with pytest.raises(ConfigDumpWithoutRouting, match="holds only ECDS, Secrets: no listeners, routes or clusters"):
        load_config_dump(path)


def test_a_clusters_only_resource_dump_is_read_but_says_it_cannot_judge_routes() -> None:
    config = load_config_dump(DATA / "envoy-clusters-resource.json")
    assert config.sections == {"Clusters"}
    assert config.has_clusters and not config.has_routes and not config.has_listeners
    assert config.missing_for_checks() == "holds only Clusters: no routes to check"
    cluster = config.cluster("iris_1_http")
    assert cluster is not None and cluster.endpoints == ("mlserver-0.seldon-mesh:9000",)


def test_a_full_dump_records_its_sections_and_lacks_nothing() -> None:
    config = load_config_dump(HEALTHY)
    assert {"Listeners", "Routes", "Clusters"} <= config.sections
    assert config.has_listeners and config.has_routes and config.has_clusters
    assert config.missing_for_checks() is None


def test_routes_without_clusters_and_listeners_without_routes() -> None:
    routes_only = parse_config_dump({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}]})
    assert routes_only.has_routes and not routes_only.has_clusters
    assert routes_only.missing_for_checks() == "holds only Routes: no clusters to check"
    rds_listener = {
        "name": "seldon_http",
        "filter_chains": [{"filters": [{"typed_config": {"rds": {"route_config_name": "listener_0"}}}]}],
    }
    listeners = {
        "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
        "dynamic_listeners": [{"name": "seldon_http", "active_state": {"listener": rds_listener}}],
    }
    secrets = {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}
    config = parse_config_dump({"configs": [listeners, secrets]})
    assert config.has_listeners and not config.has_routes and not config.has_clusters
    assert config.missing_for_checks() == "holds only Listeners, Secrets: no routes or clusters to check"


def test_listeners_with_inline_route_configs_hold_their_routes() -> None:
    inline = {
        "name": "edge",
        "filter_chains": [
            {
                "filters": [
                    {
                        "typed_config": {
                            "route_config": {
                                "name": "inline",
                                "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": []}],
                            }
                        }
                    }
                ]
            }
        ],
    }
    listeners = {
        "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
        "static_listeners": [{"listener": inline}],
    }
    config = parse_config_dump({"configs": [listeners]})
    assert config.has_routes and not config.has_clusters
    assert config.missing_for_checks() == "holds only Listeners: no clusters to check"


def test_the_map_form_of_configs_from_envoy_1_9_is_read() -> None:
    path = DATA / "envoy-v2alpha-map-1.9.json"
    config = load_config_dump(path)
    assert config.sections == {"Bootstrap", "Clusters", "Listeners", "Routes"}
    assert config.missing_for_checks() is None
    assert [(listener.name, listener.port, listener.route_config_names) for listener in config.listeners] == [
        ("seldon_http", 9000, ("listener_0",))
    ]
    route = config.select_route("listener_0", "seldon-mesh", "/v2/models/iris/infer", {"seldon-model": "iris"})
    assert route is not None and route.weights_by_cluster() == {"iris_1_http": 1}
    route_config = config.route_config("listener_0")
    assert route_config is not None and route_config.dynamic and route_config.version_info == "4"
    assert config.cluster_names() == {"xds_cluster", "iris_1_http"}
    cluster = config.cluster("iris_1_http")
    assert cluster is not None and cluster.dynamic and cluster.endpoints == ("mlserver-0.seldon-mesh:9000",)
    # The same sections as Envoy's later list give the same config.
    document = json.loads(path.read_text(encoding="utf-8"))
    assert parse_config_dump({"configs": list(document["configs"].values())}) == config


def test_bare_static_entries_of_envoy_1_7_are_read() -> None:
    path = DATA / "envoy-v2alpha-map-1.7.json"
    config = load_config_dump(path)
    assert [listener.route_config_names for listener in config.listeners] == [("listener_0",)]
    route = config.select_route("listener_0", "x", "/v2/models/iris/infer", {"seldon-model": "iris"})
    assert route is not None and route.weights_by_cluster() == {"iris_1_http": 1}
    cluster = config.cluster("iris_1_http")
    assert cluster is not None and not cluster.dynamic and cluster.endpoints == ("mlserver-0.seldon-mesh:9000",)


def test_bare_static_route_configs_in_a_list_dump_are_read_whole_with_the_same_result(tmp_path: Path) -> None:
    document = json.loads((DATA / "envoy-v2alpha-map-1.7.json").read_text(encoding="utf-8"))
    path = tmp_path / "dump.json"
    path.write_text(json.dumps({"configs": list(document["configs"].values())}), encoding="utf-8")
    assert load_config_dump(path) == load_config_dump(DATA / "envoy-v2alpha-map-1.7.json")


def test_envoy_1_6_route_config_dump_is_read() -> None:
    document = {
        "configs": {
            "routes": {
                "@type": "type.googleapis.com/envoy.admin.v2.RouteConfigDump",
                "dynamic_route_configs": [
                    {
                        "name": "listener_0",
                        "virtual_hosts": [
                            {
                                "name": "vh",
                                "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}],
                            }
                        ],
                    }
                ],
            }
        }
    }
    config = parse_config_dump(document)
    assert config.sections == {"Routes"} and config.has_routes
    route_config = config.route_config("listener_0")
    assert route_config is not None and route_config.dynamic
    assert [route.clusters[0].cluster for route in config.routes()] == ["c"]


def test_streamed_and_whole_reads_record_the_same_sections(tmp_path: Path) -> None:
    text = HEALTHY.read_text(encoding="utf-8")
    document = json.loads(text)
    document["configs"].append({"@type": "type.googleapis.com/envoy.admin.v3.EcdsConfigDump", "ecds_filters": []})
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    streamed = load_config_dump(path)
    assert "ECDS" in streamed.sections and streamed == parse_config_dump(document)
