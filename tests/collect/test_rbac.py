"""deploy/rbac-readonly.yaml grants exactly what the collector uses: get/list/watch on every kind the registry
(`mlops_trace/kinds.py`) marks collected (by name where the collector lists by name), `get` on the log, proxy and
port-forward subresources, and nothing that writes, nothing on Secrets and nothing the collector does not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops_trace.kinds import ALL_KINDS, COLLECTED_KINDS

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac-readonly.yaml"
READ = {"get", "list", "watch"}
SUBRESOURCES = {("", "pods/log"): {"get"}, ("", "pods/proxy"): {"get"}, ("", "pods/portforward"): {"get", "create"}}


def _rules() -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all(RBAC.read_text(encoding="utf-8")))
    (role,) = [d for d in documents if d and d.get("kind") == "ClusterRole"]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _grants() -> dict[tuple[str, str], tuple[set[str], tuple[str, ...]]]:
    """(group, resource) -> (verbs, resourceNames)."""
    grants: dict[tuple[str, str], tuple[set[str], tuple[str, ...]]] = {}
    for rule in _rules():
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in grants, f"{group}/{resource} granted twice"
                grants[(group, resource)] = (set(rule["verbs"]), tuple(rule.get("resourceNames") or ()))
    return grants


def test_every_collected_kind_is_readable_and_nothing_else() -> None:
    grants = _grants()
    wanted = {(spec.group, spec.plural): spec for spec in ALL_KINDS if spec.collected}
    for key, spec in wanted.items():
        assert key in grants, f"rbac-readonly.yaml does not grant {spec.plural} ({spec.group or 'core'})"
        verbs, names = grants[key]
        assert verbs == READ, f"{spec.plural}: {sorted(verbs)}"
        assert names == spec.names, f"{spec.plural}: resourceNames {names} != the names collected {spec.names}"
    extra = set(grants) - set(wanted) - set(SUBRESOURCES)
    assert extra == set(), f"granted but never collected: {sorted(extra)}"
    for key, verbs in SUBRESOURCES.items():
        assert grants[key][0] == verbs and not grants[key][1]


def test_nothing_writes_and_secrets_are_not_readable() -> None:
    grants = _grants()
    assert not any(resource in ("secrets", "*") for _, resource in grants)
    assert not any(group == "*" for group, _ in grants)
    for (group, resource), (verbs, _) in grants.items():
        writes = verbs & {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}
        if (group, resource) == ("", "pods/portforward"):
            continue  # the websocket upgrade is authorized as `create` from Kubernetes 1.35 (see the file)
        assert not writes, f"{resource}: {sorted(writes)}"


def test_the_configmap_kind_is_listed_by_name_only() -> None:
    (configmaps,) = [spec for spec in COLLECTED_KINDS if spec.key == "ConfigMap"]
    assert configmaps.names[0] == "seldon-kafka"
    assert "inferenceservice-config" in configmaps.names and "config-domain" in configmaps.names
    assert configmaps.list_queries() == [[("fieldSelector", f"metadata.name={name}")] for name in configmaps.names]
