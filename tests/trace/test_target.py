"""Targets: path, Host, and the headers that pick a Model or an Experiment."""

from __future__ import annotations

import pytest

from mlops_trace.errors import UsageError
from mlops_trace.trace.record import Protocol
from mlops_trace.analysis.routing import lua_effective_headers
from mlops_trace.trace.target import build_target, parse_header, request_headers


def test_experiment_gets_its_header_and_path() -> None:
    target = build_target("http://10.0.0.1/", host="ml-api.local", model=None, experiment="ab")
    assert target.infer_path == "/v2/models/ab/infer"
    assert target.seldon_model == "ab.experiment"
    assert target.authority == "ml-api.local"
    headers = request_headers(target, "mt-1", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    assert headers["host"] == "ml-api.local"
    assert headers["x-request-id"] == "mt-1"
    assert headers["seldon-model"] == "ab.experiment"
    assert target.warnings == ()


def test_rest_model_leaves_the_header_to_envoy_but_grpc_sends_it() -> None:
    rest = build_target("http://h:8080/prefix", host=None, model="iris", experiment=None)
    assert rest.seldon_model is None
    assert rest.infer_path == "/prefix/v2/models/iris/infer"
    assert rest.authority == "h:8080"
    grpc = build_target("http://h:8080", host=None, model="iris", experiment=None, protocol=Protocol.GRPC)
    assert grpc.seldon_model == "iris"


def test_user_header_that_misses_the_experiment_warns_mt301() -> None:
    target = build_target("http://h", host=None, model=None, experiment="ab", extra_headers=["seldon-model: baseline"])
    assert target.seldon_model == "baseline"
    assert len(target.warnings) == 1 and "replaces ab.experiment" in target.warnings[0]


@pytest.mark.parametrize(
    ("url", "model", "experiment", "headers"),
    [
        ("ftp://h", "m", None, []),
        ("http://h", None, None, []),
        ("http://h", "m", "e", []),
        ("http://h/v2/models/m", "m", None, []),
        ("http://h", "m", None, ["Host: x"]),
        ("http://h", "m", None, ["novalue"]),
    ],
)
def test_bad_arguments_are_usage_errors(
    url: str, model: str | None, experiment: str | None, headers: list[str]
) -> None:
    with pytest.raises(UsageError):
        build_target(url, host=None, model=model, experiment=experiment, extra_headers=headers)


def test_parse_header_accepts_colon_and_equals() -> None:
    assert parse_header("X-A: 1") == ("x-a", "1")
    assert parse_header("x-b=2") == ("x-b", "2")


def test_lua_filter_rules() -> None:
    assert lua_effective_headers("/v2/models/iris/infer", {}, False)["seldon-model"] == "iris"
    assert lua_effective_headers("/v2/pipelines/p/infer", {}, False)["seldon-model"] == "p.pipeline"
    sticky = lua_effective_headers("/v2/models/iris/infer", {"x-seldon-route": ":iris_1:"}, False)
    assert "seldon-model" not in sticky
    assert "seldon-model" not in lua_effective_headers("/v2/models/iris/infer", {}, True)
    assert lua_effective_headers("/x/v2/models/iris/infer", {}, False) == {}


def test_as_is_sends_only_the_users_headers() -> None:
    """--as-is: an experiment called without seldon-model stays without it (REST and gRPC), and a user's wrong
    header is sent without a warning; the user's headers are kept."""
    rest = build_target("http://h", host=None, model=None, experiment="ab", as_is=True)
    assert rest.seldon_model is None and rest.headers == () and rest.as_is
    grpc = build_target("http://h", host=None, model="iris", experiment=None, protocol=Protocol.GRPC, as_is=True)
    assert grpc.seldon_model is None
    wrong = build_target(
        "http://h", host=None, model=None, experiment="ab", extra_headers=["seldon-model: ab"], as_is=True
    )
    assert wrong.seldon_model == "ab" and wrong.warnings == ()
    helped = build_target("http://h", host=None, model=None, experiment="ab")
    assert helped.seldon_model == "ab.experiment"
