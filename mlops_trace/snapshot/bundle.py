"""Read a bundle (directory or .tar.gz) in the DESIGN.md format into a Snapshot.

Layout: `kube/**/*.yaml|yml|json`, `logs/<ns>/<pod>/<container>.log`, `envoy/<ns>/<pod>/config_dump.json`
(+ `stats.txt`, `access.log`), `requests/*.json`, optional `bundle.yaml`. Unknown files are ignored. A file that
cannot be read or parsed becomes an `InputProblem` naming it, and the rest of the bundle is still used; only a
bundle with nothing usable left raises `InputError`.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.findings import InputProblem
from mlops_trace.kinds import kind_for_file_stem, kind_key
from mlops_trace.parsers.kube_docs import read_documents
from mlops_trace.parsers.structured import load_json, load_yaml, read_bounded_text
from mlops_trace.snapshot.prometheus import load_prometheus_dir
from mlops_trace.snapshot.archive import unpack_archive
from mlops_trace.snapshot.files import bundle_files, is_plain_file
from mlops_trace.snapshot.kube import KubeObject, as_mapping
from mlops_trace.snapshot.roles import Role, container_role
from mlops_trace.snapshot.snapshot import BundleMetadata, EnvoySource, LogSource, RequestRecord, Snapshot

KUBE_SUFFIXES = (".yaml", ".yml", ".json")
_TOP_LEVEL = ("kube", "logs", "envoy", "requests", "prometheus", "bundle.yaml")


@contextmanager
def open_bundle(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> Iterator[Snapshot]:
    """Load a bundle; an archive is unpacked (within `limits`) into a temporary directory that lives as long as
    the context, and is removed however the context ends."""
    if not path.exists():
        raise InputError(f"{path}: no such bundle (expected a directory or a .tar.gz)")
    if path.is_dir():
        yield load_bundle_dir(path, display=str(path), limits=limits)
        return
    if not path.is_file() or not tarfile.is_tarfile(path):
        raise InputError(f"{path}: not a bundle directory and not a tar archive")
    tmp = Path(tempfile.mkdtemp(prefix="mlops-trace-bundle-"))
    try:
        unpack_problems: list[InputProblem] = []
        unpack_archive(path, tmp, limits, unpack_problems)
        yield load_bundle_dir(_bundle_root(tmp), display=str(path), limits=limits, early_problems=unpack_problems)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bundle_root(unpacked: Path) -> Path:
    """A tarball of a directory has that directory as its only top entry: descend into it."""
    current = unpacked
    for _ in range(3):
        if any((current / name).exists() for name in _TOP_LEVEL):
            return current
        entries = [p for p in current.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or entries[0].is_symlink() or not entries[0].is_dir():
            return current
        current = entries[0]
    return current


def load_bundle_dir(
    root: Path,
    display: str | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
    early_problems: Iterable[InputProblem] = (),
) -> Snapshot:
    """Read a bundle directory. Only regular files inside it are read (links are named, never followed), each within
    `limits`; a file that breaks one is an input problem and the rest is still read."""
    snap = Snapshot(source=display or str(root), root=root)
    snap.problems.extend(early_problems)
    snap.metadata = _read_metadata(root, snap, limits)
    _read_kube(root, snap, limits)
    _read_logs(root, snap, limits)
    _read_envoy(root, snap, limits)
    _read_requests(root, snap, limits)
    snap.attach_prometheus(load_prometheus_dir(root, limits))
    if not (snap.objects or snap.logs or snap.envoys or snap.requests or snap.prometheus or _forbidden(snap)):
        if snap.problems:
            first = snap.problems[0]
            raise InputError(
                f"{snap.source}: nothing usable in the bundle ({len(snap.problems)} unreadable file(s), "
                f"first: {first.path}: {first.reason})"
            )
        raise InputError(f"{snap.source}: empty bundle (no kube/, logs/ or envoy/ data)")
    return snap


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _forbidden(snap: Snapshot) -> bool:
    """A collector that was refused everything (or ran out of time) still says what it could not collect and why:
    each check then skips naming the permission or the deadline, which is a usable answer."""
    return bool(snap.metadata.extra.get("forbidden") or snap.metadata.extra.get("not_collected"))


def _read_metadata(root: Path, snap: Snapshot, limits: InputLimits) -> BundleMetadata:
    meta_path = root / "bundle.yaml"
    meta = BundleMetadata(source=snap.source)
    if meta_path.is_symlink():
        snap.problems.append(InputProblem("bundle.yaml", "symbolic link: not followed"))
        return meta
    if not is_plain_file(meta_path):
        if meta_path.exists():
            snap.problems.append(InputProblem("bundle.yaml", "not a regular file: not read"))
        return meta
    try:
        raw = load_yaml(read_bounded_text(meta_path, limits), limits)
    except InputError as exc:
        snap.problems.append(InputProblem("bundle.yaml", f"ignored: {exc}"))
        return meta
    data = as_mapping(raw)
    namespaces = data.get("namespaces")
    if namespaces in ("all", "*") or data.get("all_namespaces") is True:
        meta.all_namespaces = True
    elif isinstance(namespaces, list):
        meta.namespaces = tuple(str(n) for n in namespaces)
    kinds = data.get("kinds")
    if isinstance(kinds, list):
        meta.kinds = tuple(str(k) for k in kinds)
    meta.collected_at = _scalar_text(data.get("collected_at"))
    meta.context = _scalar_text(data.get("context"))
    meta.source = _scalar_text(data.get("source")) or snap.source
    meta.extra = {str(k): v for k, v in data.items()}
    return meta


def _scalar_text(value: Any) -> str | None:
    """A metadata value shown as text: scalars only (a nested value would be printed whole, however large)."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _read_kube(root: Path, snap: Snapshot, limits: InputLimits) -> None:
    for path in bundle_files(root, "kube", snap.problems):
        if path.suffix not in KUBE_SUFFIXES:
            continue
        rel = _rel(root, path)
        objects: list[KubeObject] = []
        try:
            for doc in read_documents(path, limits):
                obj = _to_object(doc.body, f"{rel}#{doc.index}")
                if obj is None:
                    snap.problems.append(InputProblem(rel, f"document {doc.index} has no kind or metadata.name"))
                    continue
                objects.append(obj)
        except InputError as exc:
            snap.problems.append(InputProblem(rel, str(exc)))
            continue  # a malformed file is left out whole: half a file would mislead the checks
        if not objects:
            _note_empty_list(snap, root, path)
        snap.add_objects(objects)


def _note_empty_list(snap: Snapshot, root: Path, path: Path) -> None:
    """An empty file or List says "collected, none found" when its name names the kind (`netpol.yaml`,
    `networkpolicies.json`); under `kube/<namespace>/` it speaks for that namespace only."""
    spec = kind_for_file_stem(path.stem)
    if spec is not None:
        parts = path.relative_to(root / "kube").parts
        scope = parts[0] if len(parts) > 1 and spec.namespaced else None
        snap.metadata.empty_kinds.setdefault(spec.key, scope)


def _to_object(body: Mapping[str, Any], source: str) -> KubeObject | None:
    kind = body.get("kind")
    metadata = as_mapping(body.get("metadata"))
    name = metadata.get("name")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        return None
    namespace = metadata.get("namespace")
    api_version = body.get("apiVersion")
    return KubeObject(
        kind=kind_key(kind, api_version if isinstance(api_version, str) else None),
        namespace=str(namespace) if namespace else None,
        name=name,
        raw=body,
        source=source,
    )


PREVIOUS_LOG_SUFFIX = ".previous.log"


def _read_logs(root: Path, snap: Snapshot, limits: InputLimits) -> None:
    """`logs/<ns>/<pod>/<container>.log` into `snap.logs`; `<container>.previous.log` (the previous run of a restarted
    container) is attached to its current log as `previous_run`, never listed beside it. A previous run without its
    current log is named as a problem and not read."""
    previous: dict[tuple[str, str, str], Path] = {}
    current: dict[tuple[str, str, str], int] = {}
    for path in bundle_files(root, "logs", snap.problems):
        if path.suffix != ".log" or len(path.relative_to(root).parts) != 4:
            continue
        namespace, pod = path.parent.parent.name, path.parent.name
        if path.name.endswith(PREVIOUS_LOG_SUFFIX) and len(path.name) > len(PREVIOUS_LOG_SUFFIX):
            previous[(namespace, pod, path.name[: -len(PREVIOUS_LOG_SUFFIX)])] = path
            continue
        container = path.stem
        current[(namespace, pod, container)] = len(snap.logs)
        snap.logs.append(_log_source(root, snap, limits, namespace, pod, container, path, previous=False))
    for key, path in sorted(previous.items()):
        index = current.get(key)
        if index is None:
            name = f"{key[2]}.log"
            snap.problems.append(
                InputProblem(_rel(root, path), f"previous run of a container without its current log {name}: not read")
            )
            continue
        earlier = _log_source(root, snap, limits, *key, path, previous=True)
        snap.logs[index] = replace(snap.logs[index], previous_run=earlier)


def _log_source(
    root: Path,
    snap: Snapshot,
    limits: InputLimits,
    namespace: str,
    pod: str,
    container: str,
    path: Path,
    *,
    previous: bool,
) -> LogSource:
    pod_obj = snap.get("Pod", namespace, pod)
    labels = pod_obj.labels if pod_obj is not None else None
    return LogSource(
        namespace=namespace,
        pod=pod,
        container=container,
        role=container_role(pod, container, labels),
        path=path,
        display=_rel(root, path),
        max_line_chars=limits.line_chars,
        problems=snap.problems,
        previous=previous,
    )


def _read_envoy(root: Path, snap: Snapshot, limits: InputLimits) -> None:
    from mlops_trace.parsers.envoy_config import load_config_dump
    from mlops_trace.parsers.envoy_stats import load_stats

    files_by_pod: dict[Path, set[str]] = {}
    for path in bundle_files(root, "envoy", snap.problems):
        if len(path.relative_to(root).parts) == 4:
            files_by_pod.setdefault(path.parent, set()).add(path.name)
    for pod_dir, names in sorted(files_by_pod.items()):
        namespace, pod = pod_dir.parent.name, pod_dir.name
        config = stats = None
        config_display = stats_display = None
        dump_path = pod_dir / "config_dump.json"
        if dump_path.name in names:
            config_display = _rel(root, dump_path)
            try:
                config = load_config_dump(dump_path)
            except InputError as exc:
                snap.problems.append(InputProblem(config_display, _strip_path(str(exc), dump_path)))
            if config is not None and (gap := config.missing_for_checks()):
                snap.problems.append(InputProblem(config_display, gap))
        stats_path = pod_dir / "stats.txt"
        if stats_path.name in names:
            stats_display = _rel(root, stats_path)
            try:
                stats = load_stats(stats_path, limits.line_chars)
            except (InputError, OSError, UnicodeDecodeError) as exc:
                snap.problems.append(InputProblem(stats_display, _strip_path(str(exc), stats_path)))
        access_path = pod_dir / "access.log"
        access = None
        if access_path.name in names:
            access = LogSource(namespace, pod, "access", Role.ENVOY, access_path, _rel(root, access_path),
                               max_line_chars=limits.line_chars, problems=snap.problems)
        if config is None and stats is None and access is None:
            continue
        snap.envoys.append(EnvoySource(namespace, pod, config, config_display, stats, stats_display, access))


def _strip_path(message: str, path: Path) -> str:
    """Problems are reported next to their bundle-relative path; drop the absolute one from the message."""
    return message.replace(f"{path}: ", "").replace(str(path), path.name)


def _read_requests(root: Path, snap: Snapshot, limits: InputLimits) -> None:
    for path in bundle_files(root, "requests", snap.problems):
        if path.suffix != ".json" or path.parent != root / "requests":
            continue
        rel = _rel(root, path)
        try:
            data = load_json(read_bounded_text(path, limits), limits)
        except InputError as exc:
            snap.problems.append(InputProblem(rel, str(exc)))
            continue
        records = data if isinstance(data, list) else [data]
        for index, item in enumerate(records):
            record = _to_request(item, f"{rel}#{index}")
            if record is None:
                snap.problems.append(InputProblem(rel, f"record {index} has no request.path"))
                continue
            snap.requests.append(record)


def _to_request(item: Any, display: str) -> RequestRecord | None:
    data = as_mapping(item)
    request = as_mapping(data.get("request"))
    response = as_mapping(data.get("response"))
    path = request.get("path")
    if not isinstance(path, str) or not path:
        url = request.get("url")
        if isinstance(url, str) and "://" in url:
            after_scheme = url.split("://", 1)[1]
            path = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
        else:
            return None
    headers = {str(k).lower(): str(v) for k, v in as_mapping(request.get("headers")).items()}
    status = response.get("status")
    return RequestRecord(
        display=display,
        method=str(request.get("method") or "POST"),
        path=path,
        authority=headers.get("host") or (str(request["authority"]) if request.get("authority") else None),
        headers=headers,
        protocol=str(request.get("protocol") or ("grpc" if path.startswith("/inference.") else "rest")),
        status=int(status) if isinstance(status, int) else None,
        response_headers={str(k).lower(): str(v) for k, v in as_mapping(response.get("headers")).items()},
        body=str(response.get("body") or "")[:2000],
        grpc_status=str(response["grpc_status"]) if response.get("grpc_status") is not None else None,
        namespace=str(request["namespace"]) if isinstance(request.get("namespace"), str) else None,
        envoy_flags=_response_flags(response.get("envoy_response_flags")),
        request_id=headers.get("x-request-id"),
        grpc_message=str(response["grpc_message"]) if response.get("grpc_message") is not None else None,
        duration_ms=_number(response.get("duration_ms")),
    )


def _number(value: Any) -> float | None:
    """A finite number from a recorded field, else None (a bool, a string or NaN is no duration)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _response_flags(value: Any) -> tuple[str, ...]:
    """Envoy's `%RESPONSE_FLAGS%` as recorded: `"NR"`, `"UF,URX"` or a list; `-` means none."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(flag for flag in (str(item).strip() for item in items) if flag and flag != "-")
