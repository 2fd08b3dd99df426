"""The bundle reader: every document shape kubectl writes, tarballs, and malformed files named one by one."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mlops_trace.errors import InputError
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.roles import Role

MODEL = """apiVersion: mlops.seldon.io/v1alpha1
kind: Model
metadata: {name: %s, namespace: serving}
spec: {storageUri: "gs://bucket/%s"}
"""


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "b"
    _write(root, "kube/models.yaml", MODEL % ("a", "a") + "---\n" + MODEL % ("b", "b") + "---\n")
    _write(
        root,
        "kube/list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: seldon-mesh, namespace: serving}\n",
    )
    typed_list = {"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "seldon-scheduler-0", "namespace": "serving", "labels": {"app.kubernetes.io/name": "seldon-scheduler"}}}]}
    _write(root, "kube/sub/pods.json", json.dumps(typed_list))
    _write(root, "logs/serving/seldon-scheduler-0/scheduler.log", 'time="2025-01-01T00:00:00Z" level=info msg="x"\nsecond\n')
    _write(root, "logs/serving/mlserver-0/agent.log", "Subscribed to scheduler\n")
    _write(root, "notes.txt", "ignored")
    return root


def test_reads_every_document_shape(bundle: Path) -> None:
    with open_bundle(bundle) as snap:
        assert sorted(m.name for m in snap.objects_of("Model")) == ["a", "b"]
        assert snap.get("Service", "serving", "seldon-mesh") is not None
        pod = snap.get("Pod", "serving", "seldon-scheduler-0")
        assert pod is not None and pod.source == "kube/sub/pods.json#0"
        assert not snap.problems


def test_logs_get_roles_and_stream_with_line_numbers(bundle: Path) -> None:
    with open_bundle(bundle) as snap:
        (sched,) = snap.logs_of(Role.SCHEDULER)
        assert list(sched.lines())[1] == (2, "second")
        assert sched.where(2) == "logs/serving/seldon-scheduler-0/scheduler.log:2"
        assert [log.pod for log in snap.logs_of(Role.AGENT)] == ["mlserver-0"]


def test_tarball_with_top_directory(bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bundle, arcname="my-bundle")
    with open_bundle(archive) as snap:
        assert len(snap.objects_of("Model")) == 2
        assert snap.source == str(archive)


def test_malformed_file_is_named_and_the_rest_is_used(bundle: Path) -> None:
    _write(bundle, "kube/broken.yaml", "kind: Model\nmetadata: {name: x\n  bad: [")
    _write(bundle, "kube/broken.json", "{not json")
    with open_bundle(bundle) as snap:
        problems = {p.path: p.reason for p in snap.problems}
        assert set(problems) == {"kube/broken.yaml", "kube/broken.json"}
        assert "line" in problems["kube/broken.yaml"]
        assert len(snap.objects_of("Model")) == 2


def test_document_without_name_is_a_problem(bundle: Path) -> None:
    _write(bundle, "kube/noname.yaml", "apiVersion: v1\nkind: Service\nmetadata: {}\n")
    with open_bundle(bundle) as snap:
        assert [p.path for p in snap.problems] == ["kube/noname.yaml"]


def test_nothing_usable_is_an_input_error(tmp_path: Path) -> None:
    _write(tmp_path / "b", "kube/bad.yaml", "{{{")
    with pytest.raises(InputError, match="nothing usable"):
        with open_bundle(tmp_path / "b"):
            pass


def test_missing_and_non_bundle_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such bundle"):
        with open_bundle(tmp_path / "absent"):
            pass
    not_tar = _write(tmp_path, "x.tar.gz", "plain text")
    with pytest.raises(InputError, match="not a tar archive"):
        with open_bundle(not_tar):
            pass


def test_covers_uses_metadata(bundle: Path) -> None:
    _write(bundle, "bundle.yaml", "source: test\nnamespaces: [serving, other]\n")
    with open_bundle(bundle) as snap:
        assert snap.covers("Service", "other")  # Services were collected and `other` was in scope
        assert not snap.covers("Service", "elsewhere")
        assert not snap.covers("NetworkPolicy", "serving")  # never collected


def test_requests_records(bundle: Path) -> None:
    _write(bundle, "requests/r.json", json.dumps({"request": {"url": "http://h/v2/models/m/infer", "headers": {"Seldon-Model": "m"}}, "response": {"status": 404}}))
    with open_bundle(bundle) as snap:
        (record,) = snap.requests
        assert record.path == "/v2/models/m/infer"
        assert record.headers["seldon-model"] == "m"
        assert record.status == 404


def test_empty_list_named_for_its_kind_counts_as_collected(bundle: Path) -> None:
    _write(bundle, "kube/networkpolicies.yaml", "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: ''\n")
    _write(bundle, "kube/other/svc.yaml", "apiVersion: v1\nitems: []\nkind: List\n")
    _write(bundle, "kube/whatever.yaml", "apiVersion: v1\nitems: []\nkind: List\n")
    with open_bundle(bundle) as snap:
        assert snap.covers("NetworkPolicy", "serving")
        assert snap.covers("Service", "other")
        assert snap.covers("Service", "serving")  # a Service of `serving` is in the bundle
        assert not snap.covers("Service", "elsewhere")
        assert not snap.covers("Ingress", "serving")
