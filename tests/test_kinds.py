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
    kind_key,
    spec_of,
)
from mlops_trace.serve.resources import ResourceTable

KINDS_MODULE = Path(__file__).resolve().parents[1] / "mlops_trace" / "kinds.py"


def test_every_kind_has_one_entry() -> None:
    keys = Counter(spec.key for spec in ALL_KINDS)
    assert [key for key, count in keys.items() if count > 1] == []
    resources = Counter((spec.group, spec.plural) for spec in ALL_KINDS)
    assert [resource for resource, count in resources.items() if count > 1] == []
    files = Counter(spec.file_name for spec in ALL_KINDS)
    assert [name for name, count in files.items() if count > 1] == [], "two kinds would share a bundle file"
    words = Counter(w for spec in SERVED_KINDS for w in set(spec.file_words()))
    assert [w for w, count in words.items() if count > 1] == [], "a file name would name two kinds"


def test_a_kind_name_two_groups_use_is_qualified() -> None:
    """Knative's Service beside the core one, Knative's Ingress beside networking.k8s.io's, Istio's Gateway beside the
    Gateway API's: at most one spec of a name keeps the bare name, and it is never a qualified one."""
    by_name: dict[str, list[KindSpec]] = {}
    for spec in ALL_KINDS:
        by_name.setdefault(spec.kind, []).append(spec)
    shared = {name: specs for name, specs in by_name.items() if len(specs) > 1}
    assert set(shared) == {"Service", "Ingress", "Gateway"}
    for specs in shared.values():
        assert sum(not spec.qualified for spec in specs) <= 1
    assert {spec.key for specs in shared.values() for spec in specs} == {
        "Service", "Service.serving.knative.dev", "Ingress", "Ingress.networking.internal.knative.dev",
        "Gateway.networking.istio.io", "Gateway.gateway.networking.k8s.io",
    }  # fmt: skip
    knative = spec_of("Service.serving.knative.dev")
    assert knative is not None and knative.kind == "Service" and knative.group == "serving.knative.dev"
    assert knative.file_name == "kube/services.serving.knative.dev.yaml"
    assert knative.list_path("ns") == "/apis/serving.knative.dev/v1/namespaces/ns/services"
    core = spec_of("Service")
    assert core is not None and core.group == "" and core.file_name == "kube/services.yaml"


@pytest.mark.parametrize(
    ("kind", "api_version", "key"),
    [
        ("Service", "v1", "Service"),
        ("Service", "serving.knative.dev/v1", "Service.serving.knative.dev"),
        ("Ingress", "networking.k8s.io/v1", "Ingress"),
        ("Ingress", "networking.internal.knative.dev/v1alpha1", "Ingress.networking.internal.knative.dev"),
        ("Gateway", "networking.istio.io/v1", "Gateway.networking.istio.io"),  # any version of the group
        ("Gateway", "networking.istio.io/v1alpha3", "Gateway.networking.istio.io"),
        ("Gateway", "gateway.networking.k8s.io/v1beta1", "Gateway.gateway.networking.k8s.io"),
        ("InferenceService", "serving.kserve.io/v1beta1", "InferenceService"),
        ("Service", None, "Service"),  # a hand-written object without apiVersion is the core kind
        ("Route", "route.openshift.io/v1", "Route"),  # only the registry's qualified kinds get a group
        ("Widget", "example.com/v1", "Widget"),
    ],
)
def test_an_object_is_keyed_by_its_kind_and_group(kind: str, api_version: str | None, key: str) -> None:
    assert kind_key(kind, api_version) == key


def test_every_collected_kind_is_served() -> None:
    collected = [spec for spec in ALL_KINDS if spec.collected]
    assert collected == [NAMESPACE_KIND, *COLLECTED_KINDS]
    assert [spec.kind for spec in collected if not spec.served] == []
    table = ResourceTable()
    for spec in collected:
        assert table.lookup(spec.group, spec.version, spec.plural) is spec
        assert table.for_kind(spec.key) is spec
        assert spec.file_name == f"kube/{spec.plural}{'.' + spec.group if spec.qualified else ''}.yaml"


def test_collect_lists_the_namespaces_then_these_kinds_in_this_order() -> None:
    assert NAMESPACE_KIND.kind == "Namespace"
    assert [spec.key for spec in COLLECTED_KINDS] == [
        "Pod", "Service", "Endpoints", "EndpointSlice", "Deployment", "StatefulSet", "Ingress", "NetworkPolicy",
        "IngressClass", "HorizontalPodAutoscaler", "ConfigMap", "Event", "Model", "Server", "Experiment", "Pipeline",
        "SeldonRuntime", "SeldonConfig", "ServerConfig", "IPAddressPool",
        "InferenceService", "ServingRuntime", "ClusterServingRuntime", "InferenceGraph",
        "Service.serving.knative.dev", "Configuration", "Revision", "Route",
        "Ingress.networking.internal.knative.dev", "PodAutoscaler",
        "Gateway.networking.istio.io", "VirtualService", "DestinationRule",
        "HTTPRoute", "Gateway.gateway.networking.k8s.io",
    ]  # fmt: skip


def test_kinds_listed_by_name_are_configmaps_only() -> None:
    assert {spec.key: spec.names for spec in ALL_KINDS if spec.names} == {
        "ConfigMap": (
            "seldon-kafka", "inferenceservice-config", "config-istio", "config-network", "config-domain",
            "config-defaults", "config-autoscaler",
        )
    }  # fmt: skip


def test_named_configmaps_are_also_listed_where_kserve_and_knative_keep_them() -> None:
    configmaps = spec_of("ConfigMap")
    assert configmaps is not None and configmaps.home_namespaces == ("kserve", "knative-serving")
    assert configmaps.list_scopes(["models"], all_namespaces=False) == ["models", "kserve", "knative-serving"]
    assert configmaps.list_scopes(["kserve", "a"], all_namespaces=False) == ["kserve", "a", "knative-serving"]
    assert configmaps.list_scopes(["models"], all_namespaces=True) == [None]
    pods = spec_of("Pod")
    assert pods is not None and pods.list_scopes(["models"], all_namespaces=False) == ["models"]
    gateways = spec_of("Gateway.networking.istio.io")
    assert gateways is not None and gateways.list_scopes(["models"], all_namespaces=False) == [None]


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
        ("services", "Service"),
        ("services.serving.knative.dev", "Service.serving.knative.dev"),
        ("ksvc", "Service.serving.knative.dev"),
        ("isvc", "InferenceService"),
        ("InferenceServices", "InferenceService"),
        ("vs", "VirtualService"),
        ("gateways", None),  # two groups' plural: only with its group
        ("gateways.networking.istio.io", "Gateway.networking.istio.io"),
        ("kingress", "Ingress.networking.internal.knative.dev"),
        ("destinationrules.networking.istio.io", "DestinationRule"),  # kubectl's resource.group for any kind
        ("deployments.apps", "Deployment"),
        ("secrets", None),  # never served, so no file names it
        ("widgets", None),
    ],
)
def test_file_names_name_served_kinds(stem: str, kind: str | None) -> None:
    spec = kind_for_file_stem(stem)
    assert (spec.key if spec else None) == kind


@pytest.mark.parametrize(
    "bad",
    [
        {"namespaced": False, "collect": Collection.PER_NAMESPACE},
        {"namespaced": True, "collect": Collection.CLUSTER},
        {"namespaced": True, "collect": Collection.NEVER},
        {"namespaced": True, "names": ("x",)},
        {"namespaced": True, "collect": Collection.PER_NAMESPACE, "home_namespaces": ("kserve",)},
        {"namespaced": True, "collect": Collection.INFRA, "names": ("x",), "home_namespaces": ("kserve",)},
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
