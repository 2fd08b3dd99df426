"""Every playbook a finding names exists, ships, and opens with `mlops-trace checks explain NAME` from any install."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from mlops_trace.analysis.catalog import (
    CatalogEntry,
    find_check_or_playbook,
    find_playbook,
    load_catalog,
    playbook_names,
)
from mlops_trace.cli import app
from mlops_trace.findings import Finding, Severity
from mlops_trace.render import render
from tests.fixture_walk import FIXTURES, REPO

SOURCE_PLAYBOOKS = sorted(p.stem for p in (REPO / "playbooks").glob("*.md"))
EXPLAIN = re.compile(r"mlops-trace checks explain ([\w.-]+)")


def _explain(key: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["checks", "explain", key])
    return result.exit_code, result.output


@pytest.mark.parametrize("entry", load_catalog(), ids=lambda e: e.check.id)
def test_every_check_names_an_existing_playbook(entry: CatalogEntry) -> None:
    assert (REPO / "playbooks" / f"{entry.check.playbook}.md").is_file(), entry.check.playbook


def test_the_loader_sees_every_playbook() -> None:
    assert list(playbook_names()) == SOURCE_PLAYBOOKS


@pytest.mark.parametrize("name", SOURCE_PLAYBOOKS)
def test_every_playbook_opens_with_checks_explain(name: str) -> None:
    code, out = _explain(name)
    assert code == 0, out
    text = (REPO / "playbooks" / f"{name}.md").read_text(encoding="utf-8").rstrip()
    assert text in out


def test_playbook_name_prints_the_playbook_and_the_checks_pointing_to_it() -> None:
    code, out = _explain("envoy-404")
    assert code == 0, out
    assert out.startswith("playbook: envoy-404\nchecks: ")
    pointing = {e.check.id for e in load_catalog() if e.check.playbook == "envoy-404"}
    assert pointing and all(check_id in out.splitlines()[1] for check_id in pointing)
    assert "# 404 from Envoy" in out
    assert find_playbook("playbooks/envoy-404.md").name == "envoy-404"


def test_check_prints_its_doc_then_its_playbook() -> None:
    code, out = _explain("MT301")
    assert code == 0, out
    assert "## What it checks" in out
    assert out.index("## What it checks") < out.index("# 404 from Envoy")


@pytest.mark.parametrize("key", ["nope", "../README", "../checks/routing/envoy_route_missing", ""])
def test_unknown_names_and_paths_outside_playbooks_are_rejected(key: str) -> None:
    code, out = _explain(key)
    assert code == 2
    assert "unknown check or playbook" in out


def test_table_hints_resolve_through_checks_explain() -> None:
    from mlops_trace.doctor import DoctorRun, run_doctor

    report = run_doctor(DoctorRun(bundle=FIXTURES / "scenarios" / "four-root-causes")).report
    text = render(report, "table")
    names = set(EXPLAIN.findall(text))
    assert names, "the broken scenario prints playbook hints"
    assert "playbooks/" not in text
    for name in names:
        assert name in SOURCE_PLAYBOOKS, name
        found = find_check_or_playbook(name)
        assert isinstance(found, CatalogEntry) or found.name == name


def test_request_renderer_hint_resolves_through_checks_explain() -> None:
    from mlops_trace.trace.render import _console, _findings

    finding = Finding(
        id="MT301", slug="envoy-route-missing", severity=Severity.CRITICAL, title="t", message="m",
        namespace="ns", object="Model/m", evidence=(), playbook="envoy-404", fix="f",
    )
    console, buffer = _console(200, False)
    _findings(console, [finding])
    (name,) = EXPLAIN.findall(buffer.getvalue())
    assert name == "envoy-404"
    assert _explain(name)[0] == 0
