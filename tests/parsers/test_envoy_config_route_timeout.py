"""A route's `timeout` (RouteAction.timeout, a protobuf JSON Duration) read from a config_dump, the same way by the
whole-document read and the streaming read: absent means Envoy's 15 s default applies, `0s` disables it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.parsers.envoy_config import EnvoyConfig, load_config_dump, parse_config_dump

SELDON_DUMP = Path(__file__).resolve().parent / "data" / "seldon_config_dump.json"


def _dump(actions: list[dict[str, Any]]) -> dict[str, Any]:
    routes = [
        {"name": f"r{index}", "match": {"prefix": "/v2"}, "route": action} for index, action in enumerate(actions)
    ]
    virtual_host = {"name": "seldon_service", "domains": ["*"], "routes": routes}
    return {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": [{"route_config": {"name": "listener_0", "virtual_hosts": [virtual_host]}}],
            }
        ]
    }


def _timeouts(config: EnvoyConfig) -> list[tuple[str | None, float | None]]:
    return [(route.timeout_text, route.timeout_ms) for route in config.routes()]


ACTIONS: list[dict[str, Any]] = [
    {"cluster": "iris_1_http", "timeout": "60s"},
    {"cluster": "iris_1_http", "timeout": "0s"},
    {"cluster": "iris_1_http", "timeout": "1.500s"},
    {"cluster": "iris_1_http"},
    {"cluster": "iris_1_http", "timeout": "-1s"},
    {"cluster": "iris_1_http", "timeout": "sixty"},
    {"cluster": "iris_1_http", "timeout": 60},
    {"cluster": "iris_1_http", "timeout": {"seconds": 30, "nanos": 250000000}},
]
EXPECTED: list[tuple[str | None, float | None]] = [
    ("60s", 60000.0),
    ("0s", 0.0),
    ("1.500s", 1500.0),
    (None, None),
    ("-1s", None),
    ("sixty", None),
    ("60", None),
    ("{seconds: 30, nanos: 250000000}", 30250.0),
]


def test_route_timeout_values_from_a_whole_document() -> None:
    assert _timeouts(parse_config_dump(_dump(ACTIONS))) == EXPECTED


def test_route_timeout_values_streamed_equal_the_whole_read(tmp_path: Path) -> None:
    path = tmp_path / "config_dump.json"
    path.write_text(json.dumps(_dump(ACTIONS)), encoding="utf-8")
    assert _timeouts(load_config_dump(path)) == EXPECTED


@pytest.mark.parametrize("reader", ["whole", "streamed"])
def test_seldon_routes_have_the_scheduler_timeout_of_zero(reader: str) -> None:
    """seldon-core v2.7+ (`DefaultRouteTimeoutSecs = 0`, PR #5099) dumps `"timeout": "0s"` on its model routes."""
    if reader == "whole":
        config = parse_config_dump(json.loads(SELDON_DUMP.read_text(encoding="utf-8")))
    else:
        config = load_config_dump(SELDON_DUMP)
    timed = [route for route in config.routes() if route.timeout_text is not None]
    assert timed
    assert {route.timeout_ms for route in timed} == {0.0}
