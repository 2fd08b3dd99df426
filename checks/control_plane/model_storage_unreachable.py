"""MT109 model-storage-unreachable: a Model that is not loaded because the agent could not fetch its artifacts from
`spec.storageUri` (rclone download failed, no rclone remote for the URI's scheme, Secret missing or mismatched), as its
status or the agent's `Failed to handle load model` line says."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.model_load import (
    LoadCase,
    failed_requests,
    load_cases,
    request_evidence,
    short,
)
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT109",
    slug="model-storage-unreachable",
    title="Model artifacts cannot be fetched from its storageUri",
    severity=Severity.CRITICAL,
    requires=("kube:Model|logs:agent",),
    reads=("kube:SeldonConfig", "kube:SeldonRuntime", "logs:rclone", "requests"),
    playbook="model-storage",
    fix="Make spec.storageUri reachable by the agent's rclone: a scheme named like an rclone remote (spec.secretName "
    "pointing at a one-key Secret whose config has that `name`, or a preloaded agent secret), an existing non-empty "
    "path, and no pvc:// (mount the volume into the Server pod instead); then re-apply the Model.",
    explained_by=("MT203",),
)

# The agent's storage errors (SeldonIO/seldon-core scheduler/pkg/agent/rclone/rclone.go, agent_svc_manager.go,
# k8s/secrets.go). `Failed to sync/copy %s to %s %w` up to v2.9.1 became `failed to sync/copy %s to %s: %w` in
# v2.10.0; `Failed to download from %s any files` since v2.1.0 (before it, `lstat /mnt/agent/rclone/<n>: no such
# file or directory`); the remote-name check (`name from URI (%s) does not match secret (%s)`) since v2.4.0.
_STORAGE_CAUSE = re.compile(
    r"failed to sync/copy|failed to download from \S+ any files|failed rclone request to host"
    r"|name from uri \([^)]*\) does not match secret|secret does not have 1 key|secrets \"[^\"]+\" (?:not found|is forbidden)"
    r"|failed to unmarshall config as json or yaml|for rclone name match|can't get remote from uri"
    r"|with k8s secret \S+ when namespace not set|didn't find section in config file|lstat /mnt/agent/rclone/",
    re.IGNORECASE,
)
_NAME_MISMATCH = re.compile(r"name from uri \(([^)]*)\) does not match secret \(([^)]*)\)", re.IGNORECASE)
_NO_REMOTE = re.compile(r"didn't find section in config file", re.IGNORECASE)
_EMPTY = re.compile(r"failed to download from \S+ any files|lstat /mnt/agent/rclone/", re.IGNORECASE)
_SECRET_MISSING = re.compile(r"secrets \"([^\"]+)\" (not found|is forbidden)", re.IGNORECASE)
# rclone's rc server logs a failed call as `rc: "<path>": error: <err>` (rclone/rclone fs/rc/rcserver/rcserver.go,
# fs/rc/jobs/job.go), e.g. `didn't find section in config file ("pvc")` (the quoted name since rclone v1.70.0).
_RCLONE_ERROR = re.compile(r"\brc: \"(?:sync/copy|operations/[\w/]+)\": error: (.*)", re.IGNORECASE)
_RCLONE_NEEDLES = ("rc: ",)
_URI_IN_ERROR = re.compile(r"sync/copy (\S+) to |download from (\S+) any files", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][\w+.-]*):")
_EVIDENCE_LIMIT = 10


def _storage_cause(text: str) -> bool:
    return _STORAGE_CAUSE.search(text) is not None


def run(snap: Snapshot) -> Iterator[Finding]:
    cases = load_cases(snap, _storage_cause)
    for case in cases.values():
        yield _finding(snap, case)


def _finding(snap: Snapshot, case: LoadCase) -> Finding:
    uri = str(case.model.spec.get("storageUri") or "") if case.model is not None else ""
    cause = case.causes[-1]
    if not uri and (named := _URI_IN_ERROR.search(cause)) is not None:
        uri = named.group(1) or named.group(2)
    rclone = _rclone_evidence(snap, case, uri)
    said = " ".join([*case.causes, *(what for _, what in rclone)])
    hint, spec_evidence = _explain(snap, case.model, uri, said)
    requests = failed_requests(snap, case.namespace, case.name)
    where = f"from {uri}" if uri else "from its storageUri"
    message = f"Model {case.name} is not loaded: the agent could not fetch its artifacts {where} (`{short(cause)}`)"
    if hint:
        message += f"; {hint}"
    if requests:
        message += f"; {len(requests)} recorded request(s) for it failed"
    evidence = [
        *case.evidence[:4],
        *(Evidence(w, what) for w, what in rclone),
        *spec_evidence,
        *request_evidence(requests),
    ]
    return CHECK.finding(
        namespace=case.namespace,
        object=f"Model/{case.name}",
        message=message + ".",
        evidence=evidence[:_EVIDENCE_LIMIT],
    )


# --- the rclone sidecar ------------------------------------------------------------------------------------------


def _rclone_evidence(snap: Snapshot, case: LoadCase, uri: str) -> list[tuple[str, str]]:
    """rclone's own error lines for this download: in the pods whose agent failed (the last one each), or, when
    only the Model's status is known, those of the namespace that name its URI's path or its scheme's remote."""
    path = uri.split("://", 1)[1] if "://" in uri else ""
    scheme = _scheme(uri)
    found: list[tuple[str, str]] = []
    for log in snap.logs_of(Role.RCLONE, case.namespace):
        own_pod = log.pod in case.pods
        if case.pods and not own_pod:
            continue
        last: tuple[str, str] | None = None
        for lineno, line in log.lines_mentioning(_RCLONE_NEEDLES):
            error = _RCLONE_ERROR.search(line)
            if error is None:
                continue
            text = error.group(1)
            named = bool(path) and path in text or bool(scheme) and f'("{scheme}")' in text
            if own_pod or named:
                last = (log.where(lineno), evidence_line(_rclone_message(line)))
        if last is not None:
            found.append(last)
    return found[:2]


def _rclone_message(line: str) -> str:
    start = line.find("ERROR :")
    return line[start:] if start >= 0 else line


# --- the URI, the Secret and the agent's preloaded remotes --------------------------------------------------------


def _scheme(uri: str) -> str:
    found = _SCHEME.match(uri.strip())
    return found.group(1).lower() if found else ""


def _explain(snap: Snapshot, model: KubeObject | None, uri: str, said: str) -> tuple[str, list[Evidence]]:
    """What the storageUri's scheme needs and what the Model gives it (Secrets themselves are never collected)."""
    scheme = _scheme(uri)
    secret = str(model.spec.get("secretName") or "") if model is not None else ""
    evidence: list[Evidence] = []
    if model is not None and uri:
        evidence.append(Evidence(model.field_where(".spec.storageUri"), f"storageUri: {uri}"))
    if model is not None and secret:
        evidence.append(Evidence(model.field_where(".spec.secretName"), f"secretName: {secret}"))
    mismatch = _NAME_MISMATCH.search(said)
    missing = _SECRET_MISSING.search(said)
    if scheme == "pvc":
        return (
            "the agent's rclone has no `pvc` remote, so a pvc:// URI cannot be fetched: mount the claim into the "
            "Server pod (spec.podSpec volumes) and point storageUri at that local path"
        ), evidence
    if mismatch is not None:
        return (
            f"the rclone config in Secret {secret or '<secretName>'} names its remote `{mismatch.group(2)}` while the "
            f"storageUri scheme is `{mismatch.group(1)}`: the two must be equal"
        ), evidence
    if missing is not None:
        return (
            f"the agent could not read Secret {missing.group(1)} ({missing.group(2)}): create it in the Model's "
            "namespace, or let the server's service account read it"
        ), evidence
    if _EMPTY.search(said):
        return "the copy found no files there: the bucket or prefix is empty or misspelt", evidence
    if model is None or not scheme:
        return "", evidence
    if secret:
        return (
            f"Secret {secret} (not collected) must hold exactly one key whose rclone config has `name: {scheme}`, "
            "a `type` and working credentials"
        ), evidence
    preloaded = _preloaded_secrets(snap, model.namespace)
    listed = ""
    if preloaded is not None:
        listed = f" (it preloads {', '.join(preloaded[1]) or 'none'})"
        evidence.append(Evidence(preloaded[0], f"config_secrets: [{', '.join(preloaded[1])}]"))
    remote = (
        "only the public `gs` remote is preloaded by default"
        if scheme != "gs"
        else "the preloaded `gs` remote is anonymous, so a private bucket needs credentials"
    )
    missing_remote = " and rclone has no remote of that name" if _NO_REMOTE.search(said) else ""
    return (
        f"spec.secretName is not set, so a remote named `{scheme}` must come from a secret the agent preloads"
        f"{listed}{missing_remote}; {remote}: set spec.secretName to a Secret whose rclone config is named `{scheme}`"
    ), evidence


def _preloaded_secrets(snap: Snapshot, namespace: str | None) -> tuple[str, list[str]] | None:
    """The agent's preloaded rclone secrets (`config.agentConfig.rclone.config_secrets`) of the namespace's
    SeldonRuntime, else of the SeldonConfig it names: (where, names)."""
    for runtime in snap.objects_of("SeldonRuntime", namespace):
        names = _config_secrets(runtime.spec.get("config"))
        if names is not None:
            return runtime.field_where(".spec.config.agentConfig.rclone.config_secrets"), names
        config_name = str(runtime.spec.get("seldonConfig") or "")
        for config in snap.objects_of("SeldonConfig"):
            if config.name == config_name:
                names = _config_secrets(config.spec.get("config"))
                if names is not None:
                    return config.field_where(".spec.config.agentConfig.rclone.config_secrets"), names
    return None


def _config_secrets(config: Any) -> list[str] | None:
    rclone: Mapping[str, Any] = as_mapping(as_mapping(as_mapping(config).get("agentConfig")).get("rclone"))
    if "config_secrets" not in rclone:
        return None
    return [str(name) for name in as_list(rclone.get("config_secrets")) if str(name).strip()]
