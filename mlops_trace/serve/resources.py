"""The API resources a served bundle exposes: group, version, plural, kind, and whether they are namespaced.

Well-known kinds are listed with their real plural and short names; any other kind found in a bundle is exposed under
its own apiVersion with a derived plural, so custom resources a user saved with kubectl are served too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


WELL_KNOWN: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Resource("", "v1", "nodes", "Node", False, ("no",)),
    Resource("", "v1", "pods", "Pod", True, ("po",)),
    Resource("", "v1", "services", "Service", True, ("svc",)),
    Resource("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",)),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",)),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, ()),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, ()),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    Resource("mlops.seldon.io", "v1alpha1", "models", "Model", True, ("mlm",)),
    Resource("mlops.seldon.io", "v1alpha1", "servers", "Server", True, ("mls",)),
    Resource("mlops.seldon.io", "v1alpha1", "experiments", "Experiment", True, ("mlx",)),
    Resource("mlops.seldon.io", "v1alpha1", "pipelines", "Pipeline", True, ("mlp",)),
    Resource("mlops.seldon.io", "v1alpha1", "seldonruntimes", "SeldonRuntime", True, ()),
    Resource("mlops.seldon.io", "v1alpha1", "seldonconfigs", "SeldonConfig", True, ()),
    Resource("mlops.seldon.io", "v1alpha1", "serverconfigs", "ServerConfig", True, ("mlc",)),
    Resource("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool", True, ()),
    Resource("metallb.io", "v1beta1", "l2advertisements", "L2Advertisement", True, ()),
)

# Secrets are never served nor collected: a bundle must not carry them, and a served bundle must not look like it does.
NEVER_SERVED = frozenset({"Secret"})


def plural_of(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"  # ingress → ingresses, class → classes
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy")):
        return lower[:-1] + "ies"
    return lower + "s"


class ResourceTable:
    """Look-ups by (group, version, plural) and by kind."""

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        """`extra`: (apiVersion, kind) pairs found in a bundle, added when not already well known."""
        resources = list(WELL_KNOWN)
        known_kinds = {r.kind for r in resources}
        for api_version, kind in sorted(set(extra)):
            if kind in known_kinds or kind in NEVER_SERVED or not api_version:
                continue
            group, _, version = api_version.rpartition("/")
            resources.append(Resource(group, version, plural_of(kind), kind, True))
            known_kinds.add(kind)
        self.resources = tuple(resources)
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_kind = {r.kind: r for r in resources}

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def for_kind(self, kind: str) -> Resource | None:
        return self._by_kind.get(kind)

    def group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return groups
