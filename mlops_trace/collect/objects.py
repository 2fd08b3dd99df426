"""List the kinds of `kinds.COLLECTED_KINDS` per namespace (`-n`) or cluster-wide (`-A`), as raw API objects.

List items come back without `apiVersion`/`kind` (the List carries them); both are put back on every item, as
`kubectl get -o yaml` does, so the bundle reader sees complete objects. A 404 on a kind = the API is not served
(CRD not installed), a 403 = a missing permission; both are recorded in the Outcome and the run goes on. So is a
list that does not finish within `--request-timeout`; once the run's `--timeout` has passed, no more lists are
started and the kinds left are recorded as not collected.

Two kinds are read with a bound: ConfigMaps only by name (`fieldSelector=metadata.name=seldon-kafka`, never every
ConfigMap; under `-n` also in KServe's and Knative's own namespaces, `kinds.KindSpec.home_namespaces`), and Events at most `EVENTS_PER_NAMESPACE` per namespace, the newest first (a heap of that size is kept
while the pages go by, so memory stays bounded however many Events a namespace holds; how many were left out is
recorded).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_trace.collect.client import ApiStatusError, KubeApi
from mlops_trace.collect.deadline import CallTimedOut, RunDeadlinePassed
from mlops_trace.collect.outcome import AbsentKind, Forbidden, NotCollected, Outcome
from mlops_trace.errors import ClusterError
from mlops_trace.kinds import COLLECTED_KINDS, NAMESPACE_KIND, NEVER_COLLECTED, KindSpec

PAGE_SIZE = 500


@dataclass
class KindObjects:
    spec: KindSpec
    items: list[dict[str, Any]] = field(default_factory=list)


def collect_objects(
    api: KubeApi, namespaces: Sequence[str], all_namespaces: bool, outcome: Outcome
) -> list[KindObjects]:
    """Namespaces first (as objects), then every kind; returns the kinds in a stable order. Once the run's --timeout
    has passed, the kinds not listed yet are recorded as not collected."""
    collected = [_namespaces(api, namespaces, all_namespaces, outcome)]
    for spec in COLLECTED_KINDS:
        if outcome.deadline_passed is not None:
            reason = f"not collected: {outcome.deadline_passed}"
            outcome.add_not_collected(NotCollected(f"kube:{spec.key}", reason, by_deadline=True))
            collected.append(KindObjects(spec))
            continue
        collected.append(_one_kind(api, spec, namespaces, all_namespaces, outcome))
    return collected


def _namespaces(api: KubeApi, namespaces: Sequence[str], all_namespaces: bool, outcome: Outcome) -> KindObjects:
    result = KindObjects(NAMESPACE_KIND)
    complete = True
    if all_namespaces:
        try:
            result.items = _list(api, NAMESPACE_KIND, NAMESPACE_KIND.list_path(None))
        except ApiStatusError as exc:
            complete = _record(exc, NAMESPACE_KIND, None, outcome)
        except (CallTimedOut, RunDeadlinePassed) as exc:
            complete = _cut(exc, NAMESPACE_KIND, None, outcome)
    else:
        for name in namespaces:
            path = f"/api/v1/namespaces/{name}"
            try:
                obj = api.get_json(path)
            except (CallTimedOut, RunDeadlinePassed) as exc:
                complete = _cut(exc, NAMESPACE_KIND, name, outcome)
                if outcome.deadline_passed is not None:
                    break
                continue
            except ApiStatusError as exc:
                if exc.status == 404:
                    outcome.namespaces_not_found.append(name)
                    continue
                complete = False
                if exc.status == 403:
                    outcome.forbidden.append(
                        Forbidden(
                            permission=f"get namespaces {name} (core)",
                            verb="get",
                            resource="namespaces",
                            group="",
                            namespace=name,
                            kind="Namespace",
                            message=exc.message,
                        )
                    )
                    continue
                raise _unexpected(api, exc) from None
            result.items.append(_complete(obj, NAMESPACE_KIND))
    if complete:
        outcome.kinds_listed.append(NAMESPACE_KIND.kind)
    return result


def _one_kind(
    api: KubeApi, spec: KindSpec, namespaces: Sequence[str], all_namespaces: bool, outcome: Outcome
) -> KindObjects:
    result = KindObjects(spec)
    scopes = spec.list_scopes(list(namespaces), all_namespaces)
    complete = True
    for namespace in scopes:
        stop = False
        for name, extra in zip(spec.names or (None,), spec.list_queries(), strict=True):
            try:
                newest = _Newest(spec.keep_newest) if spec.keep_newest is not None else None
                result.items.extend(_list(api, spec, spec.list_path(namespace), extra, newest))
                if newest is not None:
                    for where, count in newest.dropped.items():
                        outcome.objects_dropped[f"{spec.key}/{where}"] = count
            except ApiStatusError as exc:
                complete = _record(exc, spec, namespace, outcome, name) and complete
                if exc.status == 404:
                    stop = True  # the API is not served: other namespaces would say the same
                    break
            except (CallTimedOut, RunDeadlinePassed) as exc:
                complete = _cut(exc, spec, namespace, outcome)
                if outcome.deadline_passed is not None:
                    stop = True
                    break
        if stop:
            break
    if complete:
        outcome.kinds_listed.append(spec.key)
    return result


def _record(
    exc: ApiStatusError, spec: KindSpec, namespace: str | None, outcome: Outcome, name: str | None = None
) -> bool:
    """Record a 403/404; returns False (the kind is not completely listed). Anything else is fatal."""
    if exc.status == 404:
        outcome.absent.append(AbsentKind(spec.key, spec.api_version, spec.crd, exc.path))
        return False
    if exc.status == 403:
        outcome.forbidden.append(
            Forbidden(
                permission=spec.permission(namespace, name=name),
                verb="list",
                resource=spec.plural,
                group=spec.group,
                namespace=namespace,
                kind=spec.key,
                message=exc.message,
            )
        )
        return False
    raise ClusterError(f"listing {spec.resource} ({spec.api_version}) failed: {exc}")


def _cut(exc: CallTimedOut | RunDeadlinePassed, spec: KindSpec, namespace: str | None, outcome: Outcome) -> bool:
    """A list that did not finish in time: the kind is not (completely) collected, and the run goes on with the
    next one (a slow list is a gap, not a broken cluster). Returns False, as `_record` does."""
    if isinstance(exc, RunDeadlinePassed):
        outcome.deadline_passed = str(exc)
        outcome.add_not_collected(NotCollected(f"kube:{spec.key}", exc.not_collected, namespace, by_deadline=True))
        return False
    where = f" in namespace {namespace}" if namespace is not None else ""
    reason = f"not collected: listing {spec.resource}{where}: {exc.detail}"
    outcome.add_not_collected(NotCollected(f"kube:{spec.key}", reason, namespace))
    return False


def _unexpected(api: KubeApi, exc: ApiStatusError) -> ClusterError:
    return ClusterError(f"{api.connection.server}: unexpected answer {exc}")


class _Newest:
    """The newest `keep` objects of each namespace, by their last timestamp, while a list's pages go by."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.heaps: dict[str, list[tuple[float, int, dict[str, Any]]]] = {}
        self.dropped: dict[str, int] = {}
        self._seen = 0

    def add(self, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
        where = str(namespace) if namespace else "-"
        heap = self.heaps.setdefault(where, [])
        self._seen += 1
        entry = (_last_seen(obj), self._seen, obj)
        if len(heap) < self.keep:
            heapq.heappush(heap, entry)
            return
        self.dropped[where] = self.dropped.get(where, 0) + 1
        if self.keep > 0 and entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)

    def reset(self) -> None:
        self.heaps, self.dropped, self._seen = {}, {}, 0

    def items(self) -> list[dict[str, Any]]:
        """Namespace by namespace, each newest first."""
        ordered: list[dict[str, Any]] = []
        for where in sorted(self.heaps):
            ordered += [e[2] for e in sorted(self.heaps[where], key=lambda e: e[:2], reverse=True)]
        return ordered


_EVENT_TIMES = ("eventTime", "lastTimestamp", "firstTimestamp")


def _last_seen(obj: Mapping[str, Any]) -> float:
    """When an Event (or any object) was last seen: the latest of its timestamps, 0 when it has none that parses."""
    candidates: list[Any] = [obj.get(key) for key in _EVENT_TIMES]
    series = obj.get("series")
    if isinstance(series, Mapping):
        candidates.append(series.get("lastObservedTime"))
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        candidates.append(metadata.get("creationTimestamp"))
    latest = 0.0
    for value in candidates:
        if not isinstance(value, str) or not value:
            continue
        try:
            latest = max(latest, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except (ValueError, OverflowError, OSError):
            continue
    return latest


def _list(
    api: KubeApi,
    spec: KindSpec,
    path: str,
    extra: Sequence[tuple[str, str | int]] = (),
    newest: _Newest | None = None,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    restarted = False
    while True:
        query: list[tuple[str, str | int]] = [*extra, ("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        try:
            page = api.get_json(path, query)
        except ApiStatusError as exc:
            if exc.status == 410 and token and not restarted:
                # The continue token expired (the list changed under us): start over once, in one piece.
                items, token, restarted = [], None, True
                if newest is not None:
                    newest.reset()
                page = api.get_json(path, list(extra))
            else:
                raise
        for item in page.get("items") or []:
            if isinstance(item, dict):
                obj = _complete(item, spec)
                if obj.get("kind") in NEVER_COLLECTED:
                    continue
                if newest is not None:
                    newest.add(obj)
                else:
                    items.append(obj)
        metadata = page.get("metadata")
        token = metadata.get("continue") if isinstance(metadata, dict) else None
        if not token:
            return newest.items() if newest is not None else items


def _complete(item: dict[str, Any], spec: KindSpec) -> dict[str, Any]:
    """Put `apiVersion` and `kind` first, as kubectl prints them; keep the item's own when it has them."""
    obj: dict[str, Any] = {
        "apiVersion": item.get("apiVersion") or spec.api_version,
        "kind": item.get("kind") or spec.kind,
    }
    for key, value in item.items():
        if key not in ("apiVersion", "kind"):
            obj[key] = value
    return obj
