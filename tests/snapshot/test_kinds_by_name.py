"""A kind collected by name only (the Seldon Kafka ConfigMap) never proves that another object of it is absent."""

from __future__ import annotations

from pathlib import Path

from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.snapshot import Existence


def test_a_configmap_collected_by_name_covers_no_other_configmap(tmp_path: Path) -> None:
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "configmaps.yaml").write_text(
        "kind: ConfigMap\napiVersion: v1\nmetadata: {name: seldon-kafka, namespace: seldon-mesh}\ndata: {}\n"
    )
    (tmp_path / "bundle.yaml").write_text(
        "namespaces: all\nkinds: [ConfigMap, Namespace]\nkinds_by_name: {ConfigMap: [seldon-kafka]}\n"
    )
    snap = load_bundle_dir(tmp_path)
    assert not snap.covers("ConfigMap", "seldon-mesh")
    assert snap.existence("ConfigMap", "seldon-mesh", "inferenceservice-config") is Existence.UNKNOWN
    assert snap.existence("ConfigMap", "seldon-mesh", "seldon-kafka") is Existence.PRESENT
