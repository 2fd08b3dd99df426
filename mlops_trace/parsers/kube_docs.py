"""Kubernetes documents from YAML or JSON files, the way kubectl writes them.

A file may hold one document, several YAML documents, or a `List` (`kubectl get ... -o yaml`); typed lists from the
API (`PodList`) carry items without `kind`, which we take from the list's kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_trace.errors import InputError

# libyaml is several times faster on large dumps; fall back to the pure-Python loader when pyyaml lacks it.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class KubeDocument:
    index: int  # position in the file (documents and List items counted together), for evidence
    body: Mapping[str, Any]


def read_documents(path: Path) -> Iterator[KubeDocument]:
    """Every Kubernetes object in the file; InputError (naming the file and line) when it does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    if path.suffix == ".json":
        try:
            raw_docs: list[Any] = [json.loads(text)] if text.strip() else []
        except json.JSONDecodeError as exc:
            raise InputError(f"JSON error at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    else:
        try:
            raw_docs = list(yaml.load_all(text, Loader=_Loader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(f"YAML error{where}: {problem}") from exc
    index = 0
    for doc in raw_docs:
        for item in _flatten(doc):
            yield KubeDocument(index=index, body=item)
            index += 1


def _flatten(doc: Any) -> Iterator[Mapping[str, Any]]:
    if doc is None:
        return
    if isinstance(doc, list):  # a bare YAML sequence of objects
        for item in doc:
            yield from _flatten(item)
        return
    if not isinstance(doc, Mapping):
        raise InputError(f"expected a Kubernetes object or List, found {type(doc).__name__}")
    kind = str(doc.get("kind") or "")
    items = doc.get("items")
    if kind.endswith("List") and isinstance(items, list):
        item_kind = kind[: -len("List")] if kind != "List" else ""
        api_version = doc.get("apiVersion")
        for item in items:
            if not isinstance(item, Mapping):
                continue
            if item_kind and "kind" not in item:
                item = {**item, "kind": item_kind}
                if api_version and "apiVersion" not in item:
                    item["apiVersion"] = api_version
            yield from _flatten(item)
        return
    yield doc
