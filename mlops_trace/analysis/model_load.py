"""Why a Seldon Model did not load: the agent's load failures that no later load success undid, the error text a
Model's status carries, and the recorded requests that failed for such a Model. MT109 (storage) and MT110 (runtime
dependencies) share these and tell the causes apart by the error text.

Where the text comes from (SeldonIO/seldon-core): the agent logs a failed load as `Failed to handle load model
<m>:<v>` with the cause in logrus' `error` field (scheduler/pkg/agent/agent_svc_manager.go since v2.9, client.go
before, unchanged since v2.0.0) and a success as `Load model <m>:<v> success`. It sends the cause to the scheduler,
whose ModelFailed state carries it as its reason (scheduler/pkg/store/memory_status.go); the controller writes that
into the Model's `ModelReady` condition (operator/scheduler/model.go): since v2.5 (PR #4834) as the condition's
`reason`, with the state (`ModelFailed`) as its `message`; before, as the `reason` alone. Hand-written bundles and
older notes swap the two, so both fields are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.routing import (
    EXPERIMENT_SUFFIX,
    PIPELINE_SUFFIX,
    SELDON_MODEL,
    STICKY_HEADER,
    lua_effective_headers,
    request_succeeded,
    route_models,
    unversioned,
)
from mlops_trace.analysis.seldon import is_ready
from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.parsers.logs import parse_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

# The scheduler's model states (apis/mlops/scheduler/scheduler.proto): a condition field holding one of these is the
# state, not the cause.
MODEL_STATES = frozenset(
    state.lower()
    for state in (
        "ModelProgressing",
        "ModelAvailable",
        "ModelFailed",
        "ModelTerminating",
        "ModelTerminated",
        "ModelTerminateFailed",
        "ScheduleFailed",
        "ModelScaledDown",
        "ModelCreate",
        "ModelTerminate",
        "ModelStateUnknown",
        "UnknownModelState",
    )
)

# A model name is a Kubernetes name (lower-case letters, digits, `-`, `.`); the version is a number.
_FAILED = re.compile(r"failed to handle load model ([A-Za-z0-9][\w.-]*):(\d+)", re.IGNORECASE)
_LOADED = re.compile(r"\bload model ([A-Za-z0-9][\w.-]*):(\d+) success", re.IGNORECASE)
_LOAD_NEEDLES = ("load model",)
_REQUEST_SAMPLES = 3


@dataclass(frozen=True)
class LoadFailure:
    """The last `Failed to handle load model <m>:<v>` of one model in one agent log, not followed there by a load
    success of that version or a later one."""

    log: LogSource
    lineno: int
    model: str
    version: int
    error: str  # the cause the agent logged (its `error` field, else the rest of the line)

    @property
    def namespace(self) -> str:
        return self.log.namespace

    def evidence(self) -> Evidence:
        said = f"Failed to handle load model {self.model}:{self.version}"
        return Evidence(self.log.where(self.lineno), evidence_line(f"{said}: {self.error}" if self.error else said))


def agent_load_failures(snap: Snapshot, cause: Callable[[str], bool]) -> list[LoadFailure]:
    """Load failures of every agent log whose cause `cause` accepts, still standing at the end of their log."""
    found: list[LoadFailure] = []
    for log in snap.logs_of(Role.AGENT):
        last: dict[str, LoadFailure] = {}
        for lineno, line in log.lines_mentioning(_LOAD_NEEDLES):
            record = parse_line(lineno, line)
            text = record.message or record.raw
            failed = _FAILED.search(text)
            if failed is not None:
                error = record.fields.get("error") or record.fields.get("err") or text[failed.end() :].strip(" :")
                last[failed.group(1)] = LoadFailure(log, lineno, failed.group(1), int(failed.group(2)), error)
                continue
            loaded = _LOADED.search(text)
            if loaded is not None:
                standing = last.get(loaded.group(1))
                if standing is not None and int(loaded.group(2)) >= standing.version:
                    del last[loaded.group(1)]
        found += [failure for _, failure in sorted(last.items()) if cause(failure.error)]
    return found


def model_of_failure(snap: Snapshot, namespace: str | None, name: str) -> tuple[KubeObject | None, bool]:
    """The Model a load failure (or an MLServer line) is about, and whether it still counts: not when that Model is
    Ready now (the failure is history), nor when it is gone from a namespace whose Models were collected."""
    model = snap.get("Model", namespace, name)
    if model is not None:
        return model, is_ready(model) is not True
    return None, not snap.covers("Model", namespace)


@dataclass(frozen=True)
class FailedCondition:
    """A `ModelReady`/`Ready` condition that is not True and carries an error text besides the state."""

    model: KubeObject
    index: int
    type: str
    state: str  # the field that holds the state (`ModelFailed`), or ""
    text: str  # the cause

    def evidence(self) -> Evidence:
        state = f" {self.state}" if self.state else ""
        return Evidence(
            self.model.field_where(f".status.conditions[{self.index}]"),
            evidence_line(f"{self.type}=False{state}: {self.text}"),
        )


def failed_condition(model: KubeObject, cause: Callable[[str], bool]) -> FailedCondition | None:
    """The Model's not-True `ModelReady` (else `Ready`) condition whose error text `cause` accepts."""
    found: dict[str, FailedCondition] = {}
    for index, item in enumerate(as_list(model.status.get("conditions"))):
        cond = as_mapping(item)
        kind = str(cond.get("type") or "")
        if kind not in ("ModelReady", "Ready") or kind in found or str(cond.get("status", "")).lower() == "true":
            continue
        fields = [str(cond.get(key) or "").strip() for key in ("reason", "message")]
        states = [f for f in fields if f.lower() in MODEL_STATES]
        causes = [f for f in fields if f and f.lower() not in MODEL_STATES]
        text = " ".join(causes)
        if text and cause(text):
            found[kind] = FailedCondition(model, index, kind, states[0] if states else "", text)
    return found.get("ModelReady") or found.get("Ready")


# --- recorded requests -----------------------------------------------------------------------------------------


def _requested_model(record: RequestRecord) -> str | None:
    """The model a recorded request was for: the one its `x-seldon-route` answer names, else its `seldon-model`
    route value (as Seldon's Lua filter sets it from the path), without the `_<version>` of a direct call."""
    served = route_models(record.response_headers.get(STICKY_HEADER))
    if served:
        return unversioned(served[0])
    path = record.path[record.path.find("/v2/") :] if "/v2/" in record.path else record.path
    value = lua_effective_headers(path, record.headers, record.protocol == "grpc").get(SELDON_MODEL)
    if not value or value.endswith((EXPERIMENT_SUFFIX, PIPELINE_SUFFIX)):
        return None
    return value


def failed_requests(snap: Snapshot, namespace: str | None, name: str) -> list[RequestRecord]:
    """Recorded requests for Model `name` (of `namespace`, when the record says where it was aimed) that failed."""
    found: list[RequestRecord] = []
    for record in snap.requests:
        if request_succeeded(record) or (record.namespace and namespace and record.namespace != namespace):
            continue
        wanted = _requested_model(record)
        if wanted is not None and (wanted == name or unversioned(wanted) == name):
            found.append(record)
    return found


def request_evidence(records: list[RequestRecord]) -> Iterator[Evidence]:
    """One line per failed request (the first few), citing the record so `request` links it to the finding."""
    for record in records[:_REQUEST_SAMPLES]:
        outcome = record.grpc_status if record.protocol == "grpc" else record.status
        route = record.response_headers.get(STICKY_HEADER)
        routed = f", {STICKY_HEADER}: {route}" if route else ""
        flags = f", Envoy flags {','.join(record.envoy_flags)}" if record.envoy_flags else ""
        detail = record.grpc_message or record.body.strip()
        said = f", {detail[:80]!r}" if detail else ""
        yield Evidence(
            record.display, evidence_line(f"{record.method} {record.path} -> {outcome}{routed}{flags}{said}")
        )


def short(text: str, width: int = 120) -> str:
    return evidence_line(text, width)


@dataclass
class LoadCase:
    """One Model that did not load for a cause a check names: what said so (status, agent lines) and where."""

    namespace: str | None
    name: str
    model: KubeObject | None
    causes: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    pods: set[str] = field(default_factory=set)


def load_cases(snap: Snapshot, cause: Callable[[str], bool]) -> dict[tuple[str | None, str], LoadCase]:
    """Models whose failed condition, or whose agent's standing load failure, says `cause`: the Model's status first,
    then each agent line (with the pod it came from)."""
    cases: dict[tuple[str | None, str], LoadCase] = {}
    for model in sorted(snap.objects_of("Model"), key=lambda m: (m.namespace or "", m.name)):
        cond = failed_condition(model, cause)
        if cond is not None:
            case = cases.setdefault((model.namespace, model.name), LoadCase(model.namespace, model.name, model))
            case.causes.append(cond.text)
            case.evidence.append(cond.evidence())
    for failure in agent_load_failures(snap, cause):
        target, counts = model_of_failure(snap, failure.namespace, failure.model)
        if not counts:
            continue
        key = (failure.namespace, failure.model)
        case = cases.setdefault(key, LoadCase(failure.namespace, failure.model, target))
        case.causes.append(failure.error)
        case.evidence.append(failure.evidence())
        case.pods.add(failure.log.pod)
    return cases
