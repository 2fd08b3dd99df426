"""Tests for the Envoy config_dump parser and route selection (mlops_trace.parsers.envoy_config)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config import (
    EnvoyConfig,
    HeaderMatcher,
    HeaderMatchKind,
    Route,
    load_config_dump,
    parse_config_dump,
)

DATA = Path(__file__).parent / "data"
SELDON_DUMP = DATA / "seldon_config_dump.json"
REST_PATH = "/v2/models/iris/infer"
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def seldon() -> EnvoyConfig:
    return load_config_dump(SELDON_DUMP)


def _route(config: EnvoyConfig, name: str, index: int = 0) -> Route:
    matching = [route for route in config.routes() if route.name == name]
    assert len(matching) > index, f"route {name} not found"
    return matching[index]


# ---- listeners, route configs, clusters --------------------------------------------------------------------------


def test_listeners(seldon: EnvoyConfig) -> None:
    by_name = {listener.name: listener for listener in seldon.listeners}
    assert set(by_name) == {"util_endpoint_listener", "seldon_http", "seldon_mirrors"}
    http = by_name["seldon_http"]
    assert (http.address, http.port, http.route_config_names, http.dynamic) == ("0.0.0.0", 9000, ("listener_0",), True)
    assert by_name["seldon_mirrors"].route_config_names == ("listener_1",)
    util = by_name["util_endpoint_listener"]
    assert (util.port, util.dynamic) == (9003, False)
    assert util.route_config_names == ("local_admin_interface_route",)


def test_route_configs(seldon: EnvoyConfig) -> None:
    assert [config.name for config in seldon.route_configs] == [
        "local_admin_interface_route",
        "listener_0",
        "listener_1",
    ]
    listener_0 = seldon.route_config("listener_0")
    assert listener_0 is not None
    assert listener_0.dynamic and listener_0.version_info == "12"
    assert [host.name for host in listener_0.virtual_hosts] == ["seldon_service"]
    assert listener_0.virtual_hosts[0].domains == ("*",)
    static = seldon.route_config("local_admin_interface_route")
    assert static is not None and not static.dynamic
    stats_route = next(seldon.routes("local_admin_interface_route"))
    assert stats_route.prefix == "/stats"
    assert stats_route.weights_by_cluster() == {"admin_interface_cluster": 1}
    assert seldon.route_config("listener_9") is None


def test_model_route_shape(seldon: EnvoyConfig) -> None:
    route = _route(seldon, "iris_http")
    assert (route.route_config, route.virtual_host) == ("listener_0", "seldon_service")
    assert route.prefix == "/v2" and route.path is None and route.regex is None
    assert route.header_exact("seldon-model") == "iris"
    assert route.header_exact("Seldon-Model") == "iris"
    assert route.requires_absent("x-seldon-route")
    assert not route.requires_absent("seldon-model")
    assert route.header_contains("x-seldon-route") is None
    assert [weight.cluster for weight in route.clusters] == ["iris_1_http"]
    split = route.clusters[0]
    assert split.weight == 100
    assert split.request_headers_to_add == {"seldon-internal-model": "iris_1"}
    assert split.response_headers_to_add == {"x-seldon-route": ":iris_1:"}
    assert route.mirror_clusters == ("mirror_http",)
    assert route.direct_response_status is None


def test_experiment_route_weights(seldon: EnvoyConfig) -> None:
    route = _route(seldon, "exp.experiment_http")
    assert route.weights_by_cluster() == {"iris_1_http": 70, "iris2_1_http": 30}
    assert route.header_exact("seldon-model") == "exp.experiment"
    assert route.requires_absent("x-seldon-route")
    internal = {split.cluster: split.request_headers_to_add["seldon-internal-model"] for split in route.clusters}
    assert internal == {"iris_1_http": "iris_1", "iris2_1_http": "iris2_1"}
    assert route.mirror_clusters == ()


def test_sticky_routes(seldon: EnvoyConfig) -> None:
    first, second = (
        _route(seldon, "exp.experiment_http_experiment", 0),
        _route(seldon, "exp.experiment_http_experiment", 1),
    )
    assert first.header_contains("x-seldon-route") == ":iris_1:"
    assert second.header_contains("x-seldon-route") == ":iris2_1:"
    assert not first.requires_absent("x-seldon-route")
    assert first.clusters[0].cluster == "iris_1_http" and first.clusters[0].weight == 1
    assert first.clusters[0].request_headers_to_add == {"seldon-internal-model": "iris_1", "seldon-model": "iris"}
    assert (first.index, second.index) == (0, 2)


def test_routes_with_header_exact(seldon: EnvoyConfig) -> None:
    names = [route.name for route in seldon.routes_with_header_exact("seldon-model", "exp.experiment")]
    assert names == [
        "exp.experiment_http_experiment",
        "exp.experiment_grpc_experiment",
        "exp.experiment_http_experiment",
        "exp.experiment_grpc_experiment",
        "exp.experiment_http",
        "exp.experiment_grpc",
    ]
    iris = [(route.route_config, route.name) for route in seldon.routes_with_header_exact("seldon-model", "iris")]
    assert iris == [("listener_0", "iris_http"), ("listener_0", "iris_grpc"), ("listener_1", "iris_http_mirror")]
    assert seldon.routes_with_header_exact("seldon-model", "missing") == []


def test_clusters(seldon: EnvoyConfig) -> None:
    assert seldon.cluster_names() == frozenset(
        {
            "xds_cluster",
            "admin_interface_cluster",
            "iris_1_http",
            "iris_1_grpc",
            "iris2_1_http",
            "iris2_1_grpc",
            "mirror_http",
            "mirror_grpc",
            "iris3_1_http",
        }
    )
    iris = seldon.cluster("iris_1_http")
    assert iris is not None
    assert (iris.type, iris.endpoints, iris.dynamic, iris.warming) == ("STRICT_DNS", ("mlserver-0:9001",), True, False)
    iris2 = seldon.cluster("iris2_1_grpc")
    assert iris2 is not None and iris2.endpoints == ("mlserver-1:9501", "mlserver-2:9501")
    xds = seldon.cluster("xds_cluster")
    assert xds is not None and not xds.dynamic and xds.endpoints == ("seldon-scheduler:9002",)
    warming = seldon.cluster("iris3_1_http")
    assert warming is not None and warming.warming
    assert seldon.cluster("nope_1_http") is None


# ---- route selection --------------------------------------------------------------------------------------------


def _selected(config: EnvoyConfig, path: str, headers: dict[str, str], route_config: str = "listener_0") -> str | None:
    route = config.select_route(route_config, "seldon-mesh.seldon-mesh:80", path, headers)
    return None if route is None else route.name


def test_select_plain_model_route(seldon: EnvoyConfig) -> None:
    assert _selected(seldon, REST_PATH, {"seldon-model": "iris"}) == "iris_http"
    assert _selected(seldon, GRPC_PATH, {"seldon-model": "iris"}) == "iris_grpc"
    assert _selected(seldon, REST_PATH, {"Seldon-Model": "iris", "Content-Type": "application/json"}) == "iris_http"


def test_present_route_header_on_a_plain_model_gives_no_route(seldon: EnvoyConfig) -> None:
    assert _selected(seldon, REST_PATH, {"seldon-model": "iris", "x-seldon-route": ":iris_1:"}) is None
    assert _selected(seldon, REST_PATH, {"seldon-model": "iris", "x-seldon-route": ""}) is None


def test_experiment_first_match_without_and_with_sticky_header(seldon: EnvoyConfig) -> None:
    without = seldon.select_route("listener_0", "seldon-mesh", REST_PATH, {"seldon-model": "exp.experiment"})
    assert without is not None and without.name == "exp.experiment_http"
    assert without.index == 4  # the sticky routes before it need x-seldon-route
    sticky = seldon.select_route(
        "listener_0", "seldon-mesh", REST_PATH, {"seldon-model": "exp.experiment", "x-seldon-route": ":iris2_1:"}
    )
    assert sticky is not None and sticky.index == 2
    assert sticky.clusters[0].cluster == "iris2_1_http"
    accumulated = {"seldon-model": "exp.experiment", "x-seldon-route": ":iris_1: :pipeline-x.pipeline:"}
    routed = seldon.select_route("listener_0", "seldon-mesh", REST_PATH, accumulated)
    assert routed is not None and routed.clusters[0].cluster == "iris_1_http"


def test_stale_sticky_header_gives_no_route(seldon: EnvoyConfig) -> None:
    assert _selected(seldon, REST_PATH, {"seldon-model": "exp.experiment", "x-seldon-route": ":iris_2:"}) is None


def test_missing_seldon_model_header_or_wrong_path_gives_no_route(seldon: EnvoyConfig) -> None:
    assert _selected(seldon, REST_PATH, {}) is None
    assert _selected(seldon, "/seldon/seldon-mesh/v2/models/iris/infer", {"seldon-model": "iris"}) is None
    assert _selected(seldon, REST_PATH, {"seldon-model": "IRIS"}) is None


def test_select_route_in_other_route_configs(seldon: EnvoyConfig) -> None:
    assert _selected(seldon, REST_PATH, {"seldon-model": "iris"}, "listener_1") == "iris_http_mirror"
    assert _selected(seldon, "/stats/prometheus", {}, "local_admin_interface_route") == ""
    assert _selected(seldon, REST_PATH, {"seldon-model": "iris"}, "no_such_config") is None


# ---- header matcher semantics -----------------------------------------------------------------------------------


def _matcher(kind: HeaderMatchKind, value: str | None = None, **options: bool) -> HeaderMatcher:
    return HeaderMatcher(name="X-Test", kind=kind, value=value, invert=options.pop("invert", False), **options)


@pytest.mark.parametrize(
    ("matcher", "headers", "expected"),
    [
        (_matcher(HeaderMatchKind.EXACT, "a"), {"x-test": "a"}, True),
        (_matcher(HeaderMatchKind.EXACT, "a"), {"x-test": "A"}, False),
        (_matcher(HeaderMatchKind.EXACT, "a", ignore_case=True), {"x-test": "A"}, True),
        (_matcher(HeaderMatchKind.EXACT, "a"), {}, False),
        (_matcher(HeaderMatchKind.EXACT, "a", invert=True), {"x-test": "b"}, True),
        (
            _matcher(HeaderMatchKind.EXACT, "a", invert=True),
            {},
            False,
        ),  # Envoy: inverted value matchers need the header
        (_matcher(HeaderMatchKind.EXACT, "", treat_missing_as_empty=True), {}, True),
        (_matcher(HeaderMatchKind.PREFIX, "ab"), {"x-test": "abc"}, True),
        (_matcher(HeaderMatchKind.SUFFIX, "bc"), {"x-test": "abc"}, True),
        (_matcher(HeaderMatchKind.CONTAINS, ":iris_1:"), {"x-test": ":add10_1: :iris_1:"}, True),
        (_matcher(HeaderMatchKind.CONTAINS, ":iris_1:"), {"x-test": ":iris_2:"}, False),
        (_matcher(HeaderMatchKind.REGEX, "iris_[0-9]+"), {"x-test": "iris_12"}, True),
        (_matcher(HeaderMatchKind.REGEX, "iris_[0-9]+"), {"x-test": "iris_12x"}, False),  # full match
        (_matcher(HeaderMatchKind.REGEX, "(unclosed"), {"x-test": "(unclosed"}, False),
        (_matcher(HeaderMatchKind.PRESENT), {"x-test": ""}, True),
        (_matcher(HeaderMatchKind.PRESENT), {}, False),
        (_matcher(HeaderMatchKind.PRESENT, invert=True), {}, True),
        (_matcher(HeaderMatchKind.ABSENT), {}, True),
        (_matcher(HeaderMatchKind.ABSENT), {"x-test": "v"}, False),
        (_matcher(HeaderMatchKind.ABSENT, invert=True), {}, False),
        (_matcher(HeaderMatchKind.OTHER, "[1,5)"), {"x-test": "3"}, False),
    ],
)
def test_header_matcher(matcher: HeaderMatcher, headers: dict[str, str], expected: bool) -> None:
    assert matcher.matches(headers) is expected


def _dump(*sections: dict[str, Any]) -> dict[str, Any]:
    return {"configs": list(sections)}


def _routes_section(routes: list[dict[str, Any]], domains: list[str] | None = None) -> dict[str, Any]:
    virtual_host = {"name": "vh", "domains": domains or ["*"], "routes": routes}
    return {
        "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
        "dynamic_route_configs": [{"route_config": {"name": "rc", "virtual_hosts": [virtual_host]}}],
    }


def test_header_matcher_parsing_variants() -> None:
    headers = [
        {"name": "a", "string_match": {"prefix": "p", "ignore_case": True}},
        {"name": "b", "string_match": {"safe_regex": {"google_re2": {}, "regex": "x.*"}}},
        {"name": "c", "exact_match": "legacy"},
        {"name": "d", "safe_regex_match": {"regex": "[0-9]+"}},
        {"name": "e", "present_match": True, "invert_match": True},
        {"name": "f", "range_match": {"start": "1", "end": "5"}},
        {"name": "g"},
        {"name": "h", "contains_match": "mid"},
    ]
    config = parse_config_dump(_dump(_routes_section([{"match": {"prefix": "/", "headers": headers}}])))
    route = next(config.routes())
    kinds = [(m.name, m.kind, m.value, m.invert, m.ignore_case) for m in route.headers]
    assert kinds == [
        ("a", HeaderMatchKind.PREFIX, "p", False, True),
        ("b", HeaderMatchKind.REGEX, "x.*", False, False),
        ("c", HeaderMatchKind.EXACT, "legacy", False, False),
        ("d", HeaderMatchKind.REGEX, "[0-9]+", False, False),
        ("e", HeaderMatchKind.PRESENT, None, True, False),
        ("f", HeaderMatchKind.OTHER, "[1,5)", False, False),
        ("g", HeaderMatchKind.PRESENT, None, False, False),
        ("h", HeaderMatchKind.CONTAINS, "mid", False, False),
    ]
    assert route.header_exact("c") == "legacy"
    assert route.requires_absent("e")
    assert route.route_config == "rc"
    assert route.clusters == ()


# ---- path matching and virtual hosts ----------------------------------------------------------------------------


def test_path_match_kinds() -> None:
    routes = [
        {"name": "exact", "match": {"path": "/v2/health/ready"}, "direct_response": {"status": 200}},
        {"name": "regex", "match": {"safe_regex": {"regex": "/v2/models/[^/]+/ready"}}, "route": {"cluster": "c"}},
        {"name": "separated", "match": {"path_separated_prefix": "/v2/repository"}, "route": {"cluster": "c"}},
        {"name": "nocase", "match": {"prefix": "/V2/PIPELINES", "case_sensitive": False}, "route": {"cluster": "c"}},
        {"name": "connect", "match": {"connect_matcher": {}}, "route": {"cluster": "c"}},
    ]
    config = parse_config_dump(_dump(_routes_section(routes)))

    def pick(path: str) -> str | None:
        route = config.select_route("rc", "any", path, {})
        return None if route is None else route.name

    assert pick("/v2/health/ready?verbose=1") == "exact"
    assert config.route_config("rc") is not None
    exact = next(config.routes("rc"))
    assert exact.direct_response_status == 200 and exact.clusters == ()
    assert pick("/v2/models/iris/ready") == "regex"
    assert pick("/v2/models/iris/ready/extra") is None
    assert pick("/v2/repository") == "separated"
    assert pick("/v2/repository/index") == "separated"
    assert pick("/v2/repositoryx") is None
    assert pick("/v2/pipelines/p/infer") == "nocase"
    separated = next(route for route in config.routes() if route.name == "separated")
    assert separated.prefix == "/v2/repository" and separated.prefix_separated


def test_virtual_host_selection_order() -> None:
    def host(name: str, domains: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "domains": domains,
            "routes": [{"name": name, "match": {"prefix": "/"}, "route": {"cluster": name}}],
        }

    section = {
        "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
        "static_route_configs": [
            {
                "route_config": {
                    "name": "rc",
                    "virtual_hosts": [
                        host("default", ["*"]),
                        host("prefix", ["seldon-mesh.*"]),
                        host("short_suffix", ["*.local"]),
                        host("long_suffix", ["*.svc.cluster.local"]),
                        host("exact", ["seldon-mesh.seldon-mesh.svc.cluster.local", "api.example.com:8443"]),
                    ],
                }
            }
        ],
    }
    config = parse_config_dump(_dump(section))

    def pick(authority: str) -> str | None:
        route = config.select_route("rc", authority, "/", {})
        return None if route is None else route.name

    assert pick("seldon-mesh.seldon-mesh.svc.cluster.local") == "exact"
    assert pick("SELDON-MESH.seldon-mesh.svc.cluster.local") == "exact"
    # With a port, the whole Host header is tried first (Envoy without port stripping), then the host alone.
    assert pick("seldon-mesh.seldon-mesh.svc.cluster.local:80") == "prefix"
    assert pick("other.seldon-mesh.svc.cluster.local:80") == "long_suffix"
    assert pick("api.example.com:8443") == "exact"
    assert pick("other.seldon-mesh.svc.cluster.local") == "long_suffix"
    assert pick("x.local") == "short_suffix"
    assert pick("seldon-mesh.other") == "prefix"
    assert pick("10.0.0.1:9000") == "default"
    assert pick("[::1]:9000") == "default"


def test_no_matching_virtual_host_gives_none() -> None:
    config = parse_config_dump(_dump(_routes_section([{"match": {"prefix": "/"}, "route": {"cluster": "c"}}], ["a.b"])))
    assert config.select_route("rc", "c.d", "/", {}) is None
    assert config.select_route("rc", "a.b", "/", {}) is not None


# ---- other dump shapes ------------------------------------------------------------------------------------------


def test_camel_case_dump() -> None:
    document = {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "dynamicListeners": [
                    {
                        "name": "seldon_http",
                        "activeState": {
                            "listener": {
                                "name": "seldon_http",
                                "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 9000}},
                                "filterChains": [
                                    {"filters": [{"typedConfig": {"rds": {"routeConfigName": "listener_0"}}}]}
                                ],
                            }
                        },
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamicRouteConfigs": [
                    {
                        "versionInfo": "4",
                        "routeConfig": {
                            "name": "listener_0",
                            "virtualHosts": [
                                {
                                    "name": "seldon_service",
                                    "domains": ["*"],
                                    "routes": [
                                        {
                                            "name": "iris_http",
                                            "match": {
                                                "prefix": "/v2",
                                                "headers": [
                                                    {"name": "seldon-model", "stringMatch": {"exact": "iris"}},
                                                    {"name": "x-seldon-route", "presentMatch": False},
                                                ],
                                            },
                                            "route": {
                                                "weightedClusters": {
                                                    "clusters": [
                                                        {
                                                            "name": "iris_1_http",
                                                            "weight": 100,
                                                            "requestHeadersToAdd": [
                                                                {
                                                                    "header": {
                                                                        "key": "seldon-internal-model",
                                                                        "value": "iris_1",
                                                                    }
                                                                }
                                                            ],
                                                        }
                                                    ]
                                                }
                                            },
                                        }
                                    ],
                                }
                            ],
                        },
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "dynamicActiveClusters": [
                    {
                        "cluster": {
                            "name": "iris_1_http",
                            "type": "STRICT_DNS",
                            "loadAssignment": {
                                "endpoints": [
                                    {
                                        "lbEndpoints": [
                                            {
                                                "endpoint": {
                                                    "address": {
                                                        "socketAddress": {"address": "mlserver-0", "portValue": 9001}
                                                    }
                                                }
                                            }
                                        ]
                                    }
                                ]
                            },
                        }
                    }
                ],
            },
        ]
    }
    config = parse_config_dump(document)
    assert config.listeners[0].route_config_names == ("listener_0",)
    assert config.listeners[0].port == 9000
    route_config = config.route_config("listener_0")
    assert route_config is not None and route_config.version_info == "4"
    route = next(config.routes())
    assert route.header_exact("seldon-model") == "iris" and route.requires_absent("x-seldon-route")
    assert route.clusters[0].request_headers_to_add == {"seldon-internal-model": "iris_1"}
    cluster = config.cluster("iris_1_http")
    assert cluster is not None and cluster.endpoints == ("mlserver-0:9001",)
    assert config.select_route("listener_0", "x", REST_PATH, {"seldon-model": "iris"}) == route


def test_v2alpha_dump_with_legacy_fields() -> None:
    document = _dump(
        {
            "@type": "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
            "dynamic_active_listeners": [
                {
                    "listener": {
                        "name": "http",
                        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
                        "filter_chains": [
                            {
                                "filters": [
                                    {
                                        "name": "envoy.http_connection_manager",
                                        "config": {"rds": {"route_config_name": "r"}},
                                    }
                                ]
                            }
                        ],
                    }
                }
            ],
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v2alpha.RoutesConfigDump",
            "dynamic_route_configs": [
                {
                    "route_config": {
                        "name": "r",
                        "virtual_hosts": [
                            {
                                "name": "all",
                                "domains": ["*"],
                                "routes": [
                                    {
                                        "match": {"prefix": "/", "headers": [{"name": "v", "regex_match": "1|2"}]},
                                        "route": {"cluster": "c", "request_mirror_policy": {"cluster": "m"}},
                                    }
                                ],
                            }
                        ],
                    }
                }
            ],
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump",
            "static_clusters": [
                {"cluster": {"name": "c", "hosts": [{"socket_address": {"address": "::1", "port_value": 80}}]}}
            ],
        },
    )
    config = parse_config_dump(document)
    assert config.listeners[0].route_config_names == ("r",)
    route = next(config.routes("r"))
    assert route.mirror_clusters == ("m",)
    assert route.matches("/x", {"V": "2"})
    assert not route.matches("/x", {"v": "3"})
    cluster = config.cluster("c")
    assert cluster is not None and cluster.endpoints == ("[::1]:80",) and cluster.type is None


def test_eds_endpoints_and_per_resource_entries() -> None:
    document = _dump(
        {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
            "cluster": {"name": "svc", "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}}},
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
            "dynamic_endpoint_configs": [
                {
                    "endpoint_config": {
                        "cluster_name": "svc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {"socket_address": {"address": "10.0.0.1", "port_value": 9001}}
                                        }
                                    },
                                    {"endpoint": {"address": {"pipe": {"path": "/tmp/sock"}}}},
                                ]
                            }
                        ],
                    }
                }
            ],
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
            "version_info": "9",
            "route_config": {"name": "rc", "virtual_hosts": []},
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
            "name": "l",
            "warming_state": {
                "listener": {"name": "l", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}}}
            },
        },
    )
    config = parse_config_dump(document)
    cluster = config.cluster("svc")
    assert cluster is not None
    assert (cluster.type, cluster.endpoints, cluster.dynamic) == ("EDS", ("10.0.0.1:9001", "unix:/tmp/sock"), True)
    route_config = config.route_config("rc")
    assert route_config is not None and route_config.version_info == "9" and route_config.dynamic
    assert config.listeners[0].warming and config.listeners[0].dynamic


# ---- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"configs": "nope"},
        {"configs": []},
        {"configs": {}},
        {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ServerInfo"}, 3]},
        {"kind": "Pod"},
    ],
)
def test_not_a_config_dump(document: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="not an Envoy config_dump"):
        parse_config_dump(document)


def test_load_config_dump_errors_name_the_file(tmp_path: Path) -> None:
    bad_json = tmp_path / "config_dump.json"
    bad_json.write_text('{"configs": [', encoding="utf-8")
    with pytest.raises(InputError, match=r"config_dump\.json.*not valid JSON"):
        load_config_dump(bad_json)
    wrong = tmp_path / "pods.json"
    wrong.write_text(json.dumps({"kind": "PodList", "items": []}), encoding="utf-8")
    with pytest.raises(InputError, match=r"pods\.json: not an Envoy config_dump"):
        load_config_dump(wrong)
    with pytest.raises(InputError, match=r"missing\.json"):
        load_config_dump(tmp_path / "missing.json")


def test_malformed_parts_are_skipped_not_fatal() -> None:
    document = _dump(
        {
            "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "dynamic_route_configs": [
                "junk",
                {"route_config": {"name": "rc", "virtual_hosts": [{"routes": ["junk", {"match": "junk"}]}, 5]}},
            ],
        },
        {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "dynamic_active_clusters": [{"cluster": {}}],
        },
    )
    config = parse_config_dump(document)
    routes = list(config.routes())
    assert len(routes) == 1
    assert not routes[0].matches("/", {})
    assert config.clusters == ()


def test_first_matching_route_wins() -> None:
    specific = {
        "name": "specific",
        "match": {"prefix": "/v2", "headers": [{"name": "seldon-model", "string_match": {"exact": "iris"}}]},
        "route": {"cluster": "iris_1_http"},
    }
    catch_all = {"name": "catch_all", "match": {"prefix": "/"}, "route": {"cluster": "fallback"}}
    specific_first = parse_config_dump(_dump(_routes_section([specific, catch_all])))
    assert specific_first.select_route("rc", "h", REST_PATH, {"seldon-model": "iris"}) == next(
        route for route in specific_first.routes() if route.name == "specific"
    )
    chosen = specific_first.select_route("rc", "h", REST_PATH, {})
    assert chosen is not None and chosen.name == "catch_all"
    catch_all_first = parse_config_dump(_dump(_routes_section([catch_all, specific])))
    shadowed = catch_all_first.select_route("rc", "h", REST_PATH, {"seldon-model": "iris"})
    assert shadowed is not None and shadowed.name == "catch_all"
