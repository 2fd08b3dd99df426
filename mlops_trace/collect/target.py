"""What a live collection reads and how: the collectors' input (namespaces, kubeconfig and context, timeouts, log
window, Envoy admin endpoints). Every caller of a live read (doctor, collect, smoke, request, alerts) builds one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class LiveTarget:
    """Where and how to read a live cluster (all optional: kubeconfig defaults apply)."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = 10.0
    # The whole live run (every API call, log and Envoy read) ends by then; None: DEFAULT_LIVE_DEADLINE.
    deadline: float | None = None
    since: str | None = None
    tail: int | None = None
    envoy_admin: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def with_default_namespace(target: LiveTarget) -> tuple[LiveTarget, str | None]:
    """kubectl's default scope: with neither -n nor -A, the kubeconfig context's namespace. Returns the target to
    read and the namespace it chose (None when the user named the scope)."""
    if target.namespaces or target.all_namespaces:
        return target, None
    from mlops_trace.collect.client import default_namespace

    namespace = default_namespace(target.kubeconfig, target.context)
    return replace(target, namespaces=(namespace,)), namespace
