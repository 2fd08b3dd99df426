"""The Envoy resources the stack's scheduler writes have Seldon's shapes, read back with our own config_dump parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_trace.parsers.envoy_config import EnvoyConfig, parse_config_dump
from mlops_trace.stack import agent_proxy, xds

EXP = "financial-ab-test-experiment.experiment"
SPLITS = (xds.Split("baseline-predictor_1", 70), xds.Split("enhanced-predictor_1", 30))


def _dump(tmp_path: Path, delay_ms: float = 0.0) -> tuple[dict[str, Any], EnvoyConfig]:
    routes = xds.route_configuration([
        xds.RouteSpec("baseline-predictor", SPLITS),
        xds.RouteSpec("enhanced-predictor", (xds.Split("enhanced-predictor_1", 100),)),
        xds.RouteSpec(EXP, SPLITS),
    ])
    listener = xds.seldon_listener(9000, tmp_path, tmp_path / "access.log", delay_ms)
    clusters = xds.model_clusters("baseline-predictor_1", 9001, 9501)
    document = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [{"name": "seldon_http", "active_state": {"listener": listener}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_active_clusters": [{"cluster": c} for c in clusters]},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
         "dynamic_route_configs": [{"version_info": "1", "route_config": routes}]},
    ]}
    return listener, parse_config_dump(document)


def test_experiment_route_shape(tmp_path: Path) -> None:
    _, config = _dump(tmp_path)
    assert [l.name for l in config.listeners] == ["seldon_http"]
    assert config.listeners[0].route_config_names == ("listener_0",)
    route = config.select_route("listener_0", "ml-api.local", "/v2/models/anything/infer", {"seldon-model": EXP})
    assert route is not None and route.name == f"{EXP}_http"
    assert route.weights_by_cluster() == {"baseline-predictor_1_http": 70, "enhanced-predictor_1_http": 30}
    assert route.requires_absent("x-seldon-route")
    split = route.clusters[1]
    assert split.request_headers_to_add == {"seldon-internal-model": "enhanced-predictor_1"}
    assert split.response_headers_to_add == {"x-seldon-route": ":enhanced-predictor_1:"}


def test_sticky_grpc_and_no_route(tmp_path: Path) -> None:
    _, config = _dump(tmp_path)
    sticky = config.select_route("listener_0", "h", "/v2/models/x/infer",
                                 {"seldon-model": EXP, "x-seldon-route": ":enhanced-predictor_1:"})
    assert sticky is not None and sticky.name == f"{EXP}_http_experiment"
    assert sticky.weights_by_cluster() == {"enhanced-predictor_1_http": 100}
    grpc = config.select_route("listener_0", "h", "/inference.GRPCInferenceService/ModelInfer", {"seldon-model": EXP})
    assert grpc is not None and grpc.name == f"{EXP}_grpc"
    assert config.select_route("listener_0", "h", "/v2/models/x/infer", {"seldon-model": "x"}) is None
    stale = {"seldon-model": "enhanced-predictor", "x-seldon-route": ":enhanced-predictor_1:"}
    assert config.select_route("listener_0", "h", "/v2/models/x/infer", stale) is None
    vanilla = config.routes_with_header_exact("seldon-model", "enhanced-predictor")
    assert [r.name for r in vanilla] == ["enhanced-predictor_http", "enhanced-predictor_grpc"]


def test_clusters_point_at_the_agent(tmp_path: Path) -> None:
    _, config = _dump(tmp_path)
    assert config.cluster("baseline-predictor_1_http") is not None
    assert config.cluster("baseline-predictor_1_http").endpoints == ("127.0.0.1:9001",)  # type: ignore[union-attr]
    assert config.cluster("baseline-predictor_1_grpc").endpoints == ("127.0.0.1:9501",)  # type: ignore[union-attr]


def test_fault_filter_only_when_asked(tmp_path: Path) -> None:
    plain, _ = _dump(tmp_path)
    slow, _ = _dump(tmp_path, delay_ms=25)

    def names(listener: dict[str, Any]) -> list[str]:
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        return [f["name"] for f in hcm["http_filters"]]

    assert names(plain) == ["envoy.filters.http.lua", "envoy.filters.http.router"]
    assert names(slow) == ["envoy.filters.http.lua", "envoy.filters.http.fault", "envoy.filters.http.router"]
    hcm = slow["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["http_filters"][1]["typed_config"]["delay"]["fixed_delay"] == "0.025000s"
    assert hcm["generate_request_id"] is False


def test_atomic_write(tmp_path: Path) -> None:
    xds.write_empty(tmp_path)
    xds.write_resources(tmp_path, xds.RDS_FILE, [{"name": "listener_0"}], "v7")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cds.json", "lds.json", "rds.json"]
    assert '"version_info": "v7"' in (tmp_path / "rds.json").read_text()


def test_agent_proxy_keeps_request_ids(tmp_path: Path) -> None:
    boot = agent_proxy.bootstrap(admin_port=1, http_port=2, grpc_port=3, mlserver_http=4, mlserver_grpc=5,
                                 access_log=tmp_path / "a.log")
    listeners = boot["static_resources"]["listeners"]
    assert [l["name"] for l in listeners] == ["agent_http", "agent_grpc"]
    hcm = listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["preserve_external_request_id"] and hcm["generate_request_id"]
    assert "seldon-internal-model" in agent_proxy.AGENT_LUA and "setBytes" in agent_proxy.AGENT_LUA
