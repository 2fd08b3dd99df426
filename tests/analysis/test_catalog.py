"""The catalog itself: ids well-formed and unique, every check documented, fixtured both ways, with a playbook."""

from __future__ import annotations

import re

import pytest

from mlops_trace.analysis.catalog import CatalogEntry, find_entry, load_catalog, playbook_path, select
from mlops_trace.errors import UsageError
from tests.fixture_walk import FIXTURES, check_cases

DOC_HEADINGS = ("## What it checks", "## Why it matters", "## Evidence", "## Fix")
AREA_BY_DIGIT = {
    "1": "control_plane",
    "2": "network",
    "3": "routing",
    "4": "service_level",
    "5": "pipelines",
    "6": "model_servers",
    "7": "kserve",
}


def _entries() -> list[CatalogEntry]:
    return list(load_catalog())


def test_catalog_is_not_empty_and_ids_are_unique() -> None:
    ids = [e.check.id for e in _entries()]
    assert len(ids) >= 20
    assert len(ids) == len(set(ids))
    assert len({e.check.slug for e in _entries()}) == len(ids)


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.check.id)
def test_check_is_complete(entry: CatalogEntry) -> None:
    check = entry.check
    assert re.fullmatch(r"MT[1-7]\d\d", check.id)
    assert entry.area == AREA_BY_DIGIT[check.id[2]], "a check lives in the folder of its id's area"
    assert entry.module_path.stem == check.slug.replace("-", "_")
    doc = entry.doc()
    assert doc.startswith(f"# {check.id} {check.slug}"), "doc opens with '# <id> <slug>'"
    for heading in DOC_HEADINGS:
        assert heading in doc, f"{entry.doc_path.name} lacks {heading}"
    assert playbook_path(check.playbook).is_file(), f"playbook {check.playbook} does not exist"
    assert check.fix and check.title
    cases = [c for c in check_cases() if c.path.parent.name == check.id]
    statuses = {c.expected.get("status") for c in cases}
    assert "pass" in statuses, f"{check.id} needs a healthy fixture under {FIXTURES}/checks/{check.id}/"
    assert "fail" in statuses, f"{check.id} needs a failing fixture under {FIXTURES}/checks/{check.id}/"


def test_select_by_id_slug_and_area() -> None:
    assert [e.check.id for e in select(["MT101"])] == ["MT101"]
    assert [e.check.id for e in select(["scheduler-split-brain"])] == ["MT101"]
    assert {e.check.id[:3] for e in select(["MT2"])} == {"MT2"}
    assert "MT101" not in {e.check.id for e in select(skip=["MT101"])}
    with pytest.raises(UsageError):
        select(["MT999"])
    assert find_entry("mt101").check.id == "MT101"
