"""What a check is: stable metadata (id, slug, severity, inputs, playbook) beside a pure function over a Snapshot.

A check module in `checks/<area>/<slug>.py` defines `CHECK = Check(...)` and `def run(snap) -> Iterable[Finding]`.
Severity lives here, not in the check's logic. A check raises `SkipCheck` when its declared inputs are present but
do not cover what it needs (e.g. no controller Deployment among the objects); the engine reports that as `skip`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_trace.findings import CheckId, Evidence, Finding, Severity

ID_PATTERN = re.compile(r"^MT[1-9]\d\d$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


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
) -> Check:
    """Build a `Check`, validating the id and slug forms (MT + three digits; kebab-case)."""
    if not ID_PATTERN.match(id):
        raise ValueError(f"check id {id!r} is not of the form MT<digit><digit><digit>")
    if not SLUG_PATTERN.match(slug):
        raise ValueError(f"check slug {slug!r} is not kebab-case")
    return Check(
        id=CheckId(id), slug=slug, title=title, severity=severity, requires=requires, playbook=playbook, fix=fix
    )
