"""A hostile API server cannot make the collector write outside its output directory: names that are not valid
Kubernetes names (`../../etc/x`, absolute, `..`, empty, NUL, very long) are skipped with a warning naming them, the
rest of the bundle is written, and every path is checked to stay inside the bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.collect.bundle_writer import collect_to_dir
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.collect.names import NameRule, UnsafePathError, bundle_path, name_problem
from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import UsageError
from mlops_trace.snapshot.bundle import load_bundle_dir
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig

NS = "serving"
EVIL = "../../etc/x"
# Each would be a path of its own (or no path at all) if it reached the file system unchecked.
HOSTILE_POD_NAMES = ["/etc/passwd", "..", ".", "", "seldon-scheduler-\x00x", "seldon-scheduler-" + "a" * 300, "A/B"]
SCHEDULER = {"app.kubernetes.io/name": "seldon-scheduler"}
LOG_TEXT = "level=info msg=\"hello\"\n"


def _pod(namespace: Any, name: Any, containers: list[Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or SCHEDULER},
        "spec": {"containers": [{"name": c} for c in containers]},
    }


def _hostile_api() -> FakeApi:
    api = FakeApi()
    api.json("/version", {"gitVersion": "v1.31.2"})
    for spec in COLLECTED_KINDS:
        api.items(spec.list_path(None), spec.kind, [])
    api.items("/api/v1/namespaces", "Namespace", [{"metadata": {"name": NS}}, {"metadata": {"name": EVIL}}])
    pods = [
        _pod(NS, "seldon-scheduler-0", ["scheduler"]),
        _pod(EVIL, "seldon-scheduler-1", ["scheduler"]),  # the namespace
        _pod(NS, EVIL, ["scheduler"]),  # the pod
        _pod(NS, "seldon-scheduler-2", [EVIL, "scheduler"]),  # one container of two
        _pod(NS, EVIL, ["envoy"], {"app.kubernetes.io/name": "seldon-envoy"}),  # an Envoy pod: envoy/<ns>/<pod>/
        *(_pod(NS, name, ["scheduler"]) for name in HOSTILE_POD_NAMES),
    ]
    api.items("/api/v1/pods", "Pod", pods)
    # A lying server answers any log path, whatever it is asked for.
    api.any_log = LOG_TEXT
    api.admin = {"/config_dump": b'{"configs": []}', "/stats": b"server.live: 1\n"}
    return api


def _files(top: Path) -> set[str]:
    return {p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file() or p.is_symlink()}


def test_names_from_the_api_never_reach_a_path_outside_the_bundle(tmp_path: Path) -> None:
    api = _hostile_api()
    out = tmp_path / "deep" / "er"
    out.mkdir(parents=True)
    root = out / "bundle"
    root.mkdir()
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        before = _files(tmp_path)
        result = collect_to_dir(LiveTarget(all_namespaces=True, kubeconfig=str(kubeconfig)), root)

    # Nothing outside the output directory, and inside it only the paths of valid names.
    outside = {f for f in _files(tmp_path) - before if not f.startswith("deep/er/bundle/")}
    assert outside == set()
    assert not (tmp_path / "etc").exists() and not (out / "etc").exists() and not (root / "etc").exists()
    assert _files(root) == {
        "bundle.yaml",
        "redaction-report.yaml",
        "kube/namespaces.yaml",
        "kube/pods.yaml",
        f"logs/{NS}/seldon-scheduler-0/scheduler.log",
        f"logs/{NS}/seldon-scheduler-2/scheduler.log",
    }
    assert (root / f"logs/{NS}/seldon-scheduler-2/scheduler.log").read_text(encoding="utf-8") == LOG_TEXT

    # Each one is named in a warning; nothing of it is asked for.
    warnings = "\n".join(result.warnings)
    assert f"skipped Namespace {EVIL!r}: the API returned a name that is not a valid Kubernetes name" in warnings
    assert f"skipped Pod 'seldon-scheduler-1' in namespace {EVIL!r}" in warnings
    assert f"skipped Pod {EVIL!r} in namespace {NS!r}" in warnings
    assert f"skipped the log of container {EVIL!r} of pod 'seldon-scheduler-2' in namespace {NS!r}" in warnings
    for name in HOSTILE_POD_NAMES:
        assert f"skipped Pod {name[:80]!r}" in warnings
    assert "'seldon-scheduler-\\x00x'" in warnings and "(317 characters)" in warnings
    assert all("\x00" not in line and "\n" not in line for line in result.warnings)
    assert not any(".." in path or "\x00" in path for _, path in api.requests)
    assert all(method == "GET" for method, _ in api.requests)

    # The bundle keeps the valid objects, says what it skipped, and reads back.
    meta = yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))
    assert len(meta["skipped_names"]) == 4 + 1 + len(HOSTILE_POD_NAMES)
    pods = yaml.safe_load((root / "kube/pods.yaml").read_text(encoding="utf-8"))["items"]
    assert [p["metadata"]["name"] for p in pods] == ["seldon-scheduler-0", "seldon-scheduler-2"]
    snap = load_bundle_dir(root)
    assert {(log.namespace, log.pod, log.container) for log in snap.logs} == {
        (NS, "seldon-scheduler-0", "scheduler"),
        (NS, "seldon-scheduler-2", "scheduler"),
    }
    assert [o.name for o in snap.objects_of("Namespace")] == [NS]


@pytest.mark.parametrize(
    ("name", "rule", "problem"),
    [
        ("serving", NameRule.LABEL, None),
        ("seldon-scheduler-0", NameRule.SUBDOMAIN, None),
        ("a.b-c.d", NameRule.SUBDOMAIN, None),
        ("a.b", NameRule.LABEL, "not a DNS-1123 label"),
        (EVIL, NameRule.SUBDOMAIN, "contains a path separator"),
        ("/etc/passwd", NameRule.SUBDOMAIN, "contains a path separator"),
        ("..\\x", NameRule.SUBDOMAIN, "contains a path separator"),
        ("..", NameRule.SUBDOMAIN, "is '..'"),
        (".", NameRule.LABEL, "is '.'"),
        ("", NameRule.LABEL, "empty"),
        (None, NameRule.LABEL, "not a string"),
        (7, NameRule.SUBDOMAIN, "not a string"),
        ("x\x00y", NameRule.SUBDOMAIN, "contains a NUL byte"),
        ("a" * 64, NameRule.LABEL, "64 characters, longer than the 63"),
        ("a" * 253, NameRule.SUBDOMAIN, None),
        ("a" * 254, NameRule.SUBDOMAIN, "254 characters, longer than the 253"),
        ("Upper", NameRule.SUBDOMAIN, "not a DNS-1123 subdomain"),
        ("trailing\n", NameRule.LABEL, "not a DNS-1123 label"),
        ("-x", NameRule.LABEL, "not a DNS-1123 label"),
        ("x..y", NameRule.SUBDOMAIN, "not a DNS-1123 subdomain"),
    ],
)
def test_name_rules(name: object, rule: NameRule, problem: str | None) -> None:
    found = name_problem(name, rule)
    assert found == problem if problem is None else found is not None and found.startswith(problem)


def test_bundle_path_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    (root / "logs").mkdir(parents=True)
    assert bundle_path(root, "logs", NS, "pod", "c.log") == root / "logs" / NS / "pod" / "c.log"
    for parts in [("logs", ".."), ("..", "x"), ("/etc",), ("a/b",), ("",), ("x\x00",), ("x" * 256,), ("a\\b",)]:
        with pytest.raises(UnsafePathError):
            bundle_path(root, *parts)
    # A link inside the root that points out of it is caught by the resolved-path check.
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "logs" / "link")
    with pytest.raises(UnsafePathError, match="resolves outside"):
        bundle_path(root, "logs", "link", "c.log")


@pytest.mark.parametrize("namespace", ["..", "a/b", "Serving", "x" * 64])
def test_a_namespace_option_that_is_no_namespace_name_is_a_usage_error(tmp_path: Path, namespace: str) -> None:
    with pytest.raises(UsageError, match="not a namespace name"):
        collect_to_dir(LiveTarget(namespaces=(namespace,)), tmp_path)


def test_envoy_admin_option_names_a_valid_pod() -> None:
    from mlops_trace.collect.envoy import parse_admin_urls

    with pytest.raises(UsageError, match="not a Kubernetes pod name"):
        parse_admin_urls([f"{NS}/..=http://127.0.0.1:9901"])
