"""MT106 model-unschedulable: a Model that is not Ready because the scheduler finds no Server for it (its condition
or the scheduler log says so), or whose requirements no Server of its namespace offers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.seldon import is_ready
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import LogRecord, Needles, parse_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT106",
    slug="model-unschedulable",
    title="Model cannot be scheduled on any Server",
    severity=Severity.CRITICAL,
    requires=("kube:Model|logs:scheduler",),
    reads=("kube:Deployment", "kube:Server", "kube:ServerConfig", "kube:StatefulSet"),
    playbook="models-not-loading",
    fix="Give the Model requirements a Server offers (or add them to the Server's capabilities/extraCapabilities), "
    "fix spec.server, and make sure that Server's agents are subscribed to the scheduler.",
    explained_by=("MT111", "MT105"),
)

CAPABILITIES_ENV = "SELDON_SERVER_CAPABILITIES"
# The capabilities Seldon's Helm charts give the two stock ServerConfigs.
DEFAULT_CAPABILITIES: Mapping[str, tuple[str, ...]] = {
    "mlserver": (
        "mlserver",
        "alibi-detect",
        "alibi-explain",
        "huggingface",
        "lightgbm",
        "mlflow",
        "python",
        "sklearn",
        "spark-mlib",
        "xgboost",
    ),
    "triton": ("triton", "dali", "fil", "onnx", "openvino", "python", "pytorch", "tensorflow", "tensorrt"),
}
_MESSAGE_LIMIT = 200

_CONDITION_SIGNS = re.compile(
    r"schedulefailed|no matching server|failed to schedule|requirementsreplicafilter", re.IGNORECASE
)
_LOG_FAILURE = re.compile(r"failed to schedule model|no matching server", re.IGNORECASE)
# ≤v2.6 writes `failed to schedule model <name>. [<filter trail>]` (scheduler/pkg/scheduler/scheduler.go), v2.9+
# `Failed to schedule model <name>` (scheduler/pkg/server/server.go): a name may hold dots but never ends in one.
_LOG_NAMED = re.compile(r"failed to schedule model ([A-Za-z0-9](?:[\w.-]*[\w-])?)", re.IGNORECASE)
_LOG_PROGRESS = re.compile(
    r"sending load model request for ([A-Za-z0-9][\w.-]*)|scheduled model onto server"
    r"|updating state for model ([A-Za-z0-9][\w.-]*) to (?:loaded|available)\b",
    re.IGNORECASE,
)
# Text _LOG_FAILURE and _LOG_PROGRESS cannot match without: only lines holding one are read.
_FAILURE_NEEDLES = ("failed to schedule model", "no matching server")
_PROGRESS_NEEDLES = ("sending load model request for ", "scheduled model onto server", "updating state for model ")
_NAMES_CHECKED_BY_TEXT = 64  # past this many failed models, parse every progress line instead


@dataclass
class _Case:
    model: KubeObject | None
    namespace: str | None
    name: str
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


def run(snap: Snapshot) -> Iterator[Finding]:
    cases: dict[tuple[str | None, str], _Case] = {}
    undecided: list[str] = []
    for model in sorted(snap.objects_of("Model"), key=lambda m: (m.namespace or "", m.name)):
        if is_ready(model) is True:
            continue
        _condition_rule(model, cases)
        if _static_rule(snap, model, cases) is None and not model.conditions():
            undecided.append(f"{model.namespace}/{model.name}")
    for log in snap.logs_of(Role.SCHEDULER):
        _log_rule(snap, log, cases)
    if not cases and undecided:
        raise SkipCheck(
            "Models without status (" + ", ".join(undecided[:5]) + ") and no Servers, server workloads or scheduler "
            "logs of their namespace to match their requirements against"
        )
    for case in cases.values():
        yield _finding(case)


def _case(
    cases: dict[tuple[str | None, str], _Case], model: KubeObject | None, namespace: str | None, name: str
) -> _Case:
    key = (namespace, name)
    if key not in cases:
        cases[key] = _Case(model, namespace, name)
    return cases[key]


def _finding(case: _Case) -> Finding:
    state = "is not Ready" if case.model is not None else "is reported"
    message = f"Model {case.name} {state} and cannot be scheduled: " + "; ".join(dict.fromkeys(case.reasons)) + "."
    return CHECK.finding(
        namespace=case.namespace, object=f"Model/{case.name}", message=message, evidence=case.evidence[:8]
    )


# --- status conditions -----------------------------------------------------------------------------------------------


def _condition_rule(model: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> None:
    for index, cond in enumerate(as_list(model.status.get("conditions"))):
        item = as_mapping(cond)
        if item.get("type") not in ("ModelReady", "Ready") or str(item.get("status", "")).lower() == "true":
            continue
        reason = str(item.get("reason") or "")
        detail = str(item.get("message") or "")
        if not (_CONDITION_SIGNS.search(reason) or _CONDITION_SIGNS.search(detail)):
            continue
        said = " ".join(part for part in (reason, detail) if part)
        case = _case(cases, model, model.namespace, model.name)
        case.reasons.append(f"its {item.get('type')} condition says `{_short(said, 120)}`")
        where = model.field_where(f".status.conditions[{index}]")
        case.evidence.append(Evidence(where, _short(f"{item.get('type')}=False reason={reason!r} message={detail!r}")))
        return


# --- requirements against capabilities -------------------------------------------------------------------------------


def _static_rule(snap: Snapshot, model: KubeObject, cases: dict[tuple[str | None, str], _Case]) -> bool | None:
    """True when a finding was added, False when some Server fits, None when the input cannot tell."""
    namespace = model.namespace
    servers = snap.objects_of("Server", namespace)
    if not servers:
        return None  # servers elsewhere (a shared scheduler) or not collected: cannot judge here
    requirements = [str(r).strip() for r in as_list(model.spec.get("requirements")) if str(r).strip()]
    wanted_server = model.spec.get("server")
    if isinstance(wanted_server, str) and wanted_server:
        chosen = [s for s in servers if s.name == wanted_server]
        if not chosen:
            if any(s.name == wanted_server for s in snap.objects_of("Server")):
                return None
            case = _case(cases, model, namespace, model.name)
            names = ", ".join(sorted(s.name for s in servers))
            case.reasons.append(f"spec.server names {wanted_server}, which is not a Server of {namespace} ({names})")
            case.evidence.append(Evidence(model.field_where(".spec.server"), f"server: {wanted_server}"))
            return True
        servers = chosen
    if not requirements:
        return False
    offers: list[tuple[KubeObject, frozenset[str], str, str]] = []
    for server in servers:
        found = _capabilities(snap, server)
        if found is None:
            return None
        caps, where, source = found
        if all(r.lower() in caps for r in requirements):
            return False
        offers.append((server, caps, where, source))
    case = _case(cases, model, namespace, model.name)
    listed = ", ".join(requirements)
    case.reasons.append(
        f"its requirements [{listed}] are not all offered by "
        + ("Server " + servers[0].name if len(servers) == 1 else f"any of the {len(servers)} Servers of {namespace}")
    )
    case.evidence.append(Evidence(model.field_where(".spec.requirements"), f"requirements: {listed}"))
    for server, caps, where, source in offers[:5]:
        missing = [r for r in requirements if r.lower() not in caps]
        case.evidence.append(
            Evidence(
                where, f"Server {server.name} offers {', '.join(sorted(caps))} ({source}); lacks {', '.join(missing)}"
            )
        )
    return True


def _capabilities(snap: Snapshot, server: KubeObject) -> tuple[frozenset[str], str, str] | None:
    """Capabilities a Server's agents announce, where they come from, or None when the input cannot tell."""
    extra = _names(server.spec.get("extraCapabilities"))
    replaced = _names(server.spec.get("capabilities"))
    if replaced:
        return frozenset(replaced), server.field_where(".spec.capabilities"), "spec.capabilities"
    for kind in ("StatefulSet", "Deployment"):
        workload = snap.get(kind, server.namespace, server.name)
        found = _env_capabilities(workload) if workload is not None else None
        if found is not None and workload is not None:
            # The operator already appended extraCapabilities to the workload's env.
            return frozenset(found[1]) | extra, workload.field_where(found[0]), f"{workload.ref} agent env"
    config_name = str(server.spec.get("serverConfig") or "")
    configs = [c for c in snap.objects_of("ServerConfig") if c.name == config_name]
    for config in configs:
        found = _env_capabilities(config, pod_spec=as_mapping(config.spec.get("podSpec")))
        if found is not None:
            return frozenset(found[1]) | extra, config.field_where(found[0]), f"ServerConfig {config_name}"
    if config_name in DEFAULT_CAPABILITIES:
        defaults = frozenset(DEFAULT_CAPABILITIES[config_name]) | extra
        return defaults, server.field_where(".spec.serverConfig"), f"Seldon's defaults for serverConfig {config_name}"
    return None


def _env_capabilities(obj: KubeObject, pod_spec: Mapping[str, Any] | None = None) -> tuple[str, list[str]] | None:
    if pod_spec is None:
        spec = as_mapping(as_mapping(obj.spec.get("template")).get("spec"))
        prefix = ".spec.template.spec"
    else:
        spec = pod_spec
        prefix = ".spec.podSpec"
    for index, item in enumerate(as_list(spec.get("containers"))):
        container = as_mapping(item)
        for pos, env in enumerate(as_list(container.get("env"))):
            entry = as_mapping(env)
            if entry.get("name") == CAPABILITIES_ENV and entry.get("value") is not None:
                return f"{prefix}.containers[{index}].env[{pos}]", sorted(_names(str(entry["value"]).split(",")))
    return None


def _names(value: Any) -> set[str]:
    return {str(v).strip().lower() for v in as_list(value) if str(v).strip()}


# --- scheduler logs --------------------------------------------------------------------------------------------------


def _log_rule(snap: Snapshot, log: LogSource, cases: dict[tuple[str | None, str], _Case]) -> None:
    last_failure: dict[str, tuple[int, str]] = {}
    last_progress: dict[str, int] = {}
    # Progress only matters for a model that failed before, and its line names that model: so the scan looks for
    # failures, and for a failed model's name from its failure on, not for every routine load line.
    needles = Needles(_FAILURE_NEEDLES)
    for lineno, line in log.lines_mentioning(needles):
        if not _may_count(line, last_failure):
            continue
        record = parse_line(lineno, line)
        text = record.message or record.raw
        field_model = record.fields.get("model") or ""
        # ≤v2.6 returns the failure as an error that the caller logs under its own message (`Failed to reschedule
        # model … for server …` in scheduler/pkg/server/server.go, `… from agent starting with state` in
        # scheduler/pkg/agent/server.go), so the failure text is in `error`.
        error = record.fields.get("error") or record.fields.get("err") or ""
        said = text if _LOG_FAILURE.search(text) else error if _LOG_FAILURE.search(error) else ""
        if said and "managed to schedule" not in said.lower():
            named = _LOG_NAMED.search(said)
            name = field_model or (named.group(1) if named and named.group(1).lower() != "as" else "")
            if name:
                last_failure[name] = (record.lineno, _describe(record))
                _follow(needles, name, len(last_failure))
            continue
        progress = _LOG_PROGRESS.search(text)
        if progress is not None:
            name = field_model or progress.group(1) or progress.group(2) or ""
            if name:
                last_progress[name] = record.lineno
    for name, (lineno, text) in sorted(last_failure.items()):
        if last_progress.get(name, 0) > lineno:
            continue  # scheduled later on
        target = _model_for(snap, log, name)
        if target is False:
            continue
        model = target if isinstance(target, KubeObject) else None
        namespace = model.namespace if model is not None else log.namespace
        case = _case(cases, model, namespace, name)
        case.reasons.append(f"scheduler {log.pod} logs `{_short(text, 120)}`")
        case.evidence.append(Evidence(log.where(lineno), text))


def _follow(needles: Needles, name: str, failed: int) -> None:
    """Have the scan return the lines that may say `name` was scheduled after all."""
    if failed > _NAMES_CHECKED_BY_TEXT:
        for needle in _PROGRESS_NEEDLES:  # too many names to look for one by one: every progress line
            needles.add(needle)
    elif name.isascii() and "\n" not in name and "\r" not in name:
        needles.add(name)  # (a line naming a non-ASCII name is returned anyway: its bytes are not ASCII)


def _may_count(line: str, failed: Mapping[str, object]) -> bool:
    """Whether a candidate line can change the outcome. A progress line only matters after a failure of its model
    (an earlier one is older than every failure it could excuse), and then its text holds that model's name; lines
    that may be failures, and lines whose parsed text may differ from their bytes, are always read. Parsing only
    these keeps a scheduler log of routine load lines at the cost of the scan."""
    lowered = line.lower()
    if any(needle in lowered for needle in _FAILURE_NEEDLES):
        return True
    if not line.isascii() or "\\" in line or "\x1b" in line or len(failed) > _NAMES_CHECKED_BY_TEXT:
        return True
    return any(name in line for name in failed)


def _model_for(snap: Snapshot, log: LogSource, name: str) -> KubeObject | bool | None:
    """The Model a scheduler log line is about; False when it is Ready (history), None when not collected."""
    same = snap.get("Model", log.namespace, name)
    candidates = [same] if same is not None else [m for m in snap.objects_of("Model") if m.name == name]
    if candidates:
        pending = [m for m in candidates if is_ready(m) is not True]
        return pending[0] if pending else False
    if snap.covers("Model", log.namespace):
        return False  # the model is gone: the log line is history
    return None


def _describe(record: LogRecord) -> str:
    text = record.message or record.raw
    model = record.fields.get("model")
    if model and model not in text:
        text = f"{text} (model {model})"
    error = record.fields.get("error") or record.fields.get("err")
    if error:
        text = f"{text}: {error}"
    return _short(text)


def _short(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    return evidence_line(text, limit)
