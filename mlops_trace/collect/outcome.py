"""What a collection could not read, recorded in bundle.yaml so the checks that needed it can say why they skip.

`forbidden` (403s) and `absent_kinds` (404s) name kinds; `not_collected` names the inputs checks declare
(`kube:Pod`, `logs:scheduler`, `envoy:config_dump`) with the reason each could not be read: the run's `--timeout`
passed, a call timed out, a log or an Envoy admin could not be read, or the pod list they come from was not read.
"""

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


@dataclass(frozen=True)
class NotCollected:
    """An input a check may declare that this collection did not read (or read only in part), and why."""

    requirement: str  # as checks declare it: "kube:Pod", "logs:scheduler", "envoy:config_dump"
    reason: str  # the whole skip reason: "not collected: the live run's --timeout of 300 s passed"
    namespace: str | None = None
    pod: str | None = None
    what: str | None = None  # a container, or "config_dump" / "stats"
    by_deadline: bool = False  # cut by the run's --timeout (these get one summary warning, not one line each)

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"requirement": self.requirement, "reason": self.reason}
        for key, value in (("namespace", self.namespace), ("pod", self.pod), ("what", self.what)):
            if value is not None:
                entry[key] = value
        return entry


@dataclass(frozen=True)
class SkippedName:
    """An object, pod or container the API returned under a name that is not a valid Kubernetes name: nothing of it
    is written, since the name would become a path of the bundle."""

    what: str  # "Pod 'x' in namespace 'y'", "container '../x' of pod y/z"
    problem: str  # "contains a path separator"

    def describe(self) -> str:
        return f"skipped {self.what}: the API returned a name that is not a valid Kubernetes name ({self.problem})"


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
    not_collected: list[NotCollected] = field(default_factory=list)
    skipped_names: list[SkippedName] = field(default_factory=list)
    # "Event/<namespace>": objects listed but left out by a kind's bound (`keep_newest`), the oldest ones.
    objects_dropped: dict[str, int] = field(default_factory=dict)
    # Previous runs of restarted containers the API server no longer holds (the kubelet keeps one): not an error.
    previous_logs_missing: list[FetchError] = field(default_factory=list)
    deadline_passed: str | None = None  # "the live run's --timeout of 300 s passed", once it has

    def add_not_collected(self, entry: NotCollected) -> None:
        if entry not in self.not_collected:
            self.not_collected.append(entry)

    def notices(self) -> list[str]:
        """The gaps no skip reason explains: names left out, and the run's --timeout passing (one line)."""
        lines = [s.describe() for s in self.skipped_names]
        if self.deadline_passed is not None:
            lines.append(self._deadline_summary(self.deadline_passed))
        return lines

    def warnings(self) -> list[str]:
        """One line per gap, for the CLI."""
        lines = self.notices()
        lines += [f"forbidden: {f.permission}" for f in self.forbidden]
        lines += [f"not collected: {a.kind} ({a.api_version}): {a.to_dict()['reason']}" for a in self.absent]
        lines += [
            f"{n.requirement.partition(':')[2]} objects: {n.reason}"
            for n in self.not_collected
            if n.requirement.startswith("kube:") and not n.by_deadline
        ]
        lines += [f"Envoy admin {e.what} of {e.namespace}/{e.pod}: {e.error}" for e in self.envoy_errors]
        lines += [f"log {e.namespace}/{e.pod}/{e.what}: {e.error}" for e in self.log_errors]
        lines += [f"namespace {n} not found" for n in self.namespaces_not_found]
        return lines

    def _deadline_summary(self, passed: str) -> str:
        cut = [n for n in self.not_collected if n.by_deadline]
        kinds = sorted({n.requirement.partition(":")[2] for n in cut if n.requirement.startswith("kube:")})
        logs = len({(n.namespace, n.pod, n.what) for n in cut if n.requirement.startswith("logs:") and n.pod})
        envoys = len({(n.namespace, n.pod) for n in cut if n.requirement.startswith("envoy:") and n.pod})
        parts = [f"{len(kinds)} kinds ({', '.join(kinds)})"] if kinds else []
        parts += [f"{logs} container logs"] if logs else []
        parts += [f"{envoys} Envoy admins"] if envoys else []
        return f"{passed}: not collected: {', '.join(parts) or 'the rest'}"
