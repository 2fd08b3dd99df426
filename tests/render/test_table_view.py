"""The table's two views: compact (one line per finding, effects under their cause, shortened at word boundaries)
and `-v` (evidence, causes, fixes, every check), on the shared rich report and on findings built by the catalog's
own checks, whose `explained_by` links them. Golden files as in test_renderers.py (`UPDATE_GOLDEN=1`)."""

from __future__ import annotations

import json
import re

import pytest

from mlops_trace.analysis.catalog import find_entry
from mlops_trace.findings import CheckId, CheckResult, CheckStatus, Evidence, Finding, Report
from mlops_trace.render import render
from mlops_trace.render._common import shorten_words
from tests.render.test_renderers import assert_matches_golden


def causes_report() -> Report:
    """Findings built by the catalog's own checks (so `explained_by` is theirs): an alias missing and the controller
    that cannot reach the scheduler because of it, a split brain explaining route thrash and, through it, a missing
    route, and an unrelated finding."""

    def made(check: str, namespace: str | None, obj: str, message: str, *evidence: Evidence) -> Finding:
        entry = find_entry(check)
        return entry.check.finding(namespace=namespace, object=obj, message=message, evidence=evidence)

    findings = (
        made("MT103", "credit-risk", "Service/seldon-scheduler", "Namespace credit-risk runs no scheduler and has no "
             "Service seldon-scheduler: the controller and the agents dial a name that does not resolve."),
        made("MT104", "credit-risk", "Deployment/seldon-v2-controller-manager", "Controller failed 179 times to reach "
             "seldon-scheduler.credit-risk:9004 since the last success: changes of credit-risk are not applied."),
        made("MT101", "fraud", "StatefulSet/seldon-scheduler", "Namespace fraud runs its own scheduler, yet its agents "
             "use the one in ml-platform.", Evidence("kube/fraud/statefulsets.yaml#0",
                                                     "agent SELDON_SCHEDULER_HOST=seldon-scheduler.ml-platform")),
        made("MT102", "fraud", "Pod/seldon-scheduler-0", "Scheduler seldon-scheduler-0 keeps removing and re-adding "
             "routes: txn-ab.experiment (31 removals in 350s)."),
        made("MT302", "fraud", "Model/txn-baseline", "Envoy has no route for the Ready Model txn-baseline."),
        made("MT204", "ingress-nginx", "Ingress/ml-api", "Path /fraud is sent to Envoy with its prefix."),
    )
    checks = tuple(
        CheckResult(CheckId(entry.check.id), entry.check.slug, CheckStatus.FAIL, "1 finding(s)")
        for entry in map(find_entry, ("MT101", "MT102", "MT103", "MT104", "MT204", "MT302"))
    )
    return Report(source="bundles/causes", findings=findings, checks=checks)


def test_causes_table_matches_its_golden_files() -> None:
    report = causes_report()
    assert_matches_golden("table-causes.txt", render(report, "table", width=80))
    assert_matches_golden("table-causes-verbose.txt", render(report, "table", width=80, verbose=True))


def test_json_links_each_effect_to_its_causes() -> None:
    findings = json.loads(render(causes_report(), "json"))["findings"]
    caused_by = {f["id"]: [(c["id"], c["namespace"], c["object"]) for c in f["caused_by"]] for f in findings}
    assert caused_by == {
        "MT103": [],
        "MT104": [("MT103", "credit-risk", "Service/seldon-scheduler")],
        "MT101": [],
        "MT102": [("MT101", "fraud", "StatefulSet/seldon-scheduler")],
        "MT302": [("MT101", "fraud", "StatefulSet/seldon-scheduler"), ("MT102", "fraud", "Pod/seldon-scheduler-0")],
        "MT204": [],
    }
    first = findings[1]["caused_by"][0]
    assert (first["message"], list(first)) == (findings[0]["message"], ["id", "namespace", "object", "message"])


def test_compact_table_nests_effects_under_their_cause() -> None:
    lines = render(causes_report(), "table", width=120).splitlines()
    tree = [line.split("  ")[0] if line.startswith("CRITICAL") else line.strip()[:29] for line in lines]
    tree = [entry for entry in tree if entry.startswith(("CRITICAL", "└"))]
    assert tree == [
        "CRITICAL",
        "└ because of the above: MT102",
        "└ because of the above: MT302",
        "CRITICAL",
        "└ because of the above: MT104",
        "CRITICAL",
    ]
    thrash = next(line for line in lines if "MT102" in line)
    route = next(line for line in lines if "MT302" in line and "because" in line)
    assert route.index("└") == thrash.index("└") + 2, "an effect of an effect is indented once more"
    assert "5 findings" not in lines and "6 findings (3 explained by another)" in "\n".join(lines)


def test_verbose_table_names_what_explains_a_finding() -> None:
    text = render(causes_report(), "table", verbose=True)
    controller = text[text.index("MT104 controller-scheduler-unreachable") :]
    assert controller.index("because of: MT103 scheduler-alias-missing  credit-risk/Service/seldon-scheduler") < (
        controller.index("fix:")
    )
    assert text.count("because of:") == 4


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("width", [60, 80, 120])
def test_table_respects_width(rich_report: Report, width: int, verbose: bool) -> None:
    for report in (rich_report, causes_report()):
        text = render(report, "table", width=width, verbose=verbose)
        assert max(len(line) for line in text.splitlines()) <= width


def test_compact_table_is_one_line_per_finding_then_playbooks_summary_and_verdict(rich_report: Report) -> None:
    lines = render(rich_report, "table").splitlines()
    headlines = [line for line in lines if line.split(" ", 1)[0] in {"CRITICAL", "WARNING", "INFO"}]
    assert len(headlines) == len(rich_report.findings)
    for finding in rich_report.findings:
        (line,) = [line for line in headlines if f"{finding.id} {finding.slug}" in line]
        where = finding.object if finding.namespace is None else f"{finding.namespace}/{finding.object}"
        assert f"{finding.id} {finding.slug}  {where}  " in line
    assert re.search(r"^error\s+MT403 split-imbalance\s+KeyError", "\n".join(lines), re.MULTILINE)
    assert "evidence:" not in lines and not any(line.strip().startswith("fix:") for line in lines)
    for finding in rich_report.findings:
        assert f"mlops-trace checks explain {finding.slug}" in "\n".join(lines)
    assert lines[-3] == (
        "5 findings · 1 check skipped · 1 errored · 2 input problems · -v for evidence, fixes and every check"
    )
    assert lines[-1] == "2 critical, 2 warning, 1 info · 3 checks passed, 5 failed, 1 skipped, 1 errored"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_compact_table_cuts_messages_only_at_word_boundaries(rich_report: Report, width: int) -> None:
    text = render(rich_report, "table", width=width)
    words = {word for finding in rich_report.findings for word in finding.message.split()}
    for finding in rich_report.findings:
        (line,) = [line for line in text.splitlines() if f"{finding.id} {finding.slug}" in line]
        message = line.split("  ")[-1] if line.endswith("…") else ""
        for word in message.rstrip("…").split():
            assert word in words, (word, line)
    assert "…" in text, "the rich report's messages do not fit a compact line"


def test_the_shortening_rule() -> None:
    assert shorten_words("short enough", 20) == "short enough"
    assert shorten_words("one two three four", 12) == "one two…"
    assert shorten_words("one two, three", 10) == "one two…"
    assert shorten_words("unbreakable-word here", 6) == "unbre…"
    assert len(shorten_words("a " * 50, 17)) <= 17
