"""Container logs the checks read, streamed line by line through the redactor into
`logs/<namespace>/<pod>/<container>.log`, and the previous run of each restarted container (its `restartCount` above
0 in the Pod's status) into `logs/<namespace>/<pod>/<container>.previous.log` (`?previous=true`).

Which containers: every container of a Seldon pod (init containers and sidecars too: rclone, agent, MLServer,
gateways, dataflow engine, Envoy, hodometer, scheduler, controller manager), and the components other checks read
outside Seldon: the ingress controller, and KServe's (an InferenceService pod's storage-initializer init container,
queue-proxy, kserve-container and istio-proxy, a transformer's, the KServe controller, Knative's activator and the
Istio ingress gateway, whose istio-proxy writes the access log). A pod is a Seldon pod by its labels (`app.kubernetes.io/name` of a Seldon
component, `app.kubernetes.io/managed-by: seldon-core`, `control-plane: v2-controller-manager`,
`seldon-server-name`), by its owner (a Server or SeldonRuntime, directly or through its StatefulSet or Deployment),
or by the pod names Seldon's Helm charts use.

The three names of that path come from the API: a container whose names are not valid Kubernetes names is skipped
(names.py). Each log is one call, bounded as a whole by `--request-timeout` and by the run's `--timeout`; a log cut
by either is not written (its newest lines would be missing), and is recorded. A previous run is asked for only once
the current log was written, so a bundle never holds a previous run without its current log; one the API server no
longer holds is recorded in `previous_logs_missing`, not as an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.collect.client import ApiStatusError, KubeApi
from mlops_trace.collect.deadline import RunDeadlinePassed
from mlops_trace.collect.names import NameRule, UnsafePathError, bundle_path, name_problem, shown
from mlops_trace.collect.outcome import FetchError, Forbidden, SkippedName
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.redaction import LineRedactor, Redaction
from mlops_trace.snapshot.roles import Role, container_role, pod_role

DEFAULT_TAIL = 10000
WANTED_ROLES = frozenset(
    {
        Role.SCHEDULER,
        Role.CONTROLLER,
        Role.AGENT,
        Role.MLSERVER,
        Role.ENVOY,
        Role.INGRESS,
        Role.MODELGATEWAY,
        Role.PIPELINEGATEWAY,
        Role.DATAFLOW,
        Role.HODOMETER,
        Role.RCLONE,
        Role.KSERVE_CONTROLLER,
        Role.STORAGE_INITIALIZER,
        Role.QUEUE_PROXY,
        Role.KSERVE_CONTAINER,
        Role.TRANSFORMER,
        Role.ISTIO_PROXY,
        Role.ISTIO_GATEWAY,
        Role.ACTIVATOR,
    }
)
# An InferenceService's pods: their init container storage-initializer is read too (it downloads the model).
_KSERVE_POD_ROLES = frozenset({Role.KSERVE_CONTAINER, Role.TRANSFORMER})
_PARALLEL = 8

# `app.kubernetes.io/name` of the pods of Seldon Core v2's components (SeldonRuntime overrides, server pods).
SELDON_COMPONENTS = frozenset(
    {
        "seldon-scheduler",
        "seldon-envoy",
        "seldon-modelgateway",
        "seldon-pipelinegateway",
        "seldon-dataflow-engine",
        "hodometer",
        "seldon-hodometer",
        "seldon-server",
        "seldon-v2-controller-manager",
        "seldon-controller-manager",
    }
)
SELDON_OWNER_KINDS = frozenset({"Server", "SeldonRuntime"})
_SELDON_POD_ROLES = frozenset(
    {
        Role.SCHEDULER,
        Role.CONTROLLER,
        Role.AGENT,
        Role.ENVOY,
        Role.MODELGATEWAY,
        Role.PIPELINEGATEWAY,
        Role.DATAFLOW,
        Role.HODOMETER,
    }
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(value: str | None) -> int | None:
    """`--since` as kubectl takes it (`90s`, `30m`, `1h`, `1h30m`, `2d`) in whole seconds (at least 1)."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isdigit():
        raise UsageError(f"--since needs a unit, e.g. {text}s, {text}m or {text}h (got {value!r})")
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise UsageError(f"--since must be a duration such as 90s, 30m, 1h or 1h30m (got {value!r})")
    if seconds <= 0:
        raise UsageError(f"--since must be above zero (got {value!r})")
    return max(1, int(seconds))


@dataclass(frozen=True)
class LogTarget:
    namespace: str
    pod: str
    container: str
    role: Role
    previous: bool = False  # the previous run of a restarted container (`?previous=true`)

    @property
    def path_parts(self) -> tuple[str, ...]:
        suffix = ".previous.log" if self.previous else ".log"
        return ("logs", self.namespace, self.pod, f"{self.container}{suffix}")

    @property
    def what(self) -> str:
        """The container, as a gap names it: `agent`, or `agent (previous)` for its previous run."""
        return f"{self.container} (previous)" if self.previous else self.container

    @property
    def rel_path(self) -> str:
        return "/".join(self.path_parts)


@dataclass(frozen=True)
class LogResult:
    target: LogTarget
    lines: int
    redactions: tuple[Redaction, ...]
    error: FetchError | None = None
    forbidden: Forbidden | None = None
    deadline: RunDeadlinePassed | None = None  # the run's --timeout passed before this log was read
    missing: FetchError | None = None  # a previous run the API server does not hold (any more)

    @property
    def written(self) -> bool:
        return self.error is None and self.forbidden is None and self.deadline is None and self.missing is None


def log_targets(
    pods: Iterable[Mapping[str, Any]],
    skipped: list[SkippedName] | None = None,
    workloads: Iterable[Mapping[str, Any]] = (),
) -> list[LogTarget]:
    """The containers whose logs the checks read: every container of a Seldon pod, and the containers of the other
    wanted roles (the ingress controller); each restarted one also as its previous run, right after its current log.
    `workloads`: the StatefulSets and Deployments listed, whose owners tell a Server's or SeldonRuntime's pods. A
    container whose namespace, pod or container name is not a valid Kubernetes name is left out and added to
    `skipped`."""
    owners = _workload_owners(workloads)
    targets: list[LogTarget] = []
    for pod in pods:
        metadata = pod.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        if not isinstance(name, str) or not isinstance(namespace, str):
            continue
        raw_labels = metadata.get("labels")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
        seldon = is_seldon_pod(pod, owners)
        restarted = _restarted(pod)
        all_init = seldon or pod_role(name, labels) in _KSERVE_POD_ROLES
        for container in _containers(pod, all_init=all_init):
            role = container_role(name, container, labels)
            if not seldon and role not in WANTED_ROLES:
                continue
            problem = (
                name_problem(namespace, NameRule.LABEL)
                or name_problem(name, NameRule.SUBDOMAIN)
                or name_problem(container, NameRule.LABEL)
            )
            if problem is not None:
                if skipped is not None:
                    where = f"of pod {shown(name)} in namespace {shown(namespace)}"
                    skipped.append(SkippedName(f"the log of container {shown(container)} {where}", problem))
                continue
            targets.append(LogTarget(namespace, name, container, role))
            if container in restarted:
                targets.append(LogTarget(namespace, name, container, role, previous=True))
    return targets


def is_seldon_pod(pod: Mapping[str, Any], workload_owners: Mapping[tuple[str, str, str], frozenset[str]]) -> bool:
    """Whether a pod belongs to Seldon Core v2: by label, by owner (itself, its StatefulSet or its Deployment), or by
    the names Seldon's charts give its pods."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, Mapping):
        return False
    raw_labels = metadata.get("labels")
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
    if labels.get("app.kubernetes.io/name") in SELDON_COMPONENTS:
        return True
    if labels.get("app.kubernetes.io/managed-by") == "seldon-core":
        return True
    if labels.get("control-plane") == "v2-controller-manager" or "seldon-server-name" in labels:
        return True
    namespace = str(metadata.get("namespace") or "")
    for kind, owner in _owners(metadata):
        if kind in SELDON_OWNER_KINDS:
            return True
        workload: tuple[str, str, str] | None = None
        if kind == "StatefulSet":
            workload = ("StatefulSet", namespace, owner)
        elif kind == "ReplicaSet":
            # A Deployment's ReplicaSet is named `<deployment>-<pod-template-hash>`; ReplicaSets are not collected.
            template_hash = labels.get("pod-template-hash", "")
            if template_hash and owner.endswith(f"-{template_hash}"):
                workload = ("Deployment", namespace, owner[: -len(template_hash) - 1])
        if workload is not None and workload_owners.get(workload, frozenset()) & SELDON_OWNER_KINDS:
            return True
    name = metadata.get("name")
    return isinstance(name, str) and pod_role(name, labels) in _SELDON_POD_ROLES


def _owners(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    refs = metadata.get("ownerReferences")
    found: list[tuple[str, str]] = []
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and isinstance(ref.get("kind"), str) and isinstance(ref.get("name"), str):
            found.append((str(ref["kind"]), str(ref["name"])))
    return found


def _workload_owners(workloads: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], frozenset[str]]:
    """(kind, namespace, name) of each StatefulSet/Deployment -> the kinds of its owners."""
    owners: dict[tuple[str, str, str], frozenset[str]] = {}
    for workload in workloads:
        metadata = workload.get("metadata")
        kind = workload.get("kind")
        if not isinstance(metadata, Mapping) or not isinstance(kind, str):
            continue
        key = (kind, str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        owners[key] = frozenset(k for k, _ in _owners(metadata))
    return owners


def _restarted(pod: Mapping[str, Any]) -> set[str]:
    """Containers (init containers too) whose `restartCount` is above 0: they have a previous run to read."""
    status = pod.get("status")
    names: set[str] = set()
    if not isinstance(status, Mapping):
        return names
    for key in ("containerStatuses", "initContainerStatuses"):
        entries = status.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                continue
            count = entry.get("restartCount")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                names.add(str(entry["name"]))
    return names


def _containers(pod: Mapping[str, Any], all_init: bool = False) -> list[str]:
    """Container names from the spec, and from the status when a (hand-written) Pod has no spec. Init containers
    count when they run beside the app (native sidecars, restartPolicy Always), or all of them when `all_init`."""
    names: list[str] = []
    spec = pod.get("spec")
    status = pod.get("status")
    sources: list[tuple[str, Any]] = []
    if isinstance(spec, Mapping):
        sources += [("containers", spec.get("containers")), ("initContainers", spec.get("initContainers"))]
    if isinstance(status, Mapping):
        sources.append(("containerStatuses", status.get("containerStatuses")))
        if all_init:
            sources.append(("initContainerStatuses", status.get("initContainerStatuses")))
    for key, entries in sources:
        for container in entries if isinstance(entries, list) else []:
            if not isinstance(container, Mapping) or not isinstance(container.get("name"), str):
                continue
            if key == "initContainers" and not all_init and container.get("restartPolicy") != "Always":
                continue
            if container["name"] not in names:
                names.append(str(container["name"]))
    return names


def fetch_logs(
    api: KubeApi, targets: list[LogTarget], root: Path, tail: int | None, since_seconds: int | None
) -> list[LogResult]:
    """Fetch every target (a few containers at a time); results come back in target order. A previous run (which
    `log_targets` puts right after its current log) is fetched after its current log, and only once that one is
    written; when it is not, the previous run is left out with it."""
    if not targets:
        return []
    jobs: list[list[LogTarget]] = []
    for target in targets:
        if target.previous and jobs and jobs[-1][0].container == target.container and jobs[-1][0].pod == target.pod:
            jobs[-1].append(target)
        else:
            jobs.append([target])
    workers = min(_PARALLEL, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-trace-logs") as pool:
        futures = [pool.submit(_fetch_job, api, job, root, tail, since_seconds) for job in jobs]
        return [result for future in futures for result in future.result()]


def _fetch_job(
    api: KubeApi, job: list[LogTarget], root: Path, tail: int | None, since_seconds: int | None
) -> list[LogResult]:
    results: list[LogResult] = []
    for target in job:
        if results and not results[0].written:
            break
        results.append(_fetch_one(api, target, root, tail, since_seconds))
    return results


def _fetch_one(api: KubeApi, target: LogTarget, root: Path, tail: int | None, since_seconds: int | None) -> LogResult:
    query: list[tuple[str, str | int]] = [("container", target.container)]
    limit = DEFAULT_TAIL if tail is None else tail
    if limit >= 0:
        query.append(("tailLines", limit))
    if since_seconds is not None:
        query.append(("sinceSeconds", since_seconds))
    if target.previous:
        query.append(("previous", "true"))
    path = f"/api/v1/namespaces/{target.namespace}/pods/{target.pod}/log"
    try:
        out_path = bundle_path(root, *target.path_parts)
    except UnsafePathError as exc:
        return LogResult(target, 0, (), error=FetchError(target.namespace, target.pod, target.what, str(exc)))
    part_path = out_path.with_name(out_path.name + ".part")
    redactor = LineRedactor()
    count = 0
    try:
        part_path.parent.mkdir(parents=True, exist_ok=True)
        with part_path.open("w", encoding="utf-8", newline="") as handle:
            for raw in api.stream_lines(path, query):
                count += 1
                handle.write(redactor.line(count, raw.decode("utf-8", "replace")))
        part_path.replace(out_path)
    except ApiStatusError as exc:
        part_path.unlink(missing_ok=True)
        if exc.status == 403:
            forbidden = Forbidden(
                permission=f"get pods/log in namespace {target.namespace} (core)",
                verb="get",
                resource="pods/log",
                group="",
                namespace=target.namespace,
                kind=None,
                message=exc.message,
            )
            return LogResult(target, 0, (), forbidden=forbidden)
        if target.previous and exc.status in (400, 404):
            # `previous terminated container "x" in pod "y" not found` (400): the kubelet no longer holds it.
            missing = FetchError(target.namespace, target.pod, target.what, f"HTTP {exc.status}: {exc.message}")
            return LogResult(target, 0, (), missing=missing)
        error = FetchError(target.namespace, target.pod, target.what, f"HTTP {exc.status}: {exc.message}")
        return LogResult(target, 0, (), error=error)
    except RunDeadlinePassed as exc:
        part_path.unlink(missing_ok=True)
        return LogResult(target, 0, (), deadline=exc)
    except ClusterError as exc:
        part_path.unlink(missing_ok=True)
        return LogResult(target, 0, (), error=FetchError(target.namespace, target.pod, target.what, str(exc)))
    return LogResult(target, count, tuple(redactor.redactions))
