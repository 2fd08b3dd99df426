"""MT108 ready-but-not-served: a Model or Experiment says Ready, yet its namespace's Envoy has no cluster for it or no
agent of the namespace ever loaded it, so the Ready status is stale and requests cannot be served. A recorded request
shows it too: Envoy routed it (`x-seldon-route`) and the agent answered `404 page not found` or MLServer `Model …
not found` (gRPC NOT_FOUND), or Envoy had no cluster for the route (503, flag NC)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.routing import (
    SELDON_MODEL,
    STICKY_HEADER,
    lua_effective_headers,
    object_of_route_value,
    route_models,
    unversioned,
)
from mlops_trace.analysis.seldon import is_ready, iter_weighted_candidates, server_pods
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import EnvoySource, Existence, LogSource, RequestRecord, Snapshot

CHECK = make_check(
    id="MT108",
    slug="ready-but-not-served",
    title="Model or Experiment is Ready but nothing serves it",
    severity=Severity.CRITICAL,
    requires=("kube:Model|kube:Experiment", "envoy:config_dump|logs:agent|requests"),
    reads=("kube:Namespace", "kube:Pipeline", "kube:Pod", "kube:SeldonRuntime", "kube:Server"),
    playbook="models-not-loading",
    fix="Find which scheduler owns the namespace (MT101/MT103/MT104): the one the controller reports to is not the one "
    "Envoy and the agents listen to. Once one scheduler holds the models, re-apply them (or restart the controller) "
    "so they are loaded and their clusters pushed to Envoy.",
    explained_by=("MT101", "MT103", "MT104"),
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
    findings = {finding.object: finding for finding in _from_status(snap)}
    for ref, (obj, records) in _unserved_requests(snap).items():
        evidence = [Evidence(record.display, _describe(record)) for record in records[:_SAMPLES]]
        known = findings.get(ref)
        if known is not None:
            findings[ref] = replace(known, evidence=(*known.evidence, *evidence))
        else:
            findings[ref] = _request_finding(ref, obj, records, evidence)
    yield from findings.values()


def _from_status(snap: Snapshot) -> Iterator[Finding]:
    """Ready objects that the namespace's Envoy clusters or agent logs show are not served."""
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
    if undecided and not any(_unserved_shape(record) is not None for record in snap.requests):
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


# --- recorded requests -------------------------------------------------------------------------------------------

_SAMPLES = 3


def _unserved_shape(record: RequestRecord) -> str | None:
    """What the answer to a recorded request says when Envoy routed it but nothing served the model; None otherwise."""
    routed = STICKY_HEADER in record.response_headers
    body = record.body.lower()
    if record.protocol == "grpc":
        return "the agent or MLServer answered NOT_FOUND" if (record.grpc_status or "").upper() == "NOT_FOUND" else None
    if record.status == 404 and routed and "404 page not found" in body:
        return "the agent answered `404 page not found`: it does not have the model loaded"
    if record.status == 404 and routed and "not found" in body:
        return "MLServer answered that it does not know the model"
    if record.status is not None and 500 <= record.status < 600 and "NC" in record.envoy_flags:
        return "Envoy has no cluster for the route (flag NC)"
    return None


def _served_object(record: RequestRecord) -> str | None:
    """`Kind/name` a recorded request was served for: the model its `x-seldon-route` names, else its route value."""
    served = route_models(record.response_headers.get(STICKY_HEADER))
    if served:
        return f"Model/{unversioned(served[0])}"
    path = record.path[record.path.find("/v2/") :] if "/v2/" in record.path else record.path
    value = lua_effective_headers(path, record.headers, record.protocol == "grpc").get(SELDON_MODEL)
    return object_of_route_value(value) if value else None


def _unserved_requests(snap: Snapshot) -> dict[str, tuple[KubeObject | None, list[RequestRecord]]]:
    """Objects that recorded requests reached but nothing served, when they say Ready (or the input cannot tell):
    one that exists and is not Ready is another check's (unschedulable, failed to load)."""
    found: dict[str, tuple[KubeObject | None, list[RequestRecord]]] = {}
    for record in snap.requests:
        if _unserved_shape(record) is None:
            continue
        ref = _served_object(record)
        if ref is None:
            continue
        kind, _, name = ref.partition("/")
        namespaces: list[str | None] = [record.namespace] if record.namespace else [*snap.seldon_namespaces()] or [None]
        obj = next((o for ns in namespaces if (o := snap.get(kind, ns, name)) is not None), None)
        if obj is not None and is_ready(obj) is not True:
            continue
        if obj is None and all(snap.existence(kind, ns, name) is Existence.ABSENT for ns in namespaces if ns):
            continue
        found.setdefault(ref, (obj, []))[1].append(record)
    return found


def _describe(record: RequestRecord) -> str:
    outcome = record.grpc_status if record.protocol == "grpc" else record.status
    route = record.response_headers.get(STICKY_HEADER)
    routed = f", {STICKY_HEADER}: {route}" if route else ""
    body = f", body {record.body.strip()[:80]!r}" if record.body.strip() else ""
    return evidence_line(f"{record.method} {record.path} -> {outcome}{routed}{body}")


def _request_finding(
    ref: str, obj: KubeObject | None, records: list[RequestRecord], evidence: list[Evidence]
) -> Finding:
    shape = _unserved_shape(records[0]) or ""
    more = f" (showing {_SAMPLES})" if len(records) > _SAMPLES else ""
    what = ref.replace("/", " ", 1)
    ready = f"{what} is Ready, but" if obj is not None else f"{what} (not in the input, so its status is unknown):"
    status = [Evidence(obj.field_where(".status.conditions"), "Ready=True")] if obj is not None else []
    namespace = obj.namespace if obj is not None else records[0].namespace
    return CHECK.finding(
        namespace=namespace,
        object=ref,
        message=f"{ready} {len(records)} request(s){more} reached it through Envoy and failed: {shape}",
        evidence=[*status, *evidence],
    )


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
