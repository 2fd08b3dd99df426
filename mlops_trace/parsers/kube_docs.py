"""Kubernetes documents from YAML or JSON files, the way kubectl writes them.

A file may hold one document, several YAML documents, or a `List` (`kubectl get ... -o yaml`); typed lists from the
API (`PodList`) carry items without `kind`, which we take from the list's kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.parsers.structured import load_json, load_yaml_documents, read_bounded_text


@dataclass(frozen=True)
class KubeDocument:
    index: int  # position in the file (documents and List items counted together), for evidence
    body: Mapping[str, Any]


def read_documents(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> Iterator[KubeDocument]:
    """Every Kubernetes object in the file; InputError (naming the line, or the limit broken) when it does not parse.

    The file is read whole, so `file-bytes`, `nesting-depth` and `yaml-alias-nodes` bound it (see limits.py).
    """
    text = read_bounded_text(path, limits)
    if path.suffix == ".json":
        raw_docs: list[Any] = [load_json(text, limits)] if text.strip() else []
    else:
        raw_docs = list(load_yaml_documents(text, limits))
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
