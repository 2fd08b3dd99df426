"""The API resources a served bundle exposes: the registry's served kinds, and any other kind the bundle holds.

Kinds the registry (`mlops_trace.kinds`) knows are served with their real plural and short names; any other kind
found in a bundle is exposed under its own apiVersion with a derived plural, so custom resources a user saved with
kubectl are served too. Secrets never are.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlops_trace.kinds import NEVER_SERVED, SERVED_KINDS, KindSpec


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
        """`extra`: (apiVersion, kind key) pairs found in a bundle, added when not already well known (the key of a
        kind the registry does not know is its bare name)."""
        resources = list(SERVED_KINDS)
        known_keys = {spec.key for spec in resources}
        for api_version, kind in sorted(set(extra)):
            if kind in known_keys or kind in NEVER_SERVED or not api_version:
                continue
            group, _, version = api_version.rpartition("/")
            resources.append(KindSpec(kind, group, version, plural_of(kind), namespaced=True))
            known_keys.add(kind)
        self.resources = tuple(resources)
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_key = {r.key: r for r in resources}

    def lookup(self, group: str, version: str, plural: str) -> KindSpec | None:
        return self._by_path.get((group, version, plural))

    def for_kind(self, key: str) -> KindSpec | None:
        """The resource of a kind key (`Service`, `Service.serving.knative.dev`)."""
        return self._by_key.get(key)

    def group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return groups
