"""Snapshot.existence / namespace_exists: present, absent (proved by a complete list), unknown (not collected)."""

from __future__ import annotations

from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import BundleMetadata, Existence, Snapshot


def _ns(name: str, source: str) -> KubeObject:
    return KubeObject("Namespace", None, name, {"kind": "Namespace", "metadata": {"name": name}}, source)


def _snap(objects: list[KubeObject], meta: BundleMetadata | None = None) -> Snapshot:
    snap = Snapshot(source="test", metadata=meta or BundleMetadata())
    snap.add_objects(objects)
    return snap


def test_namespace_list_file_proves_absence() -> None:
    snap = _snap([_ns("a", "kube/namespaces.yaml#0"), _ns("b", "kube/namespaces.yaml#1")])
    assert snap.namespace_exists("a") is Existence.PRESENT
    assert snap.namespace_exists("gone") is Existence.ABSENT
    assert snap.existence("Service", "gone", "seldon-mesh") is Existence.ABSENT
    assert snap.existence("Service", "a", "seldon-mesh") is Existence.UNKNOWN


def test_single_namespace_document_proves_nothing() -> None:
    snap = _snap([_ns("a", "kube/a.yaml#0")])
    assert snap.namespace_exists("gone") is Existence.UNKNOWN
    assert snap.existence("Service", "gone", "x") is Existence.UNKNOWN


def test_scoped_collector_lists_only_named_namespaces() -> None:
    meta = BundleMetadata(namespaces=("a",), kinds=("Namespace", "Service"))
    snap = _snap([_ns("a", "kube/namespaces.yaml#0")], meta)
    assert snap.namespace_exists("other") is Existence.UNKNOWN
    meta_all = BundleMetadata(all_namespaces=True, kinds=("Namespace",))
    assert _snap([_ns("a", "kube/namespaces.yaml#0")], meta_all).namespace_exists("other") is Existence.ABSENT
