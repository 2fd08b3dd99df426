"""The Snapshot a check reads: Kubernetes objects, container logs, Envoy admin data and recorded requests.

One interface, whatever the backing: `bundle.load_bundle` fills it from a directory or tarball, and the live
collectors write a bundle first, so a check sees the same Snapshot from a cluster and from an old tarball.
Logs are not loaded: `LogSource.lines()` streams them from disk each time a check asks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_trace.findings import InputProblem
from mlops_trace.kinds import SELDON_NAMESPACE_KINDS, kind_for_file_stem
from mlops_trace.limits import DEFAULT_LIMITS, human_size
from mlops_trace.parsers.logs import Needles, lines_mentioning, read_line_pieces
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.prometheus import PrometheusData
from mlops_trace.snapshot.roles import Role

if TYPE_CHECKING:
    from mlops_trace.parsers.envoy_config import EnvoyConfig
    from mlops_trace.parsers.envoy_stats import EnvoyStats

SELDON_KINDS = SELDON_NAMESPACE_KINDS  # Model, Server, Experiment, Pipeline, SeldonRuntime


class Existence(StrEnum):
    """What the snapshot proves about one object: there, not there, or not known (it was not collected)."""

    PRESENT = "present"
    ABSENT = "absent"  # proved: its kind was collected where it would be, or its namespace does not exist
    UNKNOWN = "unknown"  # not collected: its absence from the bundle says nothing


@dataclass(frozen=True)
class LogSource:
    """One container log of the bundle: `logs/<namespace>/<pod>/<container>.log`.

    A line longer than `max_line_chars` characters is read in pieces of that many, each with the line's number; the
    first such line is named once in `problems` (the Snapshot's, when the bundle loader passes it).

    The previous run of a restarted container (`<container>.previous.log`, `kubectl logs -p`) is its own LogSource
    (`previous=True`, same `container`), reached only through the current log's `previous_run`: the Snapshot's logs
    and accessors hold current runs only, so a check never counts one run twice unless it asks for `previous_run`."""

    namespace: str
    pod: str
    container: str
    role: Role
    path: Path
    display: str  # path relative to the bundle root, used in evidence
    max_line_chars: int = DEFAULT_LIMITS.line_chars
    problems: list[InputProblem] | None = field(default=None, compare=False, repr=False)
    previous: bool = False  # this is the previous run of the container (`<container>.previous.log`)
    previous_run: LogSource | None = field(default=None, compare=False, repr=False)  # on a current log, if any

    def lines(self) -> Iterator[tuple[int, str]]:
        """(1-based line number, line without newline), streamed from disk; a long line as several pieces."""
        with self.path.open("r", encoding="utf-8", errors="replace") as handle:
            yield from read_line_pieces(handle, self.max_line_chars, on_long_line=self._note_long_line)

    def lines_mentioning(self, needles: Iterable[str] | Needles) -> Iterator[tuple[int, str]]:
        """The lines (or pieces) of `lines()` that may mention one of `needles`, found fast (see
        `parsers.logs.lines_mentioning`)."""
        return lines_mentioning(
            self.path, needles, max_line_chars=self.max_line_chars, on_long_line=self._note_long_line
        )

    def where(self, lineno: int) -> str:
        return f"{self.display}:{lineno}"

    def _note_long_line(self, lineno: int) -> None:
        # Every reader meets the same first long line, so an equal problem means this file is already named.
        limit = human_size(self.max_line_chars)
        if limit.endswith(" B"):  # the limit counts characters, not bytes
            limit = f"{self.max_line_chars} characters"
        problem = InputProblem(
            self.display, f"line {lineno} is longer than {limit} (limit line-chars): read in pieces of {limit}"
        )
        if self.problems is not None and problem not in self.problems:
            self.problems.append(problem)


@dataclass(frozen=True)
class EnvoySource:
    """Admin output of one Envoy pod: `envoy/<namespace>/<pod>/config_dump.json` (+ stats.txt, access.log)."""

    namespace: str
    pod: str
    config: EnvoyConfig | None
    config_display: str | None
    stats: EnvoyStats | None
    stats_display: str | None
    access_log: LogSource | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request a probe (or a user with curl) recorded under `requests/`, with what came back."""

    display: str
    method: str
    path: str
    authority: str | None
    headers: Mapping[str, str]  # lower-case names
    protocol: str  # "rest" or "grpc"
    status: int | None
    response_headers: Mapping[str, str]
    body: str
    grpc_status: str | None = None
    namespace: str | None = None  # the namespace the request was aimed at, when the sender knew it
    envoy_flags: tuple[str, ...] = ()  # Envoy's response flags for it (`NR`, `NC`, `UH`…), from its access line
    request_id: str | None = None  # its `x-request-id`: the access lines of the same request say less than it
    grpc_message: str | None = None  # the gRPC status message (`Received message larger than max (…)`)
    duration_ms: float | None = None  # how long the sender waited for the answer (or gave up), when it says


@dataclass
class BundleMetadata:
    source: str = ""
    collected_at: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    kinds: tuple[str, ...] = ()  # kinds the collector asked for, when it says so
    # Kinds a hand-written bundle shows as collected-but-empty: `kubectl get netpol -A -o yaml > kube/netpol.yaml`
    # on a cluster with none gives an empty List, known by its file name. Value: namespace scope (None = all).
    empty_kinds: dict[str, str | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Snapshot:
    source: str
    root: Path | None = None  # the bundle directory on disk (a tarball's unpacked copy), when there is one
    objects: list[KubeObject] = field(default_factory=list)
    logs: list[LogSource] = field(default_factory=list)
    envoys: list[EnvoySource] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    metadata: BundleMetadata = field(default_factory=BundleMetadata)
    prometheus: PrometheusData | None = None  # query results (`prometheus/*.json`, or queried live)
    _by_kind: dict[str, list[KubeObject]] = field(default_factory=dict, repr=False)
    _by_key: dict[tuple[str, str | None, str], KubeObject] = field(default_factory=dict, repr=False)

    def attach_prometheus(self, data: PrometheusData | None) -> None:
        """Put Prometheus query results into the Snapshot; their unreadable files become its input problems."""
        if data is None:
            return
        self.prometheus = data
        self.problems.extend(data.problems)

    def add_objects(self, objects: Iterable[KubeObject]) -> None:
        for obj in objects:
            key = (obj.kind, obj.namespace, obj.name)
            if key in self._by_key:
                # The same object collected twice (e.g. `get all` and `get pods`): keep the first.
                continue
            self._by_key[key] = obj
            self.objects.append(obj)
            self._by_kind.setdefault(obj.kind, []).append(obj)

    # --- objects -------------------------------------------------------------------------------------------------

    def objects_of(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        found = self._by_kind.get(kind, [])
        if namespace is None:
            return list(found)
        return [o for o in found if o.namespace == namespace]

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        return self._by_key.get((kind, namespace, name))

    def has_kind(self, kind: str) -> bool:
        return bool(self._by_kind.get(kind))

    def namespaces(self) -> list[str]:
        """Every namespace the snapshot mentions (objects, logs, Envoy data), sorted."""
        names = {o.namespace for o in self.objects if o.namespace}
        names |= {o.name for o in self.objects_of("Namespace")}
        names |= {log.namespace for log in self.logs}
        names |= {env.namespace for env in self.envoys}
        return sorted(names)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """Labels of a Namespace; `kubernetes.io/metadata.name` is always there, as the API server sets it."""
        labels = {"kubernetes.io/metadata.name": namespace}
        ns = self.get("Namespace", None, namespace)
        if ns is not None:
            labels.update(ns.labels)
        return labels

    def seldon_namespaces(self) -> list[str]:
        """Namespaces that hold Seldon resources (Model, Server, Experiment, Pipeline, SeldonRuntime)."""
        names = {o.namespace for kind in SELDON_KINDS for o in self.objects_of(kind) if o.namespace}
        return sorted(names)

    def covers(self, kind: str, namespace: str | None) -> bool:
        """Whether objects of `kind` in `namespace` were collected, so that their absence means they do not exist.

        A bundle written by hand may hold Services of one namespace only; we only treat a missing object as missing
        when the bundle says it collected that kind there, or holds some object of that kind in that namespace.
        """
        if kind in _kinds_by_name(self.metadata):
            return False  # collected by name only (ConfigMap `seldon-kafka`): the others were never asked for
        if self.objects_of(kind, namespace) if namespace is not None else self.has_kind(kind):
            return True
        meta = self.metadata
        if kind in meta.empty_kinds:
            scope = meta.empty_kinds[kind]
            if scope is None or namespace is None or scope == namespace:
                return True
        kind_collected = kind in meta.kinds if meta.kinds else self.has_kind(kind)
        if not kind_collected:
            return False
        if namespace is None or meta.all_namespaces:
            return True
        return namespace in meta.namespaces

    def existence(self, kind: str, namespace: str | None, name: str) -> Existence:
        """Whether object `kind` `namespace`/`name` exists, as far as the snapshot proves.

        PRESENT when it is in the snapshot; ABSENT when the kind was collected where it would be (`covers`), or when
        its namespace does not exist (`namespace_exists`: nothing namespaced can exist there, collected or not);
        UNKNOWN otherwise."""
        if self.get(kind, namespace, name) is not None:
            return Existence.PRESENT
        if kind == "Namespace" and namespace is None:
            return self.namespace_exists(name)
        if namespace is not None and self.namespace_exists(namespace) is Existence.ABSENT:
            return Existence.ABSENT
        return Existence.ABSENT if self.covers(kind, namespace) else Existence.UNKNOWN

    def namespace_exists(self, namespace: str) -> Existence:
        """Whether a namespace exists. PRESENT when the snapshot holds its Namespace or anything in it; ABSENT when
        the snapshot holds the cluster's whole Namespace list (`namespace_list_complete`) without it, or when a
        collector that looked each named namespace up (`bundle.yaml` `namespaces` and `kinds: [Namespace, …]`)
        did not find it; UNKNOWN otherwise. `bundle.yaml`'s `namespaces` alone says what was collected, not what
        exists."""
        if self.get("Namespace", None, namespace) is not None or namespace in self.namespaces():
            return Existence.PRESENT
        if self.namespace_list_complete():
            return Existence.ABSENT
        meta = self.metadata
        if "Namespace" in meta.kinds and not meta.all_namespaces and namespace in meta.namespaces:
            return Existence.ABSENT
        return Existence.UNKNOWN

    def namespace_list_complete(self) -> bool:
        """Whether the snapshot holds every Namespace of the cluster, so a name missing from it does not exist.

        A collector's bundle says so: `kinds` names Namespace and `namespaces: all` (under `-n` it looks up only the
        named namespaces). A hand-written bundle says so with the list `kubectl get namespaces -o yaml` writes, in a
        file named for the kind (`kube/namespaces.yaml`, `kube/ns.json`): a single Namespace saved beside a
        namespace's objects does not count. An empty Namespace list proves nothing (a cluster always has some: an
        empty file is more likely a failed command than a fact)."""
        objects = self.objects_of("Namespace")
        if not objects:
            return False
        meta = self.metadata
        if "Namespace" in meta.kinds:
            if meta.all_namespaces:
                return True
            # A scoped collector writes only the namespaces it was named; more than those is a whole list.
            if not {o.name for o in objects} - set(meta.namespaces):
                return False
        return all(_from_file_named_for(obj, "Namespace") for obj in objects)

    # --- logs ----------------------------------------------------------------------------------------------------

    def logs_of(self, role: Role, namespace: str | None = None) -> list[LogSource]:
        return [log for log in self.logs if log.role is role and (namespace is None or log.namespace == namespace)]

    def logs_by_pod(self, namespace: str, pod: str) -> list[LogSource]:
        return [log for log in self.logs if log.namespace == namespace and log.pod == pod]

    # --- envoy ---------------------------------------------------------------------------------------------------

    def envoy_configs(self, namespace: str | None = None) -> list[EnvoySource]:
        """Envoy dumps with some routing in them (one with none is an input problem, never loaded); a dump that
        lacks routes or clusters is named as an input problem, and the checks that need clusters look for them."""
        return [e for e in self.envoys if e.config is not None and (namespace is None or e.namespace == namespace)]

    # --- requirements --------------------------------------------------------------------------------------------

    def has(self, requirement: str) -> bool:
        """Whether an input a check declares in `requires` is present. `a|b` means either."""
        if "|" in requirement:
            return any(self.has(part.strip()) for part in requirement.split("|"))
        family, _, name = requirement.partition(":")
        if family == "kube":
            # A kind that was collected and found empty is present as an input: "none exist" is an answer.
            return self.has_kind(name) or name in self.metadata.empty_kinds or name in self.metadata.kinds
        if family == "logs":
            return bool(self.logs_of(Role(name)))
        if family == "envoy":
            if name == "config_dump":
                return bool(self.envoy_configs())
            if name == "stats":
                return any(e.stats is not None for e in self.envoys)
            if name == "access":
                return any(e.access_log is not None for e in self.envoys) or bool(self.logs_of(Role.ENVOY))
        if family == "requests":
            return bool(self.requests)
        if family == "prometheus":
            return self.prometheus is not None and bool(self.prometheus.results)
        raise ValueError(f"unknown requirement {requirement!r}")

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for obj in self.objects:
            counts[obj.kind] += 1
        return dict(sorted(counts.items()))


def _from_file_named_for(obj: KubeObject, kind: str) -> bool:
    """Whether an object was read from a file whose name names its kind (`namespaces.yaml` for Namespace), the way
    `kubectl get <plural> -o yaml > kube/<plural>.yaml` writes a kind's whole list."""
    file_name = obj.source.partition("#")[0].rsplit("/", 1)[-1]
    stem, _, suffix = file_name.rpartition(".")
    spec = kind_for_file_stem(stem if suffix in ("yaml", "yml", "json") else file_name)
    return spec is not None and spec.key == kind


def _kinds_by_name(meta: BundleMetadata) -> dict[str, Any]:
    """`bundle.yaml` `kinds_by_name`: kinds a collector listed by name only (`{ConfigMap: [seldon-kafka]}`)."""
    by_name = meta.extra.get("kinds_by_name")
    return by_name if isinstance(by_name, dict) else {}


def missing_reason(snap: Snapshot, requirement: str) -> str:
    """Why a requirement is not met: forbidden by RBAC (when the collector recorded it), else not in the input."""
    parts = [part.strip() for part in requirement.split("|")]
    forbidden: dict[str, list[str]] = {}
    for entry in snap.metadata.extra.get("forbidden") or []:
        if isinstance(entry, dict) and entry.get("kind"):
            forbidden.setdefault(str(entry.get("kind")), []).append(str(entry.get("permission") or ""))
    denied = [
        permission
        for p in parts
        if p.startswith("kube:")
        for permission in forbidden.get(p.partition(":")[2], [])
    ]
    if denied:
        return "forbidden: missing permission to " + "; ".join(sorted(set(denied)))
    # A live run that ran out of time (or was refused the pods) says what it did not collect, and why.
    not_collected = [
        entry["reason"]
        for entry in snap.metadata.extra.get("not_collected") or []
        if isinstance(entry, dict) and entry.get("requirement") in parts and isinstance(entry.get("reason"), str)
    ]
    if not_collected:
        return "; ".join(list(dict.fromkeys(not_collected))[:3])
    return "needs " + describe_requirement(requirement) + ": not in the input"


def describe_requirement(requirement: str) -> str:
    """Words for a missing input, used in `skip` reasons."""
    if "|" in requirement:
        return " or ".join(describe_requirement(part.strip()) for part in requirement.split("|"))
    family, _, name = requirement.partition(":")
    if family == "kube":
        return f"{name} objects (kube/)"
    if family == "logs":
        return f"{name} logs (logs/<namespace>/<pod>/<container>.log)"
    if family == "envoy" and name == "config_dump":
        return "an Envoy config_dump (envoy/<namespace>/<pod>/config_dump.json)"
    if family == "envoy" and name == "stats":
        return "Envoy stats (envoy/<namespace>/<pod>/stats.txt)"
    if family == "envoy" and name == "access":
        return "Envoy access logs"
    if family == "requests":
        return "recorded requests (requests/*.json)"
    if family == "prometheus":
        return "Prometheus query results (prometheus/*.json, or --prometheus URL)"
    return requirement
