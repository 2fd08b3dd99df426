"""Find the fixture bundles and their expectations (shared by the fixture tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@dataclass(frozen=True)
class FixtureCase:
    path: Path
    expected: dict[str, Any]

    @property
    def label(self) -> str:
        return self.path.relative_to(FIXTURES).as_posix()


def check_cases() -> list[FixtureCase]:
    return _cases(FIXTURES / "checks")


def scenario_cases() -> list[FixtureCase]:
    return _cases(FIXTURES / "scenarios")


def _cases(root: Path) -> list[FixtureCase]:
    cases = []
    for expected in sorted(root.glob("**/expected.yaml")):
        data = yaml.safe_load(expected.read_text(encoding="utf-8")) or {}
        cases.append(FixtureCase(expected.parent, data))
    return cases
