"""What a collection could not read, recorded in bundle.yaml so the checks that needed it can say why they skip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Forbidden:
    """A 403: the permission that is missing, in words and as RBAC attributes."""

    permission: str  # "list networkpolicies in namespace x (networking.k8s.io)"
    verb: str
    resource: str  # "networkpolicies", "pods/log", "pods/portforward", "pods/proxy"
    group: str
    namespace: str | None
    kind: str | None  # the kind whose objects are missing (None for logs and Envoy admin)
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "permission": self.permission,
            "verb": self.verb,
            "resource": self.resource,
            "group": self.group,
            "namespace": self.namespace,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass(frozen=True)
class AbsentKind:
    """A 404 on a list path: the API is not served (a CRD that is not installed)."""

    kind: str
    api_version: str
    crd: bool
    path: str

    def to_dict(self) -> dict[str, Any]:
        reason = "CRD not installed" if self.crd else "API not served by this cluster"
        return {"kind": self.kind, "apiVersion": self.api_version, "reason": reason, "path": self.path}


@dataclass(frozen=True)
class FetchError:
    """A log or an Envoy admin document that could not be fetched (the run went on without it)."""

    namespace: str
    pod: str
    what: str  # "config_dump", "stats", or a container name for logs
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pod": self.pod, "what": self.what, "error": self.error}


@dataclass
class Outcome:
    """Everything a collection learned about its own gaps."""

    kinds_listed: list[str] = field(default_factory=list)
    forbidden: list[Forbidden] = field(default_factory=list)
    absent: list[AbsentKind] = field(default_factory=list)
    envoy_errors: list[FetchError] = field(default_factory=list)
    log_errors: list[FetchError] = field(default_factory=list)
    namespaces_not_found: list[str] = field(default_factory=list)
    synthesized_skipped: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per gap, for the CLI."""
        lines = [f"forbidden: {f.permission}" for f in self.forbidden]
        lines += [f"not collected: {a.kind} ({a.api_version}): {a.to_dict()['reason']}" for a in self.absent]
        lines += [f"Envoy admin {e.what} of {e.namespace}/{e.pod}: {e.error}" for e in self.envoy_errors]
        lines += [f"log {e.namespace}/{e.pod}/{e.what}: {e.error}" for e in self.log_errors]
        lines += [f"namespace {n} not found" for n in self.namespaces_not_found]
        return lines
