"""V2 payloads: read, generated from metadata, and the served model read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_trace.errors import InputError
from mlops_trace.trace.payload import encode, load_payload, payload_from_metadata, served_model


def test_generated_payload_follows_the_metadata_and_is_deterministic() -> None:
    metadata = {
        "inputs": [
            {"name": "input_data", "datatype": "FP32", "shape": [-1, 10, 35]},
            {"name": "flag", "datatype": "BOOL", "shape": [1]},
        ]
    }
    first = payload_from_metadata(metadata, "m")
    assert first["inputs"][0]["shape"] == [1, 10, 35] and len(first["inputs"][0]["data"]) == 350
    assert all(0.0 <= value < 1.0 for value in first["inputs"][0]["data"])
    assert isinstance(first["inputs"][1]["data"][0], bool)
    assert encode(first) == encode(payload_from_metadata(metadata, "m"))


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"inputs": []},
        {"inputs": [{"name": "x", "datatype": "FP33", "shape": [1]}]},
        {"inputs": [{"name": "x", "datatype": "FP32"}]},
    ],
)
def test_metadata_without_usable_inputs_asks_for_data(metadata: dict[str, object]) -> None:
    with pytest.raises(InputError):
        payload_from_metadata(metadata, "GET /v2/models/m")


def test_load_payload_checks_the_shape_of_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}))
    assert load_payload(good)["inputs"][0]["name"] == "x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"inputs": [{"name": "x"}]}))
    with pytest.raises(InputError, match="bad.json"):
        load_payload(bad)
    with pytest.raises(InputError, match="not JSON"):
        (tmp_path / "x.json").write_text("{")
        load_payload(tmp_path / "x.json")


def test_served_model_from_header_body_or_route() -> None:
    assert served_model(b"", {"ce-modelid": "a_1"}) == "a_1"
    assert served_model(b'{"model_name": "b_2", "outputs": []}', {}) == "b_2"
    assert served_model(b"", {"x-seldon-route": ":c_3:"}) == "c_3"
    assert served_model(b"", {}) is None
