"""Path reconstruction against the healthy-ab scenario bundle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlops_trace.parsers.envoy_config import parse_config_dump
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.analysis.routing import cluster_model, route_models, split_versioned
from mlops_trace.trace.path import PathRequest, reconstruct
from tests.trace.helpers import EXPERIMENT, HEALTHY_AB, HOST, LB_IP

PATH = f"/v2/models/{EXPERIMENT}/infer"


@pytest.fixture(scope="module")
def snap() -> Iterator[Snapshot]:
    with open_bundle(HEALTHY_AB) as loaded:
        yield loaded


def test_all_seven_hops_of_an_experiment_request(snap: Snapshot) -> None:
    request = PathRequest(LB_IP, 80, HOST, PATH, {"seldon-model": "txn-ab.experiment"})
    path = reconstruct(snap, request, ":txn-challenger_1:")
    hops = path.hops
    assert hops[1].component.startswith("Service ingress-nginx/ingress-nginx-controller LoadBalancer 10.20.30.200")
    assert hops[2].component.startswith("Ingress fraud-serving/txn-api")
    assert "path /v2 (Prefix)" in hops[2].component
    assert hops[3].component == "Service fraud-serving/seldon-mesh:80"
    assert any("1 ready address" in e.what for e in hops[3].evidence)
    assert "route txn-ab.experiment_http" in hops[4].component
    assert "chose txn-challenger_1_http" in hops[5].component
    assert any("70%" in e.what and "30%" in e.what for e in hops[5].evidence)
    assert any("Experiment weights" in e.what for e in hops[5].evidence)
    assert hops[6].component == "Pod fraud-serving/mlserver-0 agent 9001"
    assert hops[7].component.startswith("Model fraud-serving/txn-challenger v1")
    assert all(hop.problem is None for hop in hops.values())
    assert path.namespace == "fraud-serving" and path.upstream_path == PATH
    assert path.experiment is not None and path.experiment.name == EXPERIMENT
    assert path.route is not None and {c.cluster for c in path.route.clusters} == {
        "txn-baseline_1_http",
        "txn-challenger_1_http",
    }


def test_wrong_host_matches_no_ingress_rule(snap: Snapshot) -> None:
    path = reconstruct(snap, PathRequest(LB_IP, 80, "wrong.example", PATH, {}), None)
    assert path.ingress_matched is False
    assert path.hops[2].problem is not None and "default backend" in path.hops[2].problem
    assert path.hops[3].component.startswith("unknown")


def test_no_route_without_the_experiment_header(snap: Snapshot) -> None:
    path = reconstruct(snap, PathRequest(LB_IP, 80, HOST, PATH, {}), None)
    assert path.route is None
    assert path.route_headers["seldon-model"] == EXPERIMENT  # the Lua filter's doing
    assert path.hops[4].problem is not None and "404" in path.hops[4].problem


def test_stale_sticky_header_finds_no_route_and_a_good_one_finds_the_sticky_route(snap: Snapshot) -> None:
    stale = {"seldon-model": "txn-ab.experiment", "x-seldon-route": ":txn-baseline_7:"}
    assert reconstruct(snap, PathRequest(LB_IP, 80, HOST, PATH, stale), None).route is None
    sticky = {"seldon-model": "txn-ab.experiment", "x-seldon-route": ":txn-baseline_1:"}
    route = reconstruct(snap, PathRequest(LB_IP, 80, HOST, PATH, sticky), None).route
    assert route is not None and [c.cluster for c in route.clusters] == ["txn-baseline_1_http"]


def test_an_admin_config_dump_overrides_the_bundle(snap: Snapshot) -> None:
    empty = parse_config_dump({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}]})
    request = PathRequest(LB_IP, 80, HOST, PATH, {"seldon-model": "txn-ab.experiment"})
    path = reconstruct(snap, request, None, envoy_override=empty, envoy_override_where="http://admin/config_dump")
    assert path.route is None and path.envoy_where == "http://admin/config_dump"


def test_name_helpers() -> None:
    assert split_versioned("txn-ab_12") == ("txn-ab", "12")
    assert split_versioned("plain") == ("plain", None)
    assert cluster_model("txn-baseline_1_grpc") == "txn-baseline_1"
    assert cluster_model("mirror_http") is None
    assert route_models(":add10_1: :pipeline-add10.pipeline:") == ["add10_1", "pipeline-add10.pipeline"]
