"""`collect`: read a live cluster into a redacted bundle in the DESIGN.md format (a directory or a .tar.gz).

Layout written: `kube/<plural>.yaml` (one `kind: List` per kind; `kube/<plural>.<group>.yaml` for a kind whose name
another group uses too, e.g. Knative's `kube/services.serving.knative.dev.yaml`), `logs/<ns>/<pod>/<container>.log` (and
`<container>.previous.log` for a restarted container), `envoy/<ns>/<pod>/config_dump.json|stats.txt`, `bundle.yaml`
(what was read, from where, and what could not be: `kinds`, `absent_kinds`, `forbidden`, `not_collected`,
`skipped_names`, `envoy_errors`, `log_errors`, `previous_logs_missing`, `bounded`) and
`redaction-report.yaml` (what was masked, where, how long; never the values). Secrets are never collected; objects a
served bundle synthesized (`mlops-trace.io/synthesized: "true"`) are left out, their logs are kept.

Names from the API become paths only through names.py: an object, pod or container whose name is not a valid
Kubernetes name is skipped with a warning, and every path is checked to stay inside the bundle. The run is bounded
by `--request-timeout` per call and `--timeout` in all (deadline.py); what was not read in time is recorded, and a
run that read nothing at all in time is a `ClusterError`.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_trace import __version__
from mlops_trace.collect.client import ApiStatusError, KubeApi, connect
from mlops_trace.collect.deadline import Clock, RunDeadlinePassed
from mlops_trace.collect.envoy import DOCUMENTS, assign_urls, envoy_pods, fetch_envoy, parse_admin_urls
from mlops_trace.collect.logs import DEFAULT_TAIL, WANTED_ROLES, fetch_logs, log_targets, parse_since
from mlops_trace.collect.names import NameRule, UnsafePathError, bundle_path, name_problem, shown
from mlops_trace.collect.objects import KindObjects, collect_objects
from mlops_trace.collect.outcome import FetchError, NotCollected, Outcome, SkippedName
from mlops_trace.errors import ClusterError, InputError, UsageError
from mlops_trace.kinds import (
    COLLECTED_KINDS,
    EVENTS_PER_NAMESPACE,
    NAMESPACE_KIND,
    NEVER_COLLECTED,
    SYNTHESIZED_ANNOTATION,
)
from mlops_trace.redaction import Redaction, RedactionReport, redact_lines, redact_object

if TYPE_CHECKING:
    from mlops_trace.collect.target import LiveTarget

TARBALL_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class CollectResult:
    """What one collection wrote (counts for the summary line) and the gaps it recorded."""

    root: Path
    source: str  # "context kind-x (https://127.0.0.1:6443)"
    objects: int
    kinds: int
    logs: int
    envoys: int
    redacted: int
    warnings: tuple[str, ...]
    notices: tuple[str, ...] = ()  # the warnings no check's skip reason repeats (names left out, --timeout passed)

    def to_dict(self, where: str) -> dict[str, object]:
        return {
            "bundle": where,
            "source": self.source,
            "objects": self.objects,
            "kinds": self.kinds,
            "logs": self.logs,
            "envoy_admin_dumps": self.envoys,
            "redacted_values": self.redacted,
            "warnings": list(self.warnings),
        }

    def describe(self, where: str) -> str:
        return (
            f"wrote {where}: {self.objects} objects of {self.kinds} kinds, {self.logs} container logs, "
            f"{self.envoys} Envoy admin dumps, {self.redacted} values redacted ({self.source})"
        )


def collect_bundle(target: LiveTarget, output: Path) -> CollectResult:
    """Collect into `output`: a `.tar.gz`/`.tgz` file, or a directory that does not exist yet or is empty."""
    tarball = output.name.endswith(TARBALL_SUFFIXES)
    if not tarball and output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(f"{output}: exists and is not an empty directory (give a new directory or a .tar.gz)")
    parent = output.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{output}: the directory {parent} does not exist")
    try:
        work = Path(tempfile.mkdtemp(prefix=".mlops-trace-collect-", dir=parent))
    except OSError as exc:
        raise InputError(f"{output}: cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        stem = _stem(output.name) if tarball else output.name
        root = work / stem
        root.mkdir()
        result = collect_to_dir(target, root)
        if tarball:
            part = work / (output.name + ".part")
            with tarfile.open(part, "w:gz") as archive:
                archive.add(root, arcname=stem)
            os.replace(part, output)
        else:
            if output.exists():
                output.rmdir()
            os.replace(root, output)
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _stem(name: str) -> str:
    for suffix in TARBALL_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or "bundle"
    return name


def collect_to_dir(target: LiveTarget, root: Path) -> CollectResult:
    """Collect into the existing empty directory `root`."""
    namespaces = _namespaces(target)
    since_seconds = parse_since(target.since)
    admin_urls = parse_admin_urls(target.envoy_admin)
    clock = Clock.start(target.request_timeout, target.deadline)
    api = connect(target.kubeconfig, target.context, clock)
    try:
        server_version = _server_version(api)
    except RunDeadlinePassed as exc:
        raise ClusterError(f"{exc} before anything was collected from {_cluster(api)}") from None
    outcome = Outcome()
    report = RedactionReport()
    kinds = collect_objects(api, namespaces, target.all_namespaces, outcome)
    _check_namespaces(api, namespaces, kinds, outcome)
    _skip_unsafe_names(kinds, outcome)
    _note_pods_gap(outcome)
    pods = next((k.items for k in kinds if k.spec.key == "Pod"), [])

    objects = _write_kube(root, kinds, outcome, report)
    workloads = [item for k in kinds if k.spec.kind in ("StatefulSet", "Deployment") for item in k.items]
    logs_written = _write_logs(api, root, pods, workloads, target, since_seconds, outcome, report)
    envoy_written, envoy_via = _write_envoy(api, root, pods, admin_urls, outcome, report)
    if not (objects or logs_written or envoy_written or outcome.forbidden):
        _nothing_in_time(api, outcome)

    (root / "redaction-report.yaml").write_text(_yaml(report.to_dict()), encoding="utf-8")
    source = f"context {api.connection.context} ({api.connection.server})"
    metadata = _metadata(target, api, server_version, namespaces, outcome, envoy_via, since_seconds, report)
    (root / "bundle.yaml").write_text(_yaml(metadata), encoding="utf-8")
    return CollectResult(
        root=root,
        source=source,
        objects=objects,
        kinds=sum(1 for k in kinds if _written(k)),
        logs=logs_written,
        envoys=envoy_written,
        redacted=report.total,
        warnings=tuple(outcome.warnings()),
        notices=tuple(outcome.notices()),
    )


def _cluster(api: KubeApi) -> str:
    return f"the Kubernetes API server {api.connection.server} (context {api.connection.context})"


def _nothing_in_time(api: KubeApi, outcome: Outcome) -> None:
    """Nothing was read and nothing refused: when time ran out, say so in one line rather than write an empty
    bundle (a cluster that refused everything still gives a bundle: each check then names the permission)."""
    if outcome.deadline_passed is not None:
        raise ClusterError(f"{outcome.deadline_passed} before anything was collected from {_cluster(api)}")
    timed_out = [n.reason for n in outcome.not_collected if n.requirement.startswith("kube:")]
    if timed_out:
        first = timed_out[0].removeprefix("not collected: ")
        raise ClusterError(f"nothing was collected from {_cluster(api)}: {first}")


def _namespaces(target: LiveTarget) -> list[str]:
    if target.all_namespaces and target.namespaces:
        raise UsageError("-n and -A do not go together: name namespaces, or take them all")
    if not target.all_namespaces and not target.namespaces:
        raise UsageError("say what to read: -n NAMESPACE (repeatable) or -A")
    unique: list[str] = []
    for name in target.namespaces:
        problem = name_problem(name, NameRule.LABEL)
        if problem is not None:
            raise UsageError(f"-n {shown(name)}: not a namespace name ({problem})")
        if name not in unique:
            unique.append(name)
    return unique


def _server_version(api: KubeApi) -> str | None:
    """`/version` first: cheap, open to every authenticated user, and it fails fast when the server is not there."""
    try:
        data = api.get_json("/version")
    except ApiStatusError:
        return None
    version = data.get("gitVersion")
    return str(version) if version else None


def _check_namespaces(api: KubeApi, namespaces: list[str], kinds: list[KindObjects], outcome: Outcome) -> None:
    """A named namespace that does not exist and holds nothing is a typo: stop rather than report a clean run."""
    if not outcome.namespaces_not_found:
        return
    holding = {_namespace_of(item) for k in kinds for item in k.items}
    outcome.namespaces_not_found = [n for n in outcome.namespaces_not_found if n not in holding]
    if outcome.namespaces_not_found:
        missing = ", ".join(outcome.namespaces_not_found)
        raise UsageError(f"namespace {missing} not found (context {api.connection.context}, {api.connection.server})")


def _skip_unsafe_names(kinds: list[KindObjects], outcome: Outcome) -> None:
    """Leave out every object whose namespace or name is not a valid Kubernetes name (a real API server never
    returns one): its name would reach the paths of the bundle (a pod's logs and Envoy dumps), or the reader would
    take it for another object."""
    for collected in kinds:
        rule = NameRule.LABEL if collected.spec is NAMESPACE_KIND else NameRule.SUBDOMAIN
        kept: list[dict[str, Any]] = []
        for item in collected.items:
            metadata = item.get("metadata")
            metadata = metadata if isinstance(metadata, Mapping) else {}
            name, namespace = metadata.get("name"), metadata.get("namespace")
            problem = name_problem(name, rule)
            if problem is None and namespace is not None:
                problem = name_problem(namespace, NameRule.LABEL)
            if problem is None:
                kept.append(item)
                continue
            where = f" in namespace {shown(namespace)}" if namespace is not None else ""
            outcome.skipped_names.append(SkippedName(f"{collected.spec.key} {shown(name)}{where}", problem))
        collected.items = kept


def _note_pods_gap(outcome: Outcome) -> None:
    """Logs and Envoy admin data are found through the pods: when the pods were not (all) listed, the checks that
    need them say why rather than "not in the input"."""
    if "Pod" in outcome.kinds_listed:
        return
    denied = [f.permission for f in outcome.forbidden if f.kind == "Pod"]
    cut = [n for n in outcome.not_collected if n.requirement == "kube:Pod"]
    if denied:
        reason = f"not collected: the pods were not listed (forbidden: missing permission to {'; '.join(denied)})"
    elif cut and cut[0].by_deadline:
        reason = cut[0].reason
    elif cut:
        reason = f"not collected: the pods were not listed ({cut[0].reason.removeprefix('not collected: ')})"
    else:
        return
    by_deadline = bool(cut) and cut[0].by_deadline and not denied
    requirements = [f"logs:{role}" for role in sorted(WANTED_ROLES)] + [f"envoy:{what}" for what in DOCUMENTS]
    for requirement in requirements:
        outcome.add_not_collected(NotCollected(requirement, reason, by_deadline=by_deadline))


def _namespace_of(item: Mapping[str, Any]) -> str | None:
    metadata = item.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("namespace"), str):
        return str(metadata["namespace"])
    return None


def _synthesized(item: Mapping[str, Any]) -> bool:
    metadata = item.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return isinstance(annotations, Mapping) and str(annotations.get(SYNTHESIZED_ANNOTATION, "")).lower() == "true"


def _written(kind: KindObjects) -> bool:
    return any(not _synthesized(item) for item in kind.items)


def _write_kube(root: Path, kinds: list[KindObjects], outcome: Outcome, report: RedactionReport) -> int:
    total = 0
    for collected in kinds:
        spec = collected.spec
        if spec.key in NEVER_COLLECTED:
            continue
        items: list[Any] = []
        found: list[Redaction] = []
        for item in collected.items:
            if item.get("kind") in NEVER_COLLECTED:
                continue
            if _synthesized(item):
                outcome.synthesized_skipped.append(f"{spec.key}/{_namespace_of(item) or ''}/{_name_of(item)}")
                continue
            label = f"items[{len(items)}] {spec.key} {_namespace_of(item) or '-'}/{_name_of(item)}"
            json_data: dict[str, str] = {}
            if spec.kind == "ConfigMap":
                item, json_data = _redact_json_data(item, label, found)
            redacted, masked = redact_object(item, label)
            if json_data:
                redacted["data"] = {**redacted["data"], **json_data}
            items.append(redacted)
            found.extend(masked)
        if not items:
            continue
        path = bundle_path(root, *spec.file_name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
        path.write_text(_yaml(document), encoding="utf-8")
        report.add(spec.file_name, found)
        total += len(items)
    return total


def _redact_json_data(
    item: dict[str, Any], label: str, found: list[Redaction]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A ConfigMap entry that holds a JSON object (`seldon-kafka`'s `kafka.json`) is redacted as an object, so a
    secret is found by its key (`sasl.password`) and inside its own string (`sasl.jaas.config`) rather than by text
    patterns over the JSON's escaped quotes, and is written back compact, as the operator writes it. Returns the
    item with those entries emptied (for the object redactor) and the redacted entries to put back."""
    data = item.get("data")
    if not isinstance(data, Mapping):
        return item, {}
    redacted_entries: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not value.lstrip().startswith("{"):
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if not isinstance(parsed, dict):
            continue
        redacted, masked = redact_object(parsed, f'{label} .data["{key}"] (JSON)')
        found.extend(masked)
        redacted_entries[str(key)] = (
            json.dumps(redacted, separators=(",", ":"), ensure_ascii=False) if masked else value
        )
    if not redacted_entries:
        return item, {}
    return {**item, "data": {k: ("" if k in redacted_entries else v) for k, v in data.items()}}, redacted_entries


def _name_of(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""


def _write_logs(
    api: KubeApi,
    root: Path,
    pods: list[dict[str, Any]],
    workloads: list[dict[str, Any]],
    target: LiveTarget,
    since_seconds: int | None,
    outcome: Outcome,
    report: RedactionReport,
) -> int:
    targets = log_targets(pods, outcome.skipped_names, workloads)
    written = 0
    for log in fetch_logs(api, targets, root, target.tail, since_seconds):
        where = log.target
        requirement = f"logs:{where.role}"
        if log.missing is not None:
            outcome.previous_logs_missing.append(log.missing)
        if log.forbidden is not None:
            if log.forbidden not in outcome.forbidden:
                outcome.forbidden.append(log.forbidden)
            reason = f"forbidden: missing permission to {log.forbidden.permission}"
            outcome.add_not_collected(NotCollected(requirement, reason, where.namespace, where.pod, where.what))
        if log.error is not None:
            outcome.log_errors.append(log.error)
            reason = f"not collected: log {where.namespace}/{where.pod}/{where.what}: {log.error.error}"
            outcome.add_not_collected(NotCollected(requirement, reason, where.namespace, where.pod, where.what))
        if log.deadline is not None:
            outcome.deadline_passed = str(log.deadline)
            reason = log.deadline.not_collected
            entry = NotCollected(requirement, reason, where.namespace, where.pod, where.what, by_deadline=True)
            outcome.add_not_collected(entry)
        if log.written:
            written += 1
            report.add(where.rel_path, log.redactions)
    return written


def _write_envoy(
    api: KubeApi,
    root: Path,
    pods: list[dict[str, Any]],
    admin_urls: list[Any],
    outcome: Outcome,
    report: RedactionReport,
) -> tuple[int, dict[str, dict[str, str]]]:
    found_pods = envoy_pods(pods)
    urls = assign_urls(admin_urls, found_pods)
    targets = list(found_pods) + [p for p in urls if p not in found_pods]
    written = 0
    via: dict[str, dict[str, str]] = {}
    for pod in targets:
        result = fetch_envoy(api, pod, urls.get(pod))
        outcome.envoy_errors.extend(result.errors)
        for forbidden in result.forbidden:
            if forbidden not in outcome.forbidden:
                outcome.forbidden.append(forbidden)
        for error in result.errors:
            reason = f"not collected: Envoy admin {error.what} of {pod.namespace}/{pod.pod}: {error.error}"
            outcome.add_not_collected(NotCollected(f"envoy:{error.what}", reason, pod.namespace, pod.pod, error.what))
        if result.deadline is not None:
            outcome.deadline_passed = str(result.deadline)
            failed = {error.what for error in result.errors}
            for what in DOCUMENTS:
                if what not in result.documents and what not in failed:
                    reason = result.deadline.not_collected
                    entry = NotCollected(f"envoy:{what}", reason, pod.namespace, pod.pod, what, by_deadline=True)
                    outcome.add_not_collected(entry)
        if not result.documents:
            continue
        try:
            folder = bundle_path(root, "envoy", pod.namespace, pod.pod)
        except UnsafePathError as exc:
            outcome.envoy_errors.append(FetchError(pod.namespace, pod.pod, "config_dump", f"not written: {exc}"))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        rel = f"envoy/{pod.namespace}/{pod.pod}"
        dump = result.documents.get("config_dump")
        if dump is not None:
            parsed = json.loads(dump)
            redacted, masked = redact_object(parsed)
            if masked:
                (folder / "config_dump.json").write_text(
                    json.dumps(redacted, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
                )
                report.add(f"{rel}/config_dump.json", masked)
            else:
                (folder / "config_dump.json").write_bytes(dump)
            written += 1
        stats = result.documents.get("stats")
        if stats is not None:
            text, masked_lines = redact_lines(stats.decode("utf-8", "replace"))
            (folder / "stats.txt").write_text(text, encoding="utf-8", newline="")
            report.add(f"{rel}/stats.txt", masked_lines)
        via[f"{pod.namespace}/{pod.pod}"] = dict(result.via)
    return written, via


def _metadata(
    target: LiveTarget,
    api: KubeApi,
    server_version: str | None,
    namespaces: list[str],
    outcome: Outcome,
    envoy_via: dict[str, dict[str, str]],
    since_seconds: int | None,
    report: RedactionReport,
) -> dict[str, Any]:
    return {
        "source": "live",
        "collector": f"mlops-trace {__version__}",
        "collected_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "context": api.connection.context,
        "server": api.connection.server,
        "server_version": server_version,
        "namespaces": "all" if target.all_namespaces else namespaces,
        "kinds": list(outcome.kinds_listed),
        # Kinds listed by name only: their absence says nothing about objects of other names.
        "kinds_by_name": {spec.key: list(spec.names) for spec in COLLECTED_KINDS if spec.names},
        "absent_kinds": [a.to_dict() for a in outcome.absent],
        "forbidden": [f.to_dict() for f in outcome.forbidden],
        "envoy_errors": [e.to_dict() for e in outcome.envoy_errors],
        "envoy_sources": envoy_via,
        "log_errors": [e.to_dict() for e in outcome.log_errors],
        "previous_logs_missing": [e.to_dict() for e in outcome.previous_logs_missing],
        "logs": {
            "tail_lines": DEFAULT_TAIL if target.tail is None else (target.tail if target.tail >= 0 else None),
            "since_seconds": since_seconds,
        },
        "not_collected": [n.to_dict() for n in outcome.not_collected],
        "bounded": {
            "events_per_namespace": EVENTS_PER_NAMESPACE,
            "left_out": dict(sorted(outcome.objects_dropped.items())),
        },
        "skipped_names": [s.describe() for s in outcome.skipped_names],
        "timeouts": {
            "request_seconds": api.clock.request_timeout,
            "run_seconds": api.clock.run_seconds,
            "run_passed": outcome.deadline_passed is not None,
        },
        "synthesized_skipped": list(outcome.synthesized_skipped),
        "redacted_values": report.total,
    }


def _yaml(data: Any) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(
        data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
    )
    return text
