"""`load_config_dump` streams the file (ijson) and must give exactly what `parse_config_dump(json.load(...))` gives,
or the same error; unusual files fall back to the whole-document read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config import EnvoyConfig, load_config_dump, parse_config_dump
from mlops_trace.parsers.envoy_config import load as envoy_load

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted(ROOT.glob("fixtures/**/config_dump.json")) + sorted(ROOT.glob("tests/**/config_dump*.json"))
HEALTHY = ROOT / "fixtures/scenarios/healthy-ab/envoy/fraud-serving/seldon-envoy-66b4f9d7c8-k8m2n/config_dump.json"


def _expected(text: str) -> EnvoyConfig:
    return parse_config_dump(json.loads(text.removeprefix("\ufeff")))


def _streamed_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> EnvoyConfig:
        raise AssertionError(f"{path} was read whole")

    monkeypatch.setattr(envoy_load, "_load_whole", refuse)


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_dump_streams_to_the_same_config(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        expected = _expected(text)
    except InputError:
        pytest.fail(f"{path} is not a dump")  # the fixtures are all valid dumps
    _streamed_only(monkeypatch)
    assert load_config_dump(path) == expected


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _transform(value: Any, keys: Any = None, reverse: bool = False) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        if reverse:
            items = [items[0], *reversed(items[1:])] if items and items[0][0] == "@type" else list(reversed(items))
        return {(keys(k) if keys else k): _transform(v, keys, reverse) for k, v in items}
    if isinstance(value, list):
        return [_transform(v, keys, reverse) for v in value]
    return value


def test_camel_case_and_reordered_keys_stream_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.loads(HEALTHY.read_text(encoding="utf-8"))
    variants = {
        "camel": _transform(document, keys=lambda k: _camel(k) if k != "@type" else k),
        "reversed": _transform(document, reverse=True),  # names after routes, groups in the other order
    }
    _streamed_only(monkeypatch)
    for name, variant in variants.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(variant, indent=1), encoding="utf-8")
        assert load_config_dump(path) == parse_config_dump(variant), name


def test_single_resource_dumps_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.loads(HEALTHY.read_text(encoding="utf-8"))
    sections: list[dict[str, Any]] = []
    for section in document["configs"]:
        if section.get("@type", "").endswith("RoutesConfigDump"):
            for entry in section.get("dynamic_route_configs", []):
                sections.append(
                    {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig", **entry}
                )
        if section.get("@type", "").endswith("ClustersConfigDump"):
            for entry in section.get("dynamic_active_clusters", []):
                sections.append(
                    {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster", **entry}
                )
    resources = {"configs": sections}
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(resources), encoding="utf-8")
    _streamed_only(monkeypatch)
    assert load_config_dump(path) == parse_config_dump(resources)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: "\ufeff" + t, id="byte-order-mark"),
        pytest.param(lambda t: t.replace('"configs"', '"other": 1, "configs"', 1), id="extra-top-level-key"),
        pytest.param(lambda t: t.replace('"name": "', '"name": "\\ud800', 1), id="lone-surrogate-escape"),
        pytest.param(lambda t: re.sub(r'"prefix": "', '"prefix": "x", "prefix": "', t, count=1), id="duplicate-key"),
        pytest.param(lambda t: t.replace('{\n   "@type"', '{\n   "x": 1,\n   "@type"', 1), id="type-not-first"),
    ],
)
def test_unusual_files_give_the_json_load_result(tmp_path: Path, mutate: Any) -> None:
    text = mutate(HEALTHY.read_text(encoding="utf-8"))
    path = tmp_path / "dump.json"
    path.write_text(text, encoding="utf-8")
    assert load_config_dump(path) == _expected(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"configs": [', "config_dump is not valid JSON (Expecting value at line 1 column 14)"),
        ('{"configs": []} x', "config_dump is not valid JSON (Extra data at line 1 column 17)"),
        ("[]", "not an Envoy config_dump: the top level is not a JSON object"),
        ('{"configs": 3}', "not an Envoy config_dump: no top-level 'configs' list or map"),
        ('{"configs": {}}', "not an Envoy config_dump: 'configs' holds no envoy.admin config dump section"),
        ('{"configs": [{"@type": "x.Unknown"}]}', "'configs' holds no envoy.admin config dump section"),
    ],
)
def test_errors_are_the_whole_read_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "dump.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config_dump(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_invalid_utf8_is_reported_as_such(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_bytes(b'{"configs": [{"@type": "\xff"}]}')
    with pytest.raises(InputError, match="config_dump is not UTF-8 text"):
        load_config_dump(path)
