"""The registry of Kubernetes kinds (`mlops_trace/kinds.py`) is the one table collect, serve and snapshot read.

What the collector may read is held against deploy/rbac-readonly.yaml in tests/collect/test_rbac.py (list/get/watch
on every collected kind, by name where it lists by name, and no other verb or resource); that no other module holds
a table of kinds, and that snapshot does not import serve, in tests/test_architecture.py.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from mlops_trace.kinds import (
    ALL_KINDS,
    COLLECTED_KINDS,
    NAMESPACE_KIND,
    NEVER_COLLECTED,
    NEVER_SERVED,
    SELDON,
    SELDON_NAMESPACE_KINDS,
    SERVED_KINDS,
    Collection,
    KindSpec,
    kind_for_file_stem,
    spec_of,
)
from mlops_trace.serve.resources import ResourceTable

KINDS_MODULE = Path(__file__).resolve().parents[1] / "mlops_trace" / "kinds.py"


def test_every_kind_has_one_entry() -> None:
    kinds = Counter(spec.kind for spec in ALL_KINDS)
    assert [kind for kind, count in kinds.items() if count > 1] == []
    resources = Counter((spec.group, spec.plural) for spec in ALL_KINDS)
    assert [resource for resource, count in resources.items() if count > 1] == []
    words = Counter(w for spec in SERVED_KINDS for w in {spec.plural, spec.singular, *spec.short_names})
    assert [w for w, count in words.items() if count > 1] == [], "a file name would name two kinds"


def test_every_collected_kind_is_served() -> None:
    collected = [spec for spec in ALL_KINDS if spec.collected]
    assert collected == [NAMESPACE_KIND, *COLLECTED_KINDS]
    assert [spec.kind for spec in collected if not spec.served] == []
    table = ResourceTable()
    for spec in collected:
        assert table.lookup(spec.group, spec.version, spec.plural) is spec
        assert spec.file_name == f"kube/{spec.plural}.yaml"


def test_collect_lists_the_namespaces_then_these_kinds_in_this_order() -> None:
    assert NAMESPACE_KIND.kind == "Namespace"
    assert [spec.kind for spec in COLLECTED_KINDS] == [
        "Pod", "Service", "Endpoints", "EndpointSlice", "Deployment", "StatefulSet", "Ingress", "NetworkPolicy",
        "IngressClass", "HorizontalPodAutoscaler", "ConfigMap", "Event", "Model", "Server", "Experiment", "Pipeline",
        "SeldonRuntime", "SeldonConfig", "ServerConfig", "IPAddressPool",
    ]  # fmt: skip


def test_kinds_listed_by_name_are_configmaps_only() -> None:
    assert {spec.kind: spec.names for spec in ALL_KINDS if spec.names} == {"ConfigMap": ("seldon-kafka",)}


def test_secrets_are_never_collected_nor_served() -> None:
    assert NEVER_COLLECTED == NEVER_SERVED == {"Secret"}
    secret = spec_of("Secret")
    assert secret is not None and secret.collect is Collection.NEVER and not secret.served
    assert ResourceTable([("v1", "Secret")]).for_kind("Secret") is None


def test_the_seldon_namespace_kinds() -> None:
    assert SELDON_NAMESPACE_KINDS == ("Model", "Server", "Experiment", "Pipeline", "SeldonRuntime")
    for kind in SELDON_NAMESPACE_KINDS:
        spec = spec_of(kind)
        assert spec is not None and spec.group == SELDON and spec.crd and spec.collected


def test_where_a_kind_is_listed() -> None:
    pods, ingress_classes, pools = spec_of("Pod"), spec_of("IngressClass"), spec_of("IPAddressPool")
    assert pods is not None and ingress_classes is not None and pools is not None
    assert pods.list_path("ns") == "/api/v1/namespaces/ns/pods" and pods.list_path(None) == "/api/v1/pods"
    assert ingress_classes.list_path("ns") == "/apis/networking.k8s.io/v1/ingressclasses"
    assert pools.namespaced and pools.list_path("ns") == "/apis/metallb.io/v1beta1/ipaddresspools"
    assert NAMESPACE_KIND.list_path(None) == "/api/v1/namespaces"


@pytest.mark.parametrize(
    ("stem", "kind"),
    [
        ("netpol", "NetworkPolicy"),
        ("NetworkPolicies", "NetworkPolicy"),
        ("network_policy", "NetworkPolicy"),
        ("po", "Pod"),
        ("endpoints", "Endpoints"),
        ("secrets", None),  # never served, so no file names it
        ("widgets", None),
    ],
)
def test_file_names_name_served_kinds(stem: str, kind: str | None) -> None:
    spec = kind_for_file_stem(stem)
    assert (spec.kind if spec else None) == kind


@pytest.mark.parametrize(
    "bad",
    [
        {"namespaced": False, "collect": Collection.PER_NAMESPACE},
        {"namespaced": True, "collect": Collection.CLUSTER},
        {"namespaced": True, "collect": Collection.NEVER},
        {"namespaced": True, "names": ("x",)},
    ],
)
def test_an_inconsistent_entry_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        KindSpec("Thing", "example.com", "v1", "things", **bad)  # type: ignore[arg-type]


def test_the_registry_imports_nothing_of_the_package() -> None:
    """collect, serve and snapshot all import it, so it must import none of them (nor anything that does)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(KINDS_MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mlops_trace")):
            found.add(node.module or ".")
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mlops_trace")}
    assert found == set()
