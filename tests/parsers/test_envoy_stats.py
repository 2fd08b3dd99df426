"""Tests for the Envoy /stats text parser (mlops_trace.parsers.envoy_stats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_stats import load_stats, parse_stats

STATS = """\
cluster.iris_1_http.membership_healthy: 1
cluster.iris_1_http.upstream_rq_200: 41
cluster.iris_1_http.upstream_rq_503: 2
cluster.iris_1_http.upstream_rq_total: 43
cluster.iris2_1_http.upstream_rq_total: 7
control_plane.connected_state: 1
http.seldon_http.downstream_rq_4xx: 12
http.seldon_http.no_route: 9
http.seldon_http.rds.listener_0.update_rejected: 0
http.seldon_http.rds.listener_0.update_success: 14
server.version: 0123456789abcdef/1.34.1/Clean/RELEASE/BoringSSL
control_plane.identifier:
listener.0.0.0.0_9000.downstream_cx_active: -1
cluster.iris_1_http.upstream_rq_time: P0(nan,1) P25(nan,2.05) P50(nan,3.1) P75(nan,5.2) P90(nan,9.8) P95(nan,12) P99(nan,30) P99.5(nan,31) P99.9(nan,32) P100(nan,33)
cluster.iris2_1_http.upstream_rq_time: No recorded values
this line is garbage
: 5
"""


def test_counters_gauges_histograms_and_text() -> None:
    stats = parse_stats(STATS.splitlines(keepends=True))
    assert stats.get("http.seldon_http.no_route") == 9
    assert stats.get("control_plane.connected_state") == 1
    assert stats.get("listener.0.0.0.0_9000.downstream_cx_active") == -1
    assert stats.get("http.seldon_http.no_cluster") == 0
    assert stats.get("http.seldon_http.no_cluster", -5) == -5
    assert stats.histograms["cluster.iris_1_http.upstream_rq_time"].startswith("P0(nan,1) P25(nan,2.05)")
    assert stats.histograms["cluster.iris2_1_http.upstream_rq_time"] == "No recorded values"
    assert "cluster.iris_1_http.upstream_rq_time" not in stats.counters
    assert stats.text_readouts["server.version"].endswith("/1.34.1/Clean/RELEASE/BoringSSL")
    assert stats.text_readouts["control_plane.identifier"] == ""
    assert "this line is garbage" not in stats.counters


def test_matching_prefix() -> None:
    stats = parse_stats(STATS.splitlines())
    assert stats.matching("cluster.iris_1_http.") == {
        "cluster.iris_1_http.membership_healthy": 1,
        "cluster.iris_1_http.upstream_rq_200": 41,
        "cluster.iris_1_http.upstream_rq_503": 2,
        "cluster.iris_1_http.upstream_rq_total": 43,
    }
    assert stats.matching("http.seldon_http.rds.listener_0.") == {
        "http.seldon_http.rds.listener_0.update_rejected": 0,
        "http.seldon_http.rds.listener_0.update_success": 14,
    }
    assert stats.matching("cluster.nope.") == {}


def test_load_stats_streams_a_file(tmp_path: Path) -> None:
    path = tmp_path / "stats.txt"
    path.write_text(STATS, encoding="utf-8")
    assert load_stats(path).get("cluster.iris2_1_http.upstream_rq_total") == 7


def test_load_stats_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"stats\.txt"):
        load_stats(tmp_path / "stats.txt")


def test_empty_input() -> None:
    stats = parse_stats([])
    assert stats.counters == {} and stats.histograms == {}
    assert stats.get("anything") == 0


def test_a_counter_too_long_for_an_integer_is_no_counter() -> None:
    # Python refuses int() of more than 4,300 digits; a stats file from a hostile bundle must not crash the reader.
    stats = parse_stats(["cluster.x.upstream_rq_total: " + "9" * 5000, "server.live: 1"])
    assert stats.counters == {"server.live": 1}
