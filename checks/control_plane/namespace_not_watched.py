"""MT107 namespace-not-watched: Seldon resources sit in a namespace that no controller manager watches, so nobody
hands them to a scheduler and they never get a status."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.controller_scope import controller_scope
from mlops_trace.analysis.seldon import controller_workloads
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import iter_records
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import SELDON_KINDS, Snapshot

CHECK = make_check(
    id="MT107",
    slug="namespace-not-watched",
    title="No controller watches a namespace that holds Seldon resources",
    severity=Severity.CRITICAL,
    requires=("kube:Deployment",),
    reads=("kube:Experiment", "kube:Model", "kube:Pipeline", "kube:SeldonRuntime", "kube:Server", "logs:controller"),
    playbook="scheduler-connectivity",
    fix="Run the controller clusterwide (controller.clusterwide=true, --clusterwide=true) and list the namespace in "
    "--watch-namespaces (or leave it empty for all), or install a controller in that namespace.",
)

_MESSAGE_LIMIT = 200


def run(snap: Snapshot) -> Iterator[Finding]:
    controllers = controller_workloads(snap)
    if not controllers:
        raise SkipCheck("no Seldon controller manager Deployment among the objects, so its watch scope is unknown")
    scopes = [controller_scope(dep) for dep in controllers]
    log_evidence = _log_evidence(snap)
    undecided: list[str] = []
    for namespace in snap.seldon_namespaces():
        verdicts = [scope.watches(namespace) for scope in scopes]
        if any(v is True for v in verdicts):
            continue
        if any(v is None for v in verdicts):
            undecided.append(namespace)
            continue
        held = _held_resources(snap, namespace)
        message = (
            f"Namespace {namespace} holds {held}, but no controller watches it ("
            + "; ".join(scope.describe() for scope in scopes)
            + "): these resources are never sent to a scheduler and get no status."
        )
        evidence = [e for scope in scopes for e in scope.evidence] + log_evidence
        yield CHECK.finding(namespace=namespace, object=f"Namespace/{namespace}", message=message, evidence=evidence)
    if undecided:
        reasons = "; ".join(scope.unknown for scope in scopes if scope.unknown)
        raise SkipCheck(f"cannot tell whether {', '.join(undecided)} is watched: {reasons}")


def _held_resources(snap: Snapshot, namespace: str) -> str:
    parts = []
    for kind in SELDON_KINDS:
        names = sorted(o.name for o in snap.objects_of(kind, namespace))
        if names:
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            parts.append(f"{len(names)} {kind}(s) ({shown})")
    return ", ".join(parts)


# --- reading a controller's flags ------------------------------------------------------------------------------------


def _log_evidence(snap: Snapshot) -> list[Evidence]:
    """The controller's own startup lines about its watch scope, when its log is in the input."""
    evidence: list[Evidence] = []
    for log in snap.logs_of(Role.CONTROLLER):
        last = None
        for record in iter_records(log.lines()):
            text = record.message or record.raw
            lowered = text.lower()
            if "watching namespace" in lowered or "clusterwide mode enabled" in lowered:
                extra = record.fields.get("namespace") or record.fields.get("namespaces") or ""
                last = (record.lineno, f"{text} {extra}".strip())
        if last is not None:
            lineno, text = last
            evidence.append(Evidence(log.where(lineno), evidence_line(text, _MESSAGE_LIMIT)))
    return evidence
