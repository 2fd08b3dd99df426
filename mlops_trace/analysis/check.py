"""What a check is: stable metadata (id, slug, severity, inputs, playbook) beside a pure function over a Snapshot.

A check module in `checks/<area>/<slug>.py` defines `CHECK = Check(...)` and `def run(snap) -> Iterable[Finding]`.
Severity lives here, not in the check's logic. A check raises `SkipCheck` when its declared inputs are present but
do not cover what it needs (e.g. no controller Deployment among the objects); the engine reports that as `skip`.

A check declares its inputs in two lists of one vocabulary (below `SLUG_PATTERN`): `requires` is the skip gate (the
engine skips the check when one is absent; `a|b` means either), `reads` names what else it may read when present.
`tests/analysis/test_check_inputs.py` runs every check on its fixtures through a Snapshot that records what it
touches, and fails on an input that is in neither list.

Causality is declared by the effect: `explained_by` names the checks whose finding, when present in the same scope
(`mlops_trace.analysis.causes`), explains this check's finding, so a report can show it under its cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_trace.findings import CheckId, Evidence, Finding, Severity
from mlops_trace.kinds import ALL_KINDS, NEVER_COLLECTED
from mlops_trace.snapshot.roles import Role

ID_PATTERN = re.compile(r"^MT[1-9]\d\d$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

# The inputs a check may declare, by family: `kube:<Kind>` (a collected kind of mlops_trace/kinds.py), `logs:<role>`,
# `envoy:<part>`, and the bare `requests` and `prometheus`. An Envoy container's log is its access log, so it is
# `envoy:access`, never `logs:envoy` (Snapshot.has counts it there too).
KUBE_KINDS = frozenset(spec.key for spec in ALL_KINDS) - NEVER_COLLECTED  # kind keys: `Service.serving.knative.dev`
LOG_ROLES = frozenset(role.value for role in Role if role not in (Role.ENVOY, Role.OTHER))
ENVOY_PARTS = frozenset({"config_dump", "stats", "access"})
BARE_INPUTS = frozenset({"requests", "prometheus"})


class SkipCheck(Exception):
    """Raised by a check whose inputs do not let it judge; the message is the skip reason."""


@dataclass(frozen=True)
class Check:
    id: CheckId
    slug: str
    title: str
    severity: Severity
    requires: tuple[str, ...]  # "kube:Model", "logs:scheduler", "envoy:config_dump", "a|b" for either
    playbook: str  # file stem in playbooks/
    fix: str  # the default one-line fix; a finding may say something more precise
    area: str = ""
    reads: tuple[str, ...] = ()  # what else the check may read when present (no `|`); never a reason to skip
    explained_by: tuple[CheckId, ...] = ()  # checks whose finding in the same scope explains this one's

    def finding(
        self,
        *,
        namespace: str | None,
        object: str,
        message: str,
        evidence: Iterable[Evidence],
        fix: str | None = None,
    ) -> Finding:
        return Finding(
            id=self.id,
            slug=self.slug,
            severity=self.severity,
            title=self.title,
            message=message,
            namespace=namespace,
            object=object,
            evidence=tuple(evidence),
            playbook=self.playbook,
            fix=fix or self.fix,
            explained_by=self.explained_by,
        )


def make_check(
    *,
    id: str,
    slug: str,
    title: str,
    severity: Severity,
    requires: tuple[str, ...],
    playbook: str,
    fix: str,
    reads: tuple[str, ...] = (),
    explained_by: tuple[str, ...] = (),
) -> Check:
    """Build a `Check`, validating the id and slug forms (MT + three digits; kebab-case) and every input it declares
    in `requires` and `reads`, so a misspelt input fails when the catalog loads."""
    if not ID_PATTERN.match(id):
        raise ValueError(f"check id {id!r} is not of the form MT<digit><digit><digit>")
    if not SLUG_PATTERN.match(slug):
        raise ValueError(f"check slug {slug!r} is not kebab-case")
    for requirement in requires:
        for part in requirement.split("|"):
            _validate_input(id, "requires", part.strip())
    for item in reads:
        if "|" in item:
            raise ValueError(f"check {id} reads {item!r}: `a|b` belongs in requires; list each input in reads")
        _validate_input(id, "reads", item)
    duplicates = sorted({item for item in reads if reads.count(item) > 1 or _required_alone(item, requires)})
    if duplicates:
        raise ValueError(f"check {id} reads {', '.join(duplicates)} twice (in reads, or required alone)")
    for cause in explained_by:
        if not ID_PATTERN.match(cause) or cause == id or explained_by.count(cause) > 1:
            raise ValueError(f"check {id} explained_by {cause!r}: another check's id, once (MT<digit><digit><digit>)")
    return Check(
        id=CheckId(id),
        slug=slug,
        title=title,
        severity=severity,
        requires=requires,
        playbook=playbook,
        fix=fix,
        reads=reads,
        explained_by=tuple(CheckId(cause) for cause in explained_by),
    )


def declared_inputs(check: Check) -> frozenset[str]:
    """Every input the check declares, in `requires` (each side of `a|b`) or in `reads`."""
    required = {part.strip() for requirement in check.requires for part in requirement.split("|")}
    return frozenset(required | set(check.reads))


def _required_alone(item: str, requires: tuple[str, ...]) -> bool:
    return any(requirement.strip() == item for requirement in requires)


def _validate_input(check_id: str, where: str, item: str) -> None:
    family, colon, name = item.partition(":")
    if not colon and family in BARE_INPUTS:
        return
    if family == "kube" and name in KUBE_KINDS:
        return
    if family == "logs" and name in LOG_ROLES:
        return
    if family == "envoy" and name in ENVOY_PARTS:
        return
    hint = ""
    if item == "logs:envoy":
        hint = " (an Envoy container's log is its access log: envoy:access)"
    elif family == "kube":
        hint = " (a collected kind of mlops_trace.kinds.ALL_KINDS)"
    elif family == "logs":
        hint = f" (roles: {', '.join(sorted(LOG_ROLES))})"
    elif family == "envoy":
        hint = f" (parts: {', '.join(sorted(ENVOY_PARTS))})"
    raise ValueError(
        f"check {check_id} {where} unknown input {item!r}{hint}; inputs are kube:<Kind>, logs:<role>, "
        "envoy:config_dump|stats|access, requests, prometheus"
    )
