"""MT108 ready-but-not-served: a Model or Experiment says Ready, yet its namespace's Envoy has no cluster for it or no
agent of the namespace ever loaded it, so the Ready status is stale and requests cannot be served."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.seldon import is_ready, iter_weighted_candidates, server_pods
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import EnvoySource, LogSource, Snapshot

CHECK = make_check(
    id="MT108",
    slug="ready-but-not-served",
    title="Model or Experiment is Ready but nothing serves it",
    severity=Severity.CRITICAL,
    requires=("kube:Model|kube:Experiment", "envoy:config_dump|logs:agent"),
    playbook="models-not-loading",
    fix="Find which scheduler owns the namespace (MT101/MT103/MT104): the one the controller reports to is not the one "
    "Envoy and the agents listen to. Once one scheduler holds the models, re-apply them (or restart the controller) "
    "so they are loaded and their clusters pushed to Envoy.",
)

_LOADED = re.compile(r"\bload model (\S+):(\d+) success", re.IGNORECASE)
_SUBSCRIBED = "subscribed to scheduler"
_CONNECTING = "connecting (non-blocking) to scheduler"
_LOST = ("scheduler not ready", "subscription ended", "subscribe ended", "event recv failed")


@dataclass(frozen=True)
class _AgentView:
    """What the agent logs of one namespace prove; `loaded` spans every agent log of the input."""

    judged: bool
    why_not: str
    logs: tuple[LogSource, ...]
    subscribed_at: tuple[tuple[LogSource, int], ...]


def run(snap: Snapshot) -> Iterator[Finding]:
    targets = _ready_targets(snap)
    if not targets:
        return
    loaded = _loaded_models(snap)
    undecided: list[str] = []
    by_namespace: dict[str, list[tuple[KubeObject, list[str]]]] = {}
    for obj, models in targets:
        by_namespace.setdefault(obj.namespace or "", []).append((obj, models))
    served = _ClusterModels()
    for namespace in sorted(by_namespace):
        envoys = [e for e in snap.envoy_configs(namespace) if e.config is not None and e.config.clusters]
        agents = _agent_view(snap, namespace)
        for obj, models in by_namespace[namespace]:
            if not envoys and not agents.judged:
                undecided.append(f"{obj.ref} in {namespace} ({agents.why_not})")
                continue
            evidence: list[Evidence] = []
            reasons: list[str] = []
            for envoy in envoys:
                missing = [m for m in models if not served.has_cluster(envoy, m)]
                if missing:
                    reasons.append(f"Envoy {envoy.pod} has no cluster for {', '.join(missing)}")
                    evidence.append(_cluster_evidence(envoy, missing))
            if agents.judged:
                unloaded = [m for m in models if m not in loaded]
                if unloaded:
                    reasons.append(f"no agent logged `Load model {unloaded[0]}:<version> success`")
                    evidence += _agent_evidence(agents, unloaded)
            if reasons:
                yield _finding(obj, models, reasons, evidence)
    if undecided:
        raise SkipCheck(
            "no Envoy config_dump with clusters and no agent logs covering the agents' life for "
            + ", ".join(undecided[:5])
        )


def _ready_targets(snap: Snapshot) -> list[tuple[KubeObject, list[str]]]:
    """Ready Models (themselves) and Ready model Experiments (their candidates)."""
    targets: list[tuple[KubeObject, list[str]]] = []
    for model in sorted(snap.objects_of("Model"), key=lambda o: (o.namespace or "", o.name)):
        if is_ready(model) is True:
            targets.append((model, [model.name]))
    for exp in sorted(snap.objects_of("Experiment"), key=lambda o: (o.namespace or "", o.name)):
        if is_ready(exp) is not True or str(exp.spec.get("resourceType") or "model").lower() != "model":
            continue
        candidates = list(dict.fromkeys(name for name, _ in iter_weighted_candidates(exp)))
        if candidates:
            targets.append((exp, candidates))
    return targets


def _finding(obj: KubeObject, models: list[str], reasons: list[str], evidence: list[Evidence]) -> Finding:
    what = f"Model {obj.name}" if obj.kind == "Model" else f"Experiment {obj.name} (candidates {', '.join(models)})"
    ready = obj.condition("Ready") or {}
    since = f" since {ready.get('lastTransitionTime')}" if ready.get("lastTransitionTime") else ""
    message = f"{what} is Ready{since}, but " + "; ".join(reasons) + ": requests for it cannot be served."
    status = Evidence(obj.field_where(".status.conditions"), f"Ready=True{since}")
    return CHECK.finding(namespace=obj.namespace, object=obj.ref, message=message, evidence=[status, *evidence[:8]])


# --- Envoy -----------------------------------------------------------------------------------------------------------


# The end of a `<model>_<n>_http|_grpc` cluster name. The digits hold no `_`, so a name has at most one model
# part: cluster_pattern(model) matches the name exactly when the model is the text before this suffix.
_CLUSTER_SUFFIX = re.compile(r"_(\d+)_(http|grpc)$")


class _ClusterModels:
    """The models each Envoy has a cluster for, worked out once per Envoy: matching every cluster name against each
    Model's pattern is quadratic in a 10,000-model dump."""

    def __init__(self) -> None:
        self._by_envoy: dict[int, frozenset[str]] = {}

    def has_cluster(self, envoy: EnvoySource, model: str) -> bool:
        if envoy.config is None:
            return False
        models = self._by_envoy.get(id(envoy))
        if models is None:
            models = frozenset(
                name[: found.start()]
                for name in envoy.config.cluster_names()
                if (found := _CLUSTER_SUFFIX.search(name)) is not None
            )
            self._by_envoy[id(envoy)] = models
        return model in models


def _cluster_evidence(envoy: EnvoySource, missing: list[str]) -> Evidence:
    clusters = envoy.config.clusters if envoy.config is not None else ()
    dynamic = sorted(c.name for c in clusters if c.dynamic)
    shown = ", ".join(dynamic[:6]) + (", …" if len(dynamic) > 6 else "")
    wanted = " / ".join(f"{m}_<n>_http|_grpc" for m in missing)
    where = f"{envoy.config_display} clusters"
    return Evidence(where, f"no cluster {wanted}; dynamic clusters: {shown or 'none'}")


# --- agents ----------------------------------------------------------------------------------------------------------


def _loaded_models(snap: Snapshot) -> set[str]:
    """Models some agent of the input logged a load success for (a shared scheduler may place them anywhere)."""
    loaded: set[str] = set()
    for log in snap.logs_of(Role.AGENT):
        for record in iter_records(log.lines()):
            found = _LOADED.search(record.message or record.raw)
            if found is not None:
                loaded.add(found.group(1))
    return loaded


def _agent_view(snap: Snapshot, namespace: str) -> _AgentView:
    logs = tuple(snap.logs_of(Role.AGENT, namespace))
    if not logs:
        return _AgentView(False, "no agent logs", (), ())
    subscribed: list[tuple[LogSource, int]] = []
    for log in logs:
        first = _first_subscription(log)
        if first is None:
            return _AgentView(False, f"{log.display} does not reach back to the agent's subscription", logs, ())
        subscribed.append((log, first))
    if snap.covers("Pod", namespace):
        logged = {log.pod for log in logs}
        unlogged = [p.name for p in server_pods(snap, namespace) if p.name not in logged]
        if unlogged:
            return _AgentView(False, f"no agent log for {', '.join(unlogged)}", logs, tuple(subscribed))
    return _AgentView(True, "", logs, tuple(subscribed))


def _first_subscription(log: LogSource) -> int | None:
    """Line of the agent's first subscription when the log starts before it. A log that opens with connection
    failures and no `Connecting (non-blocking)` line is a re-subscription after a cut: loads before it are not shown."""
    connecting = False
    lost = False
    for record in iter_records(log.lines()):
        text = (record.message or record.raw).lower()
        if _CONNECTING in text:
            connecting = True
        elif _SUBSCRIBED in text:
            return record.lineno if connecting or not lost else None
        elif any(sign in text for sign in _LOST):
            lost = True
    return None


def _agent_evidence(agents: _AgentView, unloaded: list[str]) -> list[Evidence]:
    evidence = [Evidence(log.where(lineno), "Subscribed to scheduler") for log, lineno in agents.subscribed_at[:3]]
    names = ", ".join(log.display for log in agents.logs[:4])
    evidence.append(Evidence(names, f"no `Load model <m>:<n> success` for {', '.join(unloaded)} in any agent log"))
    return evidence
