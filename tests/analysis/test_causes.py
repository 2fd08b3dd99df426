"""Cause → effect links between findings (`analysis.causes`): declared by the effect's check, scoped by namespace
and object, proven on the real catalog's output for the four-root-causes scenario and on findings the catalog's own
checks build."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache

import pytest

from mlops_trace.analysis.catalog import find_entry, load_catalog
from mlops_trace.analysis.causes import causal_forest, explains, link, linked
from mlops_trace.analysis.check import make_check
from mlops_trace.doctor import DoctorRun, run_doctor
from mlops_trace.findings import CheckId, Evidence, Finding, Report, Severity
from mlops_trace.render import render
from tests.fixture_walk import FIXTURES


@cache
def _scenario(name: str) -> Report:
    return run_doctor(DoctorRun(bundle=FIXTURES / "scenarios" / name)).report


def _finding(check: str, namespace: str | None, obj: str, *, evidence: tuple[Evidence, ...] = ()) -> Finding:
    """A finding as the catalog's check `check` builds it, so `explained_by` is the check's real declaration."""
    return find_entry(check).check.finding(
        namespace=namespace, object=obj, message=f"{check} in {namespace}", evidence=evidence
    )


def _only(report: Report, check_id: str) -> Finding:
    (finding,) = [f for f in report.findings if f.id == check_id]
    return finding


# --- the real catalog on a real scenario ----------------------------------------------------------------------------


def test_alias_missing_explains_controller_unreachable_in_the_scenario() -> None:
    report = _scenario("four-root-causes")
    alias, controller = _only(report, "MT103"), _only(report, "MT104")
    assert alias.namespace == controller.namespace == "credit-risk"
    links = link(report.findings)
    assert links.causes[controller.key] == (alias.key,)
    roots = {node.finding.id: node for node in causal_forest(report.findings, links)}
    assert [effect.finding.id for effect in roots["MT103"].effects] == ["MT104"]
    assert "MT104" not in roots


def test_split_brain_explains_route_thrash_across_namespaces_through_its_pointer() -> None:
    """MT101 is in fraud-serving, whose agents point at the central scheduler in ml-platform; MT102 is that
    scheduler's log. The link holds only because MT101's evidence names `seldon-scheduler.ml-platform`."""
    report = _scenario("four-root-causes")
    split, thrash = _only(report, "MT101"), _only(report, "MT102")
    assert (split.namespace, thrash.namespace) == ("fraud-serving", "ml-platform")
    assert any("seldon-scheduler.ml-platform" in item.what for item in split.evidence)
    assert explains(split, thrash)
    no_pointer = replace(split, evidence=tuple(i for i in split.evidence if "ml-platform" not in i.what))
    assert not explains(no_pointer, thrash)


def test_scenario_roots_are_the_three_independent_causes() -> None:
    report = _scenario("four-root-causes")
    roots = causal_forest(report.findings)
    assert sorted(node.finding.id for node in roots) == ["MT101", "MT103", "MT204"]
    assert sum(node.size() for node in roots) == len(report.findings)


def test_compact_table_shows_the_effect_under_its_cause() -> None:
    text = render(_scenario("four-root-causes"), "table", width=80)
    lines = text.splitlines()
    alias = next(i for i, line in enumerate(lines) if line.startswith("CRITICAL  MT103 scheduler-alias-missing"))
    effect = next(i for i, line in enumerate(lines) if "└ because of the above: MT104" in line)
    next_root = next((i for i in range(alias + 1, len(lines)) if lines[i].startswith("CRITICAL")), len(lines))
    assert alias < effect < next_root
    assert lines[effect].startswith(" " * 10 + "└"), "the effect is indented under its cause"
    assert not any(line.startswith("CRITICAL  MT104") for line in lines), "an explained finding is no root"
    assert max(len(line) for line in lines) <= 80


def test_json_names_the_cause_of_each_effect() -> None:
    data = json.loads(render(_scenario("four-root-causes"), "json"))
    by_id = {finding["id"]: finding for finding in data["findings"]}
    assert by_id["MT103"]["caused_by"] == []
    (cause,) = by_id["MT104"]["caused_by"]
    assert cause["id"] == "MT103" and cause["namespace"] == "credit-risk"
    assert cause["object"] == by_id["MT103"]["object"] and cause["message"] == by_id["MT103"]["message"]
    assert [c["id"] for c in by_id["MT102"]["caused_by"]] == ["MT101"]


def test_a_healthy_scenario_has_no_links() -> None:
    report = _scenario("healthy-ab")
    assert link(report.findings).causes == {}
    assert linked(report).caused_by == {}


# --- the scope rule -----------------------------------------------------------------------------------------------


def test_a_cause_in_another_namespace_explains_nothing() -> None:
    alias = _finding("MT103", "team-a", "Service/seldon-scheduler")
    assert explains(alias, _finding("MT104", "team-a", "Deployment/seldon-v2-controller-manager"))
    assert not explains(alias, _finding("MT104", "team-b", "Deployment/seldon-v2-controller-manager"))


def test_only_declared_checks_explain() -> None:
    """MT104 declares MT103, never the reverse, and an undeclared check in the same scope links nothing."""
    alias = _finding("MT103", "ns", "Service/seldon-scheduler")
    controller = _finding("MT104", "ns", "Deployment/seldon-v2-controller-manager")
    assert not explains(controller, alias)
    assert not explains(_finding("MT204", "ns", "Ingress/api"), controller)


def test_a_finding_about_one_model_does_not_explain_another_model() -> None:
    replicas = _finding("MT111", "ns", "Model/iris")
    assert explains(replicas, _finding("MT106", "ns", "Model/iris"))
    assert not explains(replicas, _finding("MT106", "ns", "Model/wine"))
    assert explains(_finding("MT105", "ns", "Pod/mlserver-0"), _finding("MT106", "ns", "Model/wine")), (
        "a Pod's finding covers its namespace"
    )


def test_a_finding_about_one_inference_service_does_not_explain_another() -> None:
    """A failed model download (MT701) or revision (MT716) leaves its own InferenceService without a VirtualService,
    so its 404s (MT713) are their effect; another InferenceService's 404s, or an unknown host's, are not."""
    for cause_id in ("MT701", "MT716"):
        cause = _finding(cause_id, "ml", "InferenceService/iris")
        assert explains(cause, _finding("MT713", "ml", "InferenceService/iris"))
        assert not explains(cause, _finding("MT713", "ml", "InferenceService/wine"))
        assert not explains(cause, _finding("MT713", "ml", "Gateway/istio-ingressgateway"))
    assert explains(_finding("MT701", "ml", "Pod/iris-predictor-00001-deployment-5d9f7c8b6-x2x4q"),
                    _finding("MT713", "ml", "InferenceService/wine")), "a Pod's finding covers its namespace"


def test_a_canary_that_gets_no_traffic_hangs_under_its_failed_revision() -> None:
    report = run_doctor(DoctorRun(bundle=FIXTURES / "checks" / "MT719" / "latest-not-ready")).report
    revision, canary = _only(report, "MT716"), _only(report, "MT719")
    assert link(report.findings).causes[canary.key] == (revision.key,)
    roots = {node.finding.id: node for node in causal_forest(report.findings)}
    assert [effect.finding.id for effect in roots["MT716"].effects] == ["MT719"]


def test_cluster_wide_causes_reach_every_namespace_and_not_the_reverse() -> None:
    unwatched = _finding("MT107", None, "Deployment/seldon-v2-controller-manager")
    route = _finding("MT302", "ns", "Model/iris")
    assert explains(unwatched, route)
    assert not explains(_finding("MT107", "ns", "Namespace/ns"), replace(route, namespace=None))


@pytest.mark.parametrize(
    ("what", "points"),
    [
        ("SELDON_SCHEDULER_HOST=seldon-scheduler.ml-platform (scheduler Service)", True),
        ("externalName: seldon-scheduler.ml-platform.svc.cluster.local", True),
        ("dials seldon-scheduler.ml-platform:9004", True),
        ("alias to seldon-scheduler.ml-platform.", True),
        ("SELDON_SCHEDULER_HOST=seldon-scheduler.ml-platform-2", False),
        ("seldon-scheduler.ml-platform.example.com", False),
        ("scheduler in ml-platform", False),
        ("seldon-scheduler.team.ml-platform", False),
    ],
)
def test_a_cause_points_at_a_namespace_only_by_a_whole_service_host(what: str, points: bool) -> None:
    split = _finding("MT101", "fraud", "StatefulSet/seldon-scheduler", evidence=(Evidence("f.yaml", what),))
    assert explains(split, _finding("MT102", "ml-platform", "Pod/seldon-scheduler-0")) is points


# --- display forest -----------------------------------------------------------------------------------------------


def test_an_effect_with_two_causes_hangs_under_the_first_and_lists_both() -> None:
    split = _finding("MT101", "ns", "StatefulSet/seldon-scheduler")
    alias = _finding("MT103", "ns", "Service/seldon-scheduler")
    stale = _finding("MT108", "ns", "Model/iris")
    findings = [split, alias, stale]
    links = link(findings)
    assert links.causes[stale.key] == (split.key, alias.key)
    roots = causal_forest(findings, links)
    assert [(n.finding.id, [e.finding.id for e in n.effects]) for n in roots] == [("MT101", ["MT108"]), ("MT103", [])]


def test_chains_nest_and_cycles_do_not_hide_findings() -> None:
    split = _finding("MT101", "ns", "StatefulSet/seldon-scheduler")
    thrash = _finding("MT102", "ns", "Pod/seldon-scheduler-0")
    split_mismatch = _finding("MT303", "ns", "Experiment/ab")
    (root,) = causal_forest([split, thrash, split_mismatch])
    assert root.finding is split
    (middle,) = root.effects
    assert middle.finding is thrash
    assert [e.finding.id for e in middle.effects] == ["MT303"], "MT101 explains MT303 too, but MT102 is nearer"
    assert link([split, thrash, split_mismatch]).causes[split_mismatch.key] == (split.key, thrash.key)
    (reordered,) = causal_forest([split, split_mismatch, thrash])
    assert [e.finding.id for e in reordered.effects] == ["MT102"], "the nearest cause wins whatever the order"
    looped_a = replace(split, explained_by=(CheckId("MT102"),))
    forest = causal_forest([looped_a, thrash])
    assert [node.finding.id for node in forest] == ["MT101"]
    assert forest[0].size() == 2, "a cycle is broken, no finding disappears"


def test_declared_causes_are_checks_of_the_catalog() -> None:
    ids = {entry.check.id for entry in load_catalog()}
    declared = {entry.check.id: entry.check.explained_by for entry in load_catalog() if entry.check.explained_by}
    assert declared["MT104"] == ("MT103", "MT201")
    assert "MT101" in declared["MT102"]
    for effect, causes in declared.items():
        assert set(causes) <= ids - {effect}, effect


def test_make_check_rejects_a_malformed_or_self_cause() -> None:
    common = {"slug": "x", "title": "t", "severity": Severity.INFO, "requires": (), "playbook": "p", "fix": "f"}
    assert make_check(id="MT998", explained_by=("MT101",), **common).explained_by == ("MT101",)  # type: ignore[arg-type]
    for bad in (("MT1",), ("MT998",), ("MT101", "MT101")):
        with pytest.raises(ValueError, match="explained_by"):
            make_check(id="MT998", explained_by=bad, **common)  # type: ignore[arg-type]
