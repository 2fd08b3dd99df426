"""`prometheus/<name>.json` in a bundle: the accepted shapes, problems named by file, and the Snapshot wiring."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.errors import InputError
from mlops_trace.promql.families import Family
from mlops_trace.snapshot.prometheus import load_prometheus_dir, parse_result
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.snapshot import describe_requirement

P95 = (
    "histogram_quantile(0.95, sum by (namespace, server, le) "
    "(rate(seldon_model_infer_api_seconds_bucket[5m])))"
)


def _write(root: Path, name: str, document: Any) -> None:
    folder = root / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document)
    (folder / name).write_text(text, encoding="utf-8")


def test_vector_scalar_and_whole_api_answers_are_read() -> None:
    vector = [{"metric": {"server": "mlserver"}, "value": [1.0, "0.25"]}]
    assert parse_result(vector)[0].value == 0.25
    assert parse_result([1.0, "3"])[0].labels == {}
    api = {"status": "success", "data": {"resultType": "vector", "result": vector}}
    assert parse_result(api)[0].labels == {"server": "mlserver"}
    assert math.isnan(parse_result([{"metric": {}, "value": [1.0, "NaN"]}])[0].value)
    assert parse_result([]) == []
    with pytest.raises(ValueError):
        parse_result([{"metric": {}, "value": "x"}])


def test_folder_is_loaded_with_unit_family_and_problems(tmp_path: Path) -> None:
    _write(tmp_path, "latency_p95.json",
           {"query": P95, "window": "5m", "result": [{"metric": {"server": "s"}, "value": [1.0, "0.2"]}]})
    _write(tmp_path, "broken.json", "{not json")
    _write(tmp_path, "no_query.json", {"result": []})
    (tmp_path / "prometheus" / "source.txt").write_text("http://prom:9090\n")
    data = load_prometheus_dir(tmp_path)
    assert data is not None
    result = data.results["latency_p95"]
    assert result.family is Family.AGENT and result.unit == "s" and result.to_ms(0.2) == pytest.approx(200.0)
    assert result.display == "prometheus/latency_p95.json" and result.window == "5m"
    assert {p.path for p in data.problems} == {"prometheus/broken.json", "prometheus/no_query.json"}
    assert data.source == "http://prom:9090"
    assert load_prometheus_dir(tmp_path / "nothing") is None


def test_a_bundle_with_only_prometheus_results_is_usable(tmp_path: Path) -> None:
    _write(tmp_path, "latency_p95.json", {"query": P95, "window": "5m", "result": []})
    with open_bundle(tmp_path) as snap:
        assert snap.prometheus is not None
        assert snap.has("prometheus") and snap.has("kube:Experiment|prometheus")
        assert not snap.has("kube:Experiment")


def test_unreadable_files_are_input_problems_of_the_snapshot(tmp_path: Path) -> None:
    _write(tmp_path, "latency_p95.json", {"query": P95, "result": []})
    _write(tmp_path, "split_requests.json", {"query": "sum(x)", "result": {"no": "data"}})
    with open_bundle(tmp_path) as snap:
        assert [p.path for p in snap.problems] == ["prometheus/split_requests.json"]


def test_a_bundle_with_only_broken_prometheus_files_is_not_usable(tmp_path: Path) -> None:
    _write(tmp_path, "latency_p95.json", "[")
    with pytest.raises(InputError, match="nothing usable"):
        with open_bundle(tmp_path):
            pass


def test_missing_prometheus_is_described_for_skip_reasons() -> None:
    assert "prometheus/*.json" in describe_requirement("prometheus")


def test_a_tarball_of_prometheus_results_only(tmp_path: Path) -> None:
    import tarfile

    root = tmp_path / "incident"
    _write(root, "latency_p95.json", {"query": P95, "window": "5m", "result": []})
    archive = tmp_path / "incident.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="incident")
    with open_bundle(archive) as snap:
        assert snap.prometheus is not None and "latency_p95" in snap.prometheus.results
