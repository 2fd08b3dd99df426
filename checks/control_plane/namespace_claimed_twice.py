"""MT113 namespace-claimed-twice: two running controller managers both watch a namespace that holds Seldon resources,
so both reconcile its Models, Servers and Experiments and fight over their status and the scheduler's state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.controller_scope import ControllerScope, controller_scope
from mlops_trace.analysis.seldon import controller_workloads
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers.logs import parse_line
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import SELDON_KINDS, Snapshot

CHECK = make_check(
    id="MT113",
    slug="namespace-claimed-twice",
    title="Two controller managers watch the same Seldon namespace",
    severity=Severity.CRITICAL,
    requires=("kube:Deployment",),
    reads=("kube:Experiment", "kube:Model", "kube:Pipeline", "kube:SeldonRuntime", "kube:Server", "logs:controller"),
    playbook="controller-scope",
    fix="Keep one controller per namespace: give the clusterwide one a --watch-namespaces list that leaves out the "
    "namespaces another controller owns, or remove (scale to 0) the extra controller.",
)

# controller-runtime's line for a failed reconcile (pkg/internal/controller/controller.go `reconcileHandler`); its
# builder adds `namespace` and `name` of the object to the logger.
_RECONCILER_ERROR = "reconciler error"


@dataclass(frozen=True)
class _ReconcileError:
    kind: str
    namespace: str
    name: str
    where: str
    text: str


def run(snap: Snapshot) -> Iterator[Finding]:
    controllers = controller_workloads(snap)
    if not controllers:
        raise SkipCheck("no Seldon controller manager Deployment among the objects, so nobody's watch scope is known")
    scopes = [s for s in (controller_scope(dep) for dep in controllers) if s.running]
    if len(scopes) < 2:
        return  # one running controller (or none) cannot claim a namespace twice
    errors = _reconcile_errors(snap, [s.controller for s in scopes])
    undecided: list[str] = []
    found = False
    for namespace in snap.seldon_namespaces():
        verdicts = [(scope, scope.watches(namespace)) for scope in scopes]
        claimants = [scope for scope, verdict in verdicts if verdict is True]
        maybe = [scope for scope, verdict in verdicts if verdict is None]
        if len(claimants) < 2:
            if len(claimants) + len(maybe) >= 2:
                undecided.append(namespace)
            continue
        found = True
        yield _finding(snap, namespace, claimants, errors)
    if undecided and not found:
        reasons = "; ".join(dict.fromkeys(scope.unknown for scope in scopes if scope.unknown))
        raise SkipCheck(f"cannot tell whether {', '.join(undecided)} is watched twice: {reasons}")


def _finding(
    snap: Snapshot, namespace: str, claimants: list[ControllerScope], errors: dict[str, list[_ReconcileError]]
) -> Finding:
    held = _held(snap, namespace)
    names = " and ".join(f"{s.controller.ref} ({s.controller.namespace})" for s in claimants)
    message = (
        f"Namespace {namespace} holds {held} and is watched by {len(claimants)} running controller managers, "
        f"{names}: " + "; ".join(s.describe() for s in claimants) + ". Both reconcile the same resources, send them "
        "to the scheduler and overwrite each other's status."
    )
    evidence: list[Evidence] = [e for scope in claimants for e in scope.evidence]
    shared = _shared_errors(namespace, claimants, errors)
    if shared:
        kind, name = shared[0]
        message += f" Both controllers log `Reconciler error` for {kind} {namespace}/{name}."
        for scope in claimants:
            for error in errors.get(_key(scope.controller), []):
                if (error.kind, error.name) == shared[0] and error.namespace == namespace:
                    evidence.append(Evidence(error.where, error.text))
                    break
    return CHECK.finding(namespace=namespace, object=f"Namespace/{namespace}", message=message, evidence=evidence)


def _held(snap: Snapshot, namespace: str) -> str:
    parts = []
    for kind in SELDON_KINDS:
        names = sorted(o.name for o in snap.objects_of(kind, namespace))
        if names:
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            parts.append(f"{len(names)} {kind}(s) ({shown})")
    return ", ".join(parts)


def _key(dep: KubeObject) -> str:
    return f"{dep.namespace}/{dep.name}"


def _reconcile_errors(snap: Snapshot, controllers: list[KubeObject]) -> dict[str, list[_ReconcileError]]:
    """`Reconciler error` lines of each controller's logs (a log belongs to the Deployment whose name prefixes its pod
    in the same namespace), by controller."""
    found: dict[str, list[_ReconcileError]] = {}
    for log in snap.logs_of(Role.CONTROLLER):
        owners = [d for d in controllers if d.namespace == log.namespace and log.pod.startswith(d.name + "-")]
        if len(owners) != 1:
            continue
        errors = found.setdefault(_key(owners[0]), [])
        for lineno, line in log.lines_mentioning([_RECONCILER_ERROR]):
            record = parse_line(lineno, line)
            if _RECONCILER_ERROR not in (record.message or record.raw).lower():
                continue
            namespace = record.fields.get("namespace", "")
            name = record.fields.get("name", "")
            kind = record.fields.get("controllerKind", "")
            if namespace and name:
                errors.append(_ReconcileError(kind, namespace, name, log.where(lineno), evidence_line(record.raw)))
    return found


def _shared_errors(
    namespace: str, claimants: list[ControllerScope], errors: dict[str, list[_ReconcileError]]
) -> list[tuple[str, str]]:
    """(kind, name) of objects of the namespace that two or more claimants fail to reconcile."""
    counts: dict[tuple[str, str], int] = {}
    for scope in claimants:
        seen = {(e.kind, e.name) for e in errors.get(_key(scope.controller), []) if e.namespace == namespace}
        for item in seen:
            counts[item] = counts.get(item, 0) + 1
    return sorted(item for item, count in counts.items() if count >= 2)
