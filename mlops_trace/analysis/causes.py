"""Which finding of a report explains which: the links that let a report show an effect under its cause.

The data is declared by the effect's check (`Check.explained_by`, copied onto each `Finding`): "a finding of MT103 in
my scope explains mine". This module only decides the scope and builds the links, purely from the findings.

Scope rule: a finding C of a check listed in E's `explained_by` explains E when

1. namespaces: C is cluster-wide (namespace None); or C and E are in the same namespace; or C points at E's
   namespace, i.e. C's message or evidence text names a Service host in it (`<service>.<E's namespace>`, alone or
   followed by `.svc…` or `:<port>`, as in `SELDON_SCHEDULER_HOST=seldon-scheduler.ml-platform`). A cluster-wide E is
   explained only by a cluster-wide C.
2. objects: when C is about a served resource (`Model/…`, `Experiment/…`, `Pipeline/…`, `InferenceService/…`), E must
   be about the same object: one Model's (or InferenceService's) failure says nothing about another's. A C about the
   namespace's plumbing (a Service, Pod, StatefulSet, Deployment, NetworkPolicy, the Namespace) covers every object
   of its scope.

A finding can have several causes (all are listed in `caused_by`); for display each effect hangs under one of them
(`causal_forest`): its nearest cause (one that no other of its causes explains), the first in display order, so
every finding appears once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

from mlops_trace.findings import Finding, FindingKey, Report

# Kinds whose findings concern one object only; everything else is shared plumbing of a namespace.
SERVED_KINDS = frozenset({"Model", "Experiment", "Pipeline", "InferenceService"})


@dataclass(frozen=True)
class CauseLinks:
    """`causes[effect]`: keys of the findings that explain it; `effects[cause]`: what it explains. Report order."""

    causes: Mapping[FindingKey, tuple[FindingKey, ...]]
    effects: Mapping[FindingKey, tuple[FindingKey, ...]]


@dataclass(frozen=True)
class CauseNode:
    """A finding and the effects shown under it (each a node of its own)."""

    finding: Finding
    effects: tuple[CauseNode, ...] = ()

    def size(self) -> int:
        return 1 + sum(effect.size() for effect in self.effects)


def explains(cause: Finding, effect: Finding) -> bool:
    """True when `cause` is a finding of a check `effect` declares in `explained_by`, within the scope rule above."""
    if cause.id not in effect.explained_by or cause.key == effect.key:
        return False
    return _namespaces_related(cause, effect) and _objects_related(cause.object, effect.object)


def link(findings: Iterable[Finding]) -> CauseLinks:
    """Every cause → effect link among `findings` (pairs in the findings' order)."""
    unique = list({finding.key: finding for finding in findings}.values())
    causes: dict[FindingKey, list[FindingKey]] = {}
    effects: dict[FindingKey, list[FindingKey]] = {}
    for effect in unique:
        for cause in unique:
            if explains(cause, effect):
                causes.setdefault(effect.key, []).append(cause.key)
                effects.setdefault(cause.key, []).append(effect.key)
    return CauseLinks(
        causes={key: tuple(keys) for key, keys in causes.items()},
        effects={key: tuple(keys) for key, keys in effects.items()},
    )


def linked(report: Report) -> Report:
    """`report` with `caused_by` filled from its findings."""
    return replace(report, caused_by=link(report.findings).causes)


def causal_forest(findings: Sequence[Finding], links: CauseLinks | None = None) -> list[CauseNode]:
    """The findings as trees, in the order given (the caller's display order). Roots are the findings nothing else in
    the list explains. An effect hangs under its nearest cause: of its causes, those that explain another of its
    causes (A when A → B → E and A → E) step back, and it hangs under the first of the rest (in that order) once that
    is placed, so a chain nests. Findings that only explain each other (a cycle) start at the first of them. Every finding appears
    once."""
    links = link(findings) if links is None else links
    by_key = {finding.key: finding for finding in findings}
    order = list(by_key)
    causes = {key: _nearest(key, order, links) for key in order}
    children: dict[FindingKey, list[FindingKey]] = {}
    roots = [key for key in order if not causes[key]]
    placed = set(roots)
    while len(placed) < len(order):
        progress = True
        while progress:
            progress = False
            for key in order:
                parent = next((c for c in causes[key] if c in placed), None)
                if key not in placed and parent is not None:
                    children.setdefault(parent, []).append(key)
                    placed.add(key)
                    progress = True
        cycle_start = next((key for key in order if key not in placed), None)
        if cycle_start is not None:
            roots.append(cycle_start)
            placed.add(cycle_start)

    def node(key: FindingKey) -> CauseNode:
        return CauseNode(by_key[key], tuple(node(child) for child in sorted(children.get(key, ()), key=order.index)))

    return [node(key) for key in sorted(roots, key=order.index)]


def _nearest(key: FindingKey, order: Sequence[FindingKey], links: CauseLinks) -> list[FindingKey]:
    """`key`'s causes in `order` without those that (transitively) explain another of them; all of them when that
    leaves none (they explain each other)."""
    direct = [c for c in order if c in links.causes.get(key, ()) and c != key]
    upstream = {a for c in direct for a in _ancestors(c, links) if a != c}
    return [c for c in direct if c not in upstream] or direct


def _ancestors(key: FindingKey, links: CauseLinks) -> set[FindingKey]:
    seen: set[FindingKey] = set()
    todo = [key]
    while todo:
        current = todo.pop()
        for cause in links.causes.get(current, ()):
            if cause not in seen:
                seen.add(cause)
                todo.append(cause)
    return seen


def _namespaces_related(cause: Finding, effect: Finding) -> bool:
    if cause.namespace is None:
        return True
    if effect.namespace is None:
        return False
    if cause.namespace == effect.namespace:
        return True
    texts = (cause.message, *(item.what for item in cause.evidence))
    pattern = _host_in(effect.namespace)
    return any(pattern.search(text) for text in texts)


@cache
def _host_in(namespace: str) -> re.Pattern[str]:
    """`<service>.<namespace>` as a whole host (not a label inside a longer name), optionally `.svc…` or `:port`."""
    return re.compile(
        rf"(?<![\w./-])[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.{re.escape(namespace)}(?=\.svc\b|:\d|\.(?:\s|$)|[^\w.-]|$)",
        re.IGNORECASE,
    )


def _objects_related(cause_object: str, effect_object: str) -> bool:
    kind, slash, _ = cause_object.partition("/")
    if slash and kind in SERVED_KINDS:
        return cause_object == effect_object
    return True
