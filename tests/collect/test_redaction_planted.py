"""Planted secrets through the redaction path of `collect`: none survives, the report holds exactly one entry per
planted secret (its kind and length, never the value), and the look-alikes beside them stay readable.

The data (`data/planted-secrets-audit/`, listed in its `planted.yaml`) goes through twice: in process, each file
through the call `collect` makes for it, and through a real `collect` against a fake API server that serves it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.kinds import COLLECTED_KINDS, NEVER_COLLECTED
from mlops_trace.collect.target import LiveTarget
from mlops_trace.redaction import (
    LineRedactor,
    Redaction,
    RedactionReport,
    SecretKind,
    redact_lines,
    redact_object,
)
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig

DATA = Path(__file__).resolve().parent / "data"
AUDIT = DATA / "planted-secrets-audit"
EARLIER = DATA / "planted-secrets"  # the bundle `bundle serve` tests plant values containing PLANTED in
NS = "seldon-mesh"


@dataclass(frozen=True)
class Planted:
    file: str
    kind: SecretKind
    value: str
    chars: int  # length the report must record (the masked text can be longer than the marker value)
    also: tuple[str, ...]  # other parts of the same secret that must not survive either

    @property
    def values(self) -> tuple[str, ...]:
        return (self.value, *self.also)


def _manifest() -> tuple[list[Planted], list[tuple[str, str]]]:
    data = yaml.safe_load((AUDIT / "planted.yaml").read_text(encoding="utf-8"))
    planted = [
        Planted(
            file=entry["file"],
            kind=SecretKind(entry["kind"]),
            value=entry["value"],
            chars=entry.get("chars", len(entry["value"])),
            also=tuple(entry.get("also", ())),
        )
        for entry in data["planted"]
    ]
    keep = [(entry["file"], entry["value"]) for entry in data["keep"]]
    return planted, keep


PLANTED, KEEP = _manifest()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _texts(rel: str, text: str) -> list[str]:
    """The file as written and, for YAML/JSON, every string in it (a value folded or escaped by the serializer is
    still found)."""
    texts = [text]
    if rel.endswith((".yaml", ".json")):
        texts.extend(_strings(yaml.safe_load(text)))
    return texts


def _bundle_files(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in ("planted.yaml", "expected.yaml")
    }


def _objects(text: str) -> Iterator[dict[str, Any]]:
    """The objects of a kube/ file: `kind: List` documents or single objects, one or more YAML documents."""
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict):
            yield from document.get("items", []) if document.get("kind") == "List" else [document]


def redact_in_process(root: Path) -> tuple[dict[str, str], RedactionReport]:
    """Every file of a bundle-like directory through the redaction call `collect` makes for it (bundle_writer:
    `redact_object` per listed object and on the parsed config_dump, `redact_lines` on stats; logs.py: one
    `LineRedactor` per log, line by line). Returns the text each file would be written as, and the report."""
    report = RedactionReport()
    written: dict[str, str] = {}
    for rel, text in _bundle_files(root).items():
        if rel.startswith("kube/"):
            items: list[dict[str, Any]] = []
            found: list[Redaction] = []
            for item in _objects(text):
                if item.get("kind") in NEVER_COLLECTED:
                    continue
                metadata = item.get("metadata", {})
                name = f"{metadata.get('namespace', '-')}/{metadata.get('name')}"
                label = f"items[{len(items)}] {item.get('kind')} {name}"
                redacted, masked = redact_object(item, label)
                items.append(redacted)
                found.extend(masked)
            written[rel] = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False)
            report.add(rel, found)
        elif rel.endswith("config_dump.json"):
            redacted, masked = redact_object(json.loads(text))
            written[rel] = json.dumps(redacted, indent=2, ensure_ascii=False) + "\n"
            report.add(rel, masked)
        elif rel.endswith("stats.txt"):
            written[rel], masked_lines = redact_lines(text)
            report.add(rel, masked_lines)
        elif rel.startswith("logs/"):
            redactor = LineRedactor()
            lines = text.splitlines(keepends=True)
            written[rel] = "".join(redactor.line(n, line) for n, line in enumerate(lines, start=1))
            report.add(rel, redactor.redactions)
    return written, report


def _survivors(written: dict[str, str]) -> list[str]:
    texts = [t for rel, text in written.items() for t in _texts(rel, text)]
    return [value for planted in PLANTED for value in planted.values if any(value in text for text in texts)]


def _expected_by_file() -> dict[str, Counter[tuple[str, int]]]:
    expected: dict[str, Counter[tuple[str, int]]] = {}
    for planted in PLANTED:
        expected.setdefault(planted.file, Counter())[(planted.kind.value, planted.chars)] += 1
    return expected


def _report_by_file(report: dict[str, Any]) -> dict[str, Counter[tuple[str, int]]]:
    return {
        name: Counter((entry["kind"], entry["chars"]) for entry in entries) for name, entries in report["files"].items()
    }


def test_the_manifest_plants_what_it_says() -> None:
    source = _bundle_files(AUDIT)
    assert len(PLANTED) >= 48
    assert len({p.value for p in PLANTED}) == len(PLANTED), "each planted value is unique"
    for planted in PLANTED:
        texts = _texts(planted.file, source[planted.file])
        for value in planted.values:
            assert any(value in text for text in texts), f"{value} is not in {planted.file}"
    for file, value in KEEP:
        assert any(value in text for text in _texts(file, source[file])), f"{value} is not in {file}"
    # The kinds this data exists for: the audit's misses and the ones handled before it.
    assert {p.kind for p in PLANTED} >= {
        SecretKind.FIELD_VALUE,
        SecretKind.ENV_VALUE,
        SecretKind.ANNOTATION,
        SecretKind.TOKEN_PARAM,
        SecretKind.PASSWORD_PARAM,
        SecretKind.SECRET_PARAM,
        SecretKind.API_KEY,
        SecretKind.BEARER_TOKEN,
        SecretKind.BASIC_AUTH,
        SecretKind.URL_CREDENTIALS,
        SecretKind.AWS_ACCESS_KEY,
        SecretKind.JWT,
        SecretKind.PRIVATE_KEY,
        SecretKind.PROVIDER_TOKEN,
        SecretKind.COOKIE,
        SecretKind.URL_SIGNATURE,
    }


def test_no_planted_secret_survives_and_the_report_counts_each_once() -> None:
    written, report = redact_in_process(AUDIT)
    assert _survivors(written) == []
    data = report.to_dict()
    assert data["total"] == len(PLANTED)
    assert _report_by_file(data) == _expected_by_file()
    dumped = yaml.safe_dump(data)
    assert [p.value for p in PLANTED if p.value in dumped] == []
    assert all(r.where for items in report.files.values() for r in items)


def test_lookalikes_stay_readable() -> None:
    written, _ = redact_in_process(AUDIT)
    lost = [(file, value) for file, value in KEEP if not any(value in t for t in _texts(file, written[file]))]
    assert lost == []


def test_the_earlier_planted_bundle_leaks_nothing_in_process() -> None:
    source = _bundle_files(EARLIER)
    written, report = redact_in_process(EARLIER)
    assert sum(text.count("PLANTED") for text in source.values()) >= 18
    assert [rel for rel, text in written.items() if "PLANTED" in text] == []
    assert report.total >= 18


def _fake_api(root: Path) -> FakeApi:
    """The API server and the Envoy admin of a cluster holding the bundle-like directory `root`."""
    api = FakeApi()
    api.json("/version", {"major": "1", "minor": "31", "gitVersion": "v1.31.2"})
    api.json(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS}})
    for spec in COLLECTED_KINDS:
        if spec.crd and spec.group == "metallb.io":
            continue
        path = root / spec.file_name
        items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"] if path.is_file() else []
        for namespace in spec.list_scopes([NS], all_namespaces=False):
            api.items(spec.list_path(namespace), spec.kind, items if namespace in (NS, None) else [])
    for log in root.glob("logs/*/*/*.log"):
        namespace, pod = log.parent.parent.name, log.parent.name
        # By container: every container of a Seldon pod is read now, and each must get its own log.
        api.log(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", log.stem, log.read_text(encoding="utf-8"))
    (envoy,) = root.glob("envoy/*/*")
    api.admin = {
        "/config_dump": (envoy / "config_dump.json").read_bytes(),
        "/stats": (envoy / "stats.txt").read_bytes(),
    }
    return api


def test_no_planted_secret_survives_a_real_collect(tmp_path: Path) -> None:
    api = _fake_api(AUDIT)
    out = tmp_path / "bundle"
    out.mkdir()
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        collect_to_dir(LiveTarget(namespaces=(NS,), kubeconfig=str(kubeconfig), request_timeout=10.0), out)
    written = _bundle_files(out)
    expected = _expected_by_file()
    assert set(expected) <= set(written), "every file with a planted secret was collected"
    assert _survivors(written) == []
    report = yaml.safe_load(written["redaction-report.yaml"])
    assert report["total"] == len(PLANTED)
    assert _report_by_file(report) == expected
    lost = [(file, value) for file, value in KEEP if not any(value in t for t in _texts(file, written[file]))]
    assert lost == []
