"""MT110 model-runtime-deps-missing: a Model that is not loaded because MLServer cannot import a Python module the
model needs (`ModuleNotFoundError: No module named '<pkg>'`) or cannot find the model's environment tarball, as the
Model's status, the agent's `Failed to handle load model` line or MLServer's own log says; likewise a KServe
InferenceService whose model server (`kserve-container`: MLServer or a Python runtime) or transformer cannot import
one, from its log (or its previous run's, when it crash-loops) or its modelStatus."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.kserve import ISVC, isvc_of_log
from mlops_trace.analysis.model_load import (
    LoadCase,
    failed_requests,
    load_cases,
    model_of_failure,
    request_evidence,
    short,
)
from mlops_trace.analysis.routing import split_versioned
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT110",
    slug="model-runtime-deps-missing",
    title="MLServer lacks a Python dependency of the Model",
    severity=Severity.CRITICAL,
    requires=("kube:Model|logs:agent|logs:mlserver|logs:kserve-container|logs:transformer|kube:InferenceService",),
    reads=("kube:Pod", "requests"),
    playbook="model-runtime-deps",
    fix="Ship the model's Python dependencies: a conda-pack environment tarball referenced by the model's "
    "model-settings.json (parameters.environment_tarball), or a Server whose mlserver image has the missing package "
    "(spec.podSpec container `mlserver`, or a ServerConfig); then re-apply the Model.",
)

# What MLServer answers the agent's RepositoryModelLoad with (SeldonIO/MLServer 1.7.1 mlserver/grpc/utils.py
# handle_mlserver_error: INTERNAL with str(err)): from a parallel worker the exception is wrapped as
# `builtins.ModuleNotFoundError: No module named '<pkg>'` (mlserver/parallel/errors.py WorkerError, since 1.3.0);
# a missing per-model tarball is Python's `[Errno 2] No such file or directory: '<path>.tar.gz'` (hashing it in
# mlserver/parallel/registry.py); an unknown environment `Environment with hash '<h>' was not found for model '<m>'`.
_DEPS_CAUSE = re.compile(
    r"no module named|modulenotfounderror|no such file or directory: '[^']*\.tar\.gz'"
    r"|environment with hash '[^']*' was not found",
    re.IGNORECASE,
)
_MODULE = re.compile(r"no module named '([^']+)'", re.IGNORECASE)
_TARBALL = re.compile(r"no such file or directory: '([^']*\.tar\.gz)'", re.IGNORECASE)
# MLServer's log around a failed load (1.3.0–1.7.1): `Couldn't load model '<m>_<v>'. Model will be removed from
# registry.` (mlserver/registry.py), `Loaded model '<m>_<v>' successfully.`, and tracebacks through the model's
# folder /mnt/agent/models/<m>_<v>/ (the agent's MLSERVER_MODELS_DIR).
_COULD_NOT_LOAD = re.compile(r"couldn't load model '([^']+)'", re.IGNORECASE)
_LOADED = re.compile(r"\bloaded model '([^']+)' successfully", re.IGNORECASE)
_MODEL_DIR = re.compile(r"/mnt/agent/models/([^/'\"\s]+)/")
# Context that explains a missing module, never a finding alone: the image's start script
# (hack/activate-env.sh) prints `Environment tarball not found at '<path>'` when $MLSERVER_ENV_TARBALL is absent,
# which in Seldon is every start (the image sets /mnt/models/environment.tar.gz, Seldon mounts /mnt/agent), and
# conda-pack's `conda-unpack: error: unrecognized arguments: --quiet` (MLServer 1.3.x called it with --quiet);
# mlflow warns `Detected one or more mismatches between the model's dependencies and the current Python
# environment:` then ` - <pkg> (current: <v>|uninstalled, required: <req>)` (mlflow/utils/requirements_utils.py).
_IMAGE_TARBALL = re.compile(r"environment tarball not found at '([^']+)'", re.IGNORECASE)
_IMAGE_DEFAULT_TARBALL = "/mnt/models/environment.tar.gz"
_CONDA_UNPACK = re.compile(r"conda-unpack: error:", re.IGNORECASE)
_MISMATCH = re.compile(r"detected one or more mismatches between the model's dependencies", re.IGNORECASE)
_UNINSTALLED = re.compile(r"^\W*-\s+(\S+) \(current: uninstalled, required: ([^)]+)\)", re.IGNORECASE)
_MLSERVER_NEEDLES = (
    "no module named",
    ".tar.gz",
    "couldn't load model",
    "loaded model '",
    "/mnt/agent/models/",
    "conda-unpack: error",
    "detected one or more mismatches",
    "current: uninstalled",
)
_WINDOW = 40  # lines between a missing-module line and the model named next to it in the same traceback
_EVIDENCE_LIMIT = 10


@dataclass(frozen=True)
class _MLServerFailure:
    log: LogSource
    lineno: int
    served_name: str  # `<m>_<v>`, as MLServer knows the model
    text: str
    named_at: tuple[int, str]  # the line that ties it to the model, and that line


@dataclass
class _MLServerLog:
    """What one MLServer container log says about failed loads and their context."""

    log: LogSource
    failures: list[_MLServerFailure] = field(default_factory=list)
    cause_lines: list[tuple[int, str]] = field(default_factory=list)  # every missing-module / tarball line
    context: list[tuple[int, str]] = field(default_factory=list)  # tarball, conda-unpack, mlflow lines


def _deps_cause(text: str) -> bool:
    return _DEPS_CAUSE.search(text) is not None


def run(snap: Snapshot) -> Iterator[Finding]:
    cases = load_cases(snap, _deps_cause)
    servers = [_read_mlserver(log) for log in snap.logs_of(Role.MLSERVER)]
    for server in servers:
        for found in server.failures:
            name, _ = split_versioned(found.served_name)
            target, counts = model_of_failure(snap, server.log.namespace, name)
            if not counts:
                continue
            case = cases.setdefault((server.log.namespace, name), LoadCase(server.log.namespace, name, target))
            if not case.causes:
                case.causes.append(found.text)
            case.pods.add(server.log.pod)
    for case in cases.values():
        yield _finding(snap, case, servers)
    yield from kserve_findings(snap)


def _finding(snap: Snapshot, case: LoadCase, servers: list[_MLServerLog]) -> Finding:
    said = " ".join(case.causes)
    modules = list(dict.fromkeys(found.group(1) for found in _MODULE.finditer(said)))
    tarballs = list(dict.fromkeys(found.group(1) for found in _TARBALL.finditer(said)))
    mlserver = _mlserver_evidence(case, servers, modules, tarballs)
    if not modules and not tarballs:  # the status named only the exception; MLServer's log may name the module
        modules = list(dict.fromkeys(m.group(1) for _, what in mlserver if (m := _MODULE.search(what))))
    requests = failed_requests(snap, case.namespace, case.name)
    if modules:
        listed = ", ".join(f"`{name}`" for name in modules)
        why = f"MLServer cannot import {listed} (`No module named '{modules[0]}'`): the server's Python environment lacks it"
    elif tarballs:
        why = f"its environment tarball {tarballs[0]} is missing, so MLServer cannot build its Python environment"
    else:
        why = f"MLServer could not set up its Python environment (`{short(case.causes[0])}`)"
    message = f"Model {case.name} is not loaded: {why}"
    if requests:
        message += f"; {len(requests)} recorded request(s) for it failed"
    evidence = [
        *case.evidence[:3],
        *(Evidence(where, what) for where, what in mlserver),
        *_image_evidence(snap, case),
        *request_evidence(requests),
    ]
    return CHECK.finding(
        namespace=case.namespace,
        object=f"Model/{case.name}",
        message=message + ".",
        evidence=evidence[:_EVIDENCE_LIMIT],
    )


# --- MLServer's log ----------------------------------------------------------------------------------------------


def _read_mlserver(log: LogSource) -> _MLServerLog:
    """Missing-module and missing-tarball lines, each given the model named nearest to it in the same stretch of
    log; a failure stands unless MLServer later says it loaded that model."""
    result = _MLServerLog(log)
    named: list[tuple[int, str, str]] = []  # in line order, so the names near a line are found by bisection
    loaded: dict[str, int] = {}
    for lineno, line in log.lines_mentioning(_MLSERVER_NEEDLES):
        if _MODULE.search(line) or _TARBALL.search(line):
            result.cause_lines.append((lineno, line))
        if (could := _COULD_NOT_LOAD.search(line)) is not None:
            named.append((lineno, could.group(1), line))
        elif (folder := _MODEL_DIR.search(line)) is not None:
            named.append((lineno, folder.group(1), line))
        if (ok := _LOADED.search(line)) is not None:
            loaded[ok.group(1)] = lineno
        if _is_context(line):
            result.context.append((lineno, line))
    seen: set[str] = set()
    for lineno, line in reversed(result.cause_lines):
        first = bisect_left(named, (lineno - _WINDOW,))
        last = bisect_right(named, (lineno + _WINDOW + 1,))
        near = [(abs(at - lineno), at, name, text) for at, name, text in named[first:last]]
        if not near:
            continue
        _, at, name, text = min(near)
        if name in seen or loaded.get(name, 0) > lineno:
            continue
        seen.add(name)
        result.failures.append(_MLServerFailure(log, lineno, name, _cause_text(line), (at, text)))
    return result


def _is_context(line: str) -> bool:
    image_tarball = _IMAGE_TARBALL.search(line)
    if image_tarball is not None:
        return image_tarball.group(1) != _IMAGE_DEFAULT_TARBALL
    return any(rule.search(line) for rule in (_CONDA_UNPACK, _MISMATCH, _UNINSTALLED))


def _cause_text(line: str) -> str:
    """The line from its exception or logger level on (`ModuleNotFoundError: No module named 'x'`)."""
    text = line.strip()
    level = text.find(" ERROR - ")
    return text[level + len(" ERROR - ") :] if level >= 0 else text


def _mlserver_evidence(
    case: LoadCase, servers: list[_MLServerLog], modules: list[str], tarballs: list[str]
) -> list[tuple[str, str]]:
    """MLServer's own lines for this model: the last missing-module (or tarball) line naming what the model lacks,
    or attributed to it, in the pods whose agent failed (else the namespace's), and the context lines of those logs."""
    found: list[tuple[str, str]] = []
    for server in servers:
        log = server.log
        if log.namespace != case.namespace or (case.pods and log.pod not in case.pods):
            continue
        mine = [f for f in server.failures if split_versioned(f.served_name)[0] == case.name]
        wanted = [
            (lineno, line)
            for lineno, line in server.cause_lines
            if any(f"'{name}'" in line for name in modules) or any(path in line for path in tarballs)
        ]
        if mine:
            at, text = mine[0].named_at
            found.append((log.where(at), evidence_line(text.strip())))
            if at != mine[0].lineno:
                found.append((log.where(mine[0].lineno), evidence_line(mine[0].text)))
        elif wanted:
            found.append((log.where(wanted[-1][0]), evidence_line(_cause_text(wanted[-1][1]))))
        else:
            continue
        for lineno, line in server.context[:3]:
            found.append((log.where(lineno), evidence_line(line.strip())))
    return found[:6]


def _image_evidence(snap: Snapshot, case: LoadCase) -> Iterator[Evidence]:
    """The image of the MLServer container that lacks the module, from the Pods whose logs show the failure."""
    for pod_name in sorted(case.pods)[:2]:
        pod = snap.get("Pod", case.namespace, pod_name)
        if pod is None:
            continue
        for index, item in enumerate(as_list(pod.spec.get("containers"))):
            container = as_mapping(item)
            if container.get("name") == "mlserver" and container.get("image"):
                yield Evidence(
                    pod.field_where(f".spec.containers[{index}].image"), f"mlserver image {container.get('image')}"
                )


# --- KServe ------------------------------------------------------------------------------------------------------

# In a KServe pod the server is the `kserve-container` (MLServer's runtime, kserve/kserve aaac4e2
# config/runtimes/kserve-mlserver.yaml, or a Python model server) or the transformer's; a missing module shows as
# the traceback's `ModuleNotFoundError: No module named '<pkg>'` (MLServer#808), the server then either exits (a
# crash loop: the previous run holds the line) or, for MLServer, keeps running without the model. A later
# `Loaded model '<m>' successfully` (MLServer) or `Registering model: <m>` (kserve/model_server.py) clears it.
_KSERVE_NEEDLES = ("No module named", "conda-unpack: error", "Environment tarball not found", "successfully",
                   "Registering model")
_KSERVE_LOADED = re.compile(r"loaded model '[^']+' successfully|registering model: \S+", re.IGNORECASE)


def _kserve_missing(log: LogSource) -> tuple[tuple[int, str] | None, list[tuple[int, str]]]:
    """The last missing-module line not followed by a model load, and the context lines (tarball, conda-unpack)."""
    missing: tuple[int, str] | None = None
    context: list[tuple[int, str]] = []
    for lineno, line in log.lines_mentioning(_KSERVE_NEEDLES):
        if _KSERVE_LOADED.search(line):
            missing = None
        elif _MODULE.search(line):
            missing = (lineno, _cause_text(line))
        elif _is_context(line):
            context.append((lineno, line.strip()))
    return missing, context


def kserve_findings(snap: Snapshot) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for log in [*snap.logs_of(Role.KSERVE_CONTAINER), *snap.logs_of(Role.TRANSFORMER)]:
        owner = isvc_of_log(snap, log)
        name = owner[0] if owner else log.pod
        if (log.namespace, name) in seen:
            continue
        source = log
        missing, context = _kserve_missing(log)
        if missing is None and log.previous_run is not None:
            source = log.previous_run
            missing, context = _kserve_missing(source)
        if missing is None:
            continue
        seen.add((log.namespace, name))
        module = _MODULE.search(missing[1])
        package = module.group(1) if module is not None else "?"
        isvc = snap.get(ISVC, log.namespace, name) if owner else None
        which = "transformer" if log.role is Role.TRANSFORMER else "model server"
        subject = f"InferenceService {name}" if owner else f"pod {log.pod}"
        evidence = [Evidence(source.where(missing[0]), evidence_line(missing[1]))]
        evidence += [Evidence(source.where(lineno), evidence_line(text)) for lineno, text in context[:2]]
        if isvc is not None:
            failure = as_mapping(as_mapping(isvc.status.get("modelStatus")).get("lastFailureInfo"))
            if failure.get("message"):
                evidence.append(Evidence(isvc.field_where(".status.modelStatus.lastFailureInfo"),
                                         evidence_line(f"{failure.get('reason') or ''}: {failure.get('message')}")))
        crashed = " (its previous run, before a restart)" if source is not log else ""
        yield CHECK.finding(
            namespace=log.namespace,
            object=f"InferenceService/{name}" if owner else f"Pod/{log.pod}",
            message=f"The {which} of {subject} cannot import `{package}` (`No module named '{package}'`"
            f"{crashed}): its image lacks a Python dependency of the model, so the model is not served.",
            evidence=evidence,
            fix="Use a runtime image that has the package (a custom ServingRuntime or predictor container image), or "
            "ship a conda-pack environment tarball with the model for MLServer (environment_tarball in "
            "model-settings.json).",
        )
