"""MT702 model-repository-empty: a KServe model server that found no model file under its model dir and started
anyway with an empty repository, so the InferenceService turns Ready and every predict is a 404 `Model with name …
does not exist.`; names the storageUri and what the storage-initializer copied."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import (
    ISVC,
    condition_evidence,
    failed_requests_for,
    isvc_of_log,
    request_evidence,
    storage_uri,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs.kserve import StorageEventKind, storage_event
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT702",
    slug="model-repository-empty",
    title="KServe model server started with no model under its model dir",
    severity=Severity.CRITICAL,
    requires=("logs:kserve-container",),
    reads=("logs:storage-initializer", "kube:InferenceService", "kube:Pod", "requests"),
    playbook="kserve-storage",
    fix="Point storageUri at the folder (or file) that holds the model artifact the runtime loads (e.g. one "
    "model.joblib for sklearn), check the prefix is not empty, and restart the predictor.",
)

# The servers' line when the model dir holds no model file, after which they serve an empty repository
# (kserve/kserve aaac4e2 python/sklearnserver/sklearnserver/__main__.py and xgbserver/__main__.py:
# `failed to locate model file for model %s under dir %s,trying loading from model repository.`; v0.8.x wrote
# `fail to load model %s from dir %s,trying to load from model repository.`, commit dd4eeb771, v0.8.0-rc0).
_NO_MODEL = re.compile(
    r"(?:failed to locate model file for model|fail to load model) (\S+) (?:under|from) dir ([^,\s]+),\s*"
    r"trying (?:to )?load(?:ing)? from model repository",
    re.IGNORECASE,
)
_REGISTERED = re.compile(r"registering model: (\S+)", re.IGNORECASE)  # python/kserve/kserve/model_server.py
_NEEDLES = ("model repository", "Registering model")
# The storage-initializer's copy (python/storage/kserve_storage/kserve_storage.py): `Copying contents of %s to local`
# and `Successfully copied %s to %s` (read by `parsers.logs.kserve.storage_event`), and between them one line per file:
# `Found S3 object: %s (%d bytes)`, `Downloaded object %s`, `Found blob: %s (%d bytes)`, `Downloading: %s`,
# `Linking: %s to %s`.
_FILE_LINE = re.compile(r"found s3 object|downloaded object|found blob|linking: |downloading", re.IGNORECASE)


def run(snap: Snapshot) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for log in snap.logs_of(Role.KSERVE_CONTAINER):
        empty = _empty_start(log)
        if empty is None:
            continue
        owner = isvc_of_log(snap, log)
        name = owner[0] if owner else log.pod
        if (log.namespace, name) in seen:
            continue
        seen.add((log.namespace, name))
        yield _finding(snap, log, owner[0] if owner else None, empty)


def _empty_start(log: LogSource) -> tuple[int, str, str, str] | None:
    """(line, model, dir, text) of the last no-model-file line not followed by the model's registration."""
    found: tuple[int, str, str, str] | None = None
    for lineno, line in log.lines_mentioning(_NEEDLES):
        no_model = _NO_MODEL.search(line)
        if no_model is not None:
            found = (lineno, no_model.group(1), no_model.group(2), line[no_model.start():].strip())
            continue
        registered = _REGISTERED.search(line)
        if registered is not None and found is not None and registered.group(1).rstrip(",.") == found[1]:
            found = None
    return found


def _copy_evidence(snap: Snapshot, log: LogSource) -> tuple[list[Evidence], bool | None]:
    """The storage-initializer's copy in the same pod, and whether it named no file (None: not known)."""
    for init in snap.logs_by_pod(log.namespace, log.pod):
        if init.role is not Role.STORAGE_INITIALIZER:
            continue
        start: tuple[int, str] | None = None
        files = 0
        for lineno, line in init.lines():
            event = storage_event(lineno, line)
            if event is not None and event.kind is StorageEventKind.COPYING:
                start, files = (lineno, event.message), 0
            elif event is not None and event.kind is StorageEventKind.COPIED:
                shown = [Evidence(init.where(lineno), evidence_line(event.message))]
                if start is not None:
                    shown.insert(0, Evidence(init.where(start[0]), evidence_line(start[1])))
                return shown, files == 0
            elif _FILE_LINE.search(line):
                files += 1
    return [], None


def _finding(snap: Snapshot, log: LogSource, isvc_name: str | None, empty: tuple[int, str, str, str]) -> Finding:
    lineno, model, model_dir, text = empty
    isvc = snap.get(ISVC, log.namespace, isvc_name) if isvc_name else None
    evidence = [Evidence(log.where(lineno), evidence_line(text))]
    copied, no_files = _copy_evidence(snap, log)
    evidence.extend(copied)
    uri = storage_uri(isvc) if isvc is not None else None
    if uri is not None:
        evidence.append(Evidence(uri[1], f"storageUri: {uri[0]}"))
    where = f"InferenceService {isvc_name}" if isvc_name else f"pod {log.pod}"
    message = (f"The model server of {where} found no model file for `{model}` under {model_dir} and started with "
               "an empty model repository")
    if no_files:
        message += "; the storage-initializer reported the copy successful but named no file"
    if isvc is not None:
        ready = condition_evidence(isvc, "Ready")
        if ready is not None and str((isvc.condition("Ready") or {}).get("status")) == "True":
            evidence.append(ready)
            message += "; the InferenceService is Ready all the same"
    requests = failed_requests_for(snap, log.namespace, isvc_name) if isvc_name else []
    if requests:
        message += f"; {len(requests)} recorded request(s) failed (the server knows no model `{model}`)"
    evidence.extend(request_evidence(requests))
    return CHECK.finding(
        namespace=log.namespace,
        object=f"InferenceService/{isvc_name}" if isvc_name else f"Pod/{log.pod}",
        message=message + ".",
        evidence=evidence[:8],
    )
