"""A `SmokeReport` as text: a short human summary, JSON, JUnit XML or SARIF.

JUnit and SARIF extend what `mlops_trace.render` makes of the doctor report rather than redo it: JUnit keeps the
doctor suite (one test case per check) and adds a `mlops-trace smoke gates` suite with one test case per gate;
SARIF keeps the doctor run and adds one rule per gate and one result per failed gate. A run that could not happen
still gives a well-formed document naming the error, so a CI report parser never reads an empty file. Over several
clusters they extend doctor's fleet documents the same way: JUnit one suite per cluster plus the gates suite, SARIF
one run whose doctor results carry `properties.cluster`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from mlops_trace import __version__
from mlops_trace.errors import UsageError
from mlops_trace.render._common import explain_command, namespace_label, one_line, verdict_line
from mlops_trace.smoke.gates import GateResult, GateStatus
from mlops_trace.smoke.report import SmokeReport, gates_text

FORMATS: tuple[str, ...] = ("text", "json", "junit", "sarif")
GATE_SUITE = "mlops-trace smoke gates"
_STATUS_WORD = {GateStatus.PASS: "PASS", GateStatus.FAIL: "FAIL", GateStatus.SKIP: "SKIP"}
# Characters XML 1.0 forbids (as in render.junit): an error text may quote a terminal escape.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML_CHAR.sub("", text)


def render_smoke(smoke: SmokeReport, fmt: str) -> str:
    if fmt == "text":
        return render_text(smoke)
    if fmt == "json":
        return json.dumps(smoke.to_dict(), indent=2) + "\n"
    if fmt == "junit":
        return render_junit(smoke)
    if fmt == "sarif":
        return json.dumps(sarif_log(smoke), indent=2) + "\n"
    raise UsageError(f"--output must be one of {', '.join(FORMATS)} (got {fmt!r})")


# --- text ----------------------------------------------------------------------------------------------------------


def _measured(gate: GateResult) -> str:
    if gate.measured is None:
        return "-"
    if gate.unit == "share":
        return f"{100.0 * gate.measured:.2f}%"
    if gate.unit == "ms":
        return f"{gate.measured:.1f} ms"
    return f"{gate.measured:g}"


def render_text(smoke: SmokeReport) -> str:
    lines = [f"mlops-trace smoke · source: {one_line(smoke.source)}"]
    if smoke.target:
        lines.append(f"target: {one_line(smoke.target)}")
    if smoke.error is not None:
        lines += ["", f"ERROR: {one_line(smoke.error)}", "", "result: ERROR (exit 2): the smoke test could not run"]
        return "\n".join(lines) + "\n"
    if smoke.gates:
        lines += ["", "gates:"]
        width = max(len(gate.name) for gate in smoke.gates)
        for gate in smoke.gates:
            lines.append(f"  {_STATUS_WORD[gate.status]}  {gate.name:<{width}}  {_measured(gate):>10}  "
                         f"{one_line(gate.detail)}")
    reports = [smoke.report] if smoke.report is not None else []
    if smoke.fleet is not None:
        lines += ["", "clusters:"]
        for outcome in smoke.fleet.clusters:
            said = verdict_line(outcome.report) if outcome.report is not None else (
                f"could not be examined: {one_line(outcome.reason)}")
            lines.append(f"  {one_line(outcome.cluster)}: {said}")
        reports = list(smoke.fleet.reports())
    elif smoke.report is not None:
        lines += ["", f"checks: {verdict_line(smoke.report)}"]
    if reports:
        failing = smoke.failing_findings
        if failing:
            lines.append(f"findings at or above {smoke.fail_on.value}:")
            for finding in failing:
                where = f"[{one_line(finding.cluster)}] " if finding.cluster is not None else ""
                lines.append(f"  {finding.severity.value:<8} {where}{finding.id} {namespace_label(finding.namespace)} "
                             f"{finding.object}: {one_line(finding.message)}")
                lines.append(f"           fix: {one_line(finding.fix)} ({explain_command(finding)})")
        for report in reports:
            where = f"[{one_line(report.cluster)}] " if report.cluster is not None else ""
            for problem in report.input_problems:
                lines.append(f"  {where}input not used: {one_line(problem.path)}: {one_line(problem.reason)}")
    if smoke.prometheus or smoke.notes:
        lines.append("")
        lines += [f"note: {one_line(note)}" for note in (*smoke.prometheus, *smoke.notes)]
    lines += ["", _result_line(smoke)]
    return "\n".join(lines) + "\n"


def _result_line(smoke: SmokeReport) -> str:
    if smoke.fleet is not None and not smoke.fleet.any_examined():
        return f"result: ERROR (exit 2): none of the {len(smoke.fleet.clusters)} contexts could be examined"
    errored = smoke.report.errored_checks() if smoke.report is not None else []
    if errored:
        names = ", ".join(f"{c.id} ({one_line(c.reason)})" for c in errored)
        return f"result: ERROR (exit 2): not every check could run: {names}"
    parts: list[str] = []
    failed = smoke.failed_gates
    if failed:
        parts.append(f"{len(failed)} gate(s) failed ({', '.join(gate.name for gate in failed)})")
    failing = smoke.failing_findings
    if failing:
        ids = sorted({f.id for f in failing})
        parts.append(f"{len(failing)} finding(s) at or above {smoke.fail_on.value} ({', '.join(ids)})")
    counted = gates_text(smoke.gates) if smoke.gates else "no gates"
    if not parts:
        return f"result: PASS (exit 0): {counted}, no finding at or above {smoke.fail_on.value}"
    return f"result: FAIL (exit 1): {'; '.join(parts)}"


# --- JUnit ---------------------------------------------------------------------------------------------------------


def render_junit(smoke: SmokeReport) -> str:
    from mlops_trace.render.junit import render as doctor_junit

    if smoke.fleet is not None:
        from mlops_trace.render.junit import render_fleet

        root = ET.fromstring(render_fleet(smoke.fleet).split("\n", 1)[1])
    elif smoke.report is not None:
        root = ET.fromstring(doctor_junit(smoke.report).split("\n", 1)[1])
    else:
        root = ET.Element("testsuites", {"name": "mlops-trace smoke"})
    if smoke.error is not None:
        suite = ET.SubElement(root, "testsuite", {"name": "mlops-trace smoke", "tests": "1", "failures": "0",
                                                  "errors": "1", "skipped": "0"})
        case = ET.SubElement(suite, "testcase", {"classname": "mlops-trace.smoke", "name": "smoke could not run"})
        ET.SubElement(case, "error", {"message": _clean(smoke.error), "type": "could-not-run"})
    else:
        _gate_suite(root, smoke)
    # `<testsuites>` counts tests, failures and errors only: the Jenkins/Ant schema has no `skipped` there.
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.attrib.pop("skipped", None)
    root.set("name", "mlops-trace smoke")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _gate_suite(root: ET.Element, smoke: SmokeReport) -> None:
    clean = _clean
    gates = smoke.gates
    failed = sum(1 for gate in gates if gate.status is GateStatus.FAIL)
    skipped = sum(1 for gate in gates if gate.status is GateStatus.SKIP)
    suite = ET.SubElement(root, "testsuite", {"name": GATE_SUITE, "tests": str(len(gates)), "failures": str(failed),
                                              "errors": "0", "skipped": str(skipped)})
    properties = ET.SubElement(suite, "properties")
    if smoke.target:
        ET.SubElement(properties, "property", {"name": "target", "value": clean(smoke.target)})
    request = smoke.request or {}
    for key in ("count", "succeeded", "success_rate", "rate_rps"):
        if request.get(key) is not None:
            ET.SubElement(properties, "property", {"name": f"request.{key}", "value": str(request[key])})
    latency = request.get("latency_ms")
    if isinstance(latency, dict):
        for key in ("p50", "p95", "p99"):
            if latency.get(key) is not None:
                ET.SubElement(properties, "property", {"name": f"request.{key}_ms", "value": str(latency[key])})
    # Numbered: xunitparser reads the properties of every suite into one dict and refuses a repeated name.
    for number, note in enumerate(smoke.prometheus, start=1):
        ET.SubElement(properties, "property", {"name": f"prometheus.{number}", "value": clean(note)})
    for gate in gates:
        case = ET.SubElement(suite, "testcase", {"classname": "mlops-trace.gate", "name": clean(f"gate {gate.name}")})
        if gate.status is GateStatus.FAIL:
            failure = ET.SubElement(case, "failure", {"message": clean(gate.detail), "type": "gate"})
            failure.text = clean(f"measured: {_measured(gate)}; threshold: {gate.threshold}; {gate.detail}")
        elif gate.status is GateStatus.SKIP:
            ET.SubElement(case, "skipped", {"message": clean(gate.detail)})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = clean(gate.detail)


# --- SARIF ---------------------------------------------------------------------------------------------------------


def sarif_log(smoke: SmokeReport) -> dict[str, Any]:
    from mlops_trace.render.sarif import CATALOG_BASE, SARIF_VERSION, SCHEMA_URI
    from mlops_trace.render.sarif import sarif_log as doctor_sarif

    if smoke.fleet is not None:
        from mlops_trace.render.sarif import fleet_sarif_log

        log = fleet_sarif_log(smoke.fleet)
    elif smoke.report is not None:
        log = doctor_sarif(smoke.report)
    else:
        log = {
            "$schema": SCHEMA_URI,
            "version": SARIF_VERSION,
            "runs": [{"tool": {"driver": {"name": "mlops-trace", "version": __version__, "rules": []}},
                      "invocations": [{"executionSuccessful": True}], "results": []}],
        }
    run = log["runs"][0]
    run.setdefault("properties", {})["smoke"] = {"result": smoke.verdict, "exit_code": smoke.exit_code,
                                                 "target": smoke.target}
    invocation = run["invocations"][0]
    if smoke.error is not None:
        invocation["executionSuccessful"] = False
        invocation.setdefault("toolExecutionNotifications", []).append(
            {"level": "error", "message": {"text": f"smoke could not run: {smoke.error}"}}
        )
        return log
    rules = run["tool"]["driver"].setdefault("rules", [])
    run.setdefault("originalUriBaseIds", {}).setdefault(CATALOG_BASE, {"description": {"text": _GATES_DOC_BASE}})
    for gate in smoke.gates:
        rule_id = f"gate/{gate.name.replace(' ', '-')}"
        index = len(rules)
        rules.append(_gate_rule(rule_id, gate))
        if gate.status is GateStatus.FAIL:
            run["results"].append(
                {
                    "ruleId": rule_id,
                    "ruleIndex": index,
                    "level": "error",
                    "message": {"text": f"gate {gate.name} failed: {gate.detail}"},
                    # A gate judges the endpoint, which is no file: the alert opens the doc that explains gates.
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": GATES_DOC, "uriBaseId": CATALOG_BASE},
                                "region": {"startLine": 1},
                            },
                            "message": {"text": f"measured {_measured(gate)}: {gate.detail}"},
                            "logicalLocations": [{"name": smoke.target or "endpoint", "kind": "resource"}],
                        }
                    ],
                    "partialFingerprints": {"mlopsTraceGate/v1": rule_id},
                    "properties": gate.to_dict(),
                }
            )
        elif gate.status is GateStatus.SKIP:
            invocation.setdefault("toolExecutionNotifications", []).append(
                {"level": "note", "associatedRule": {"id": rule_id, "index": index},
                 "message": {"text": f"gate {gate.name} skipped: {gate.detail}"}}
            )
    return log


GATES_DOC = "docs/ci/github-actions.md"
_GATES_DOC_BASE = "The top of the source tree of mlops-trace"
# What each gate judges (the gate's name begins with its key), for the rule's description; see smoke/gates.py.
_GATE_MEANING = {
    "min-success": "The share of requests answered 2xx (gRPC OK) is at least --min-success.",
    "max-p95": "The client-side P95 total latency is at most --max-p95 ms.",
    "max-p99": "The client-side P99 total latency is at most --max-p99 ms.",
    "split": "Every candidate's observed share is within --split-tolerance of its target share (95 % confidence).",
    "baseline": "A hop's latency did not regress beyond --regression-margin of the stored baseline.",
}


def _gate_rule(rule_id: str, gate: GateResult) -> dict[str, Any]:
    key = next((key for key in _GATE_MEANING if gate.name.startswith(key)), "")
    meaning = _GATE_MEANING.get(key, f"The smoke gate {gate.name} holds.")
    help_text = f"{meaning} A failed gate makes `mlops-trace smoke` exit 1; the JUnit report has the measurement."
    return {
        "id": rule_id,
        "name": gate.name,
        "shortDescription": {"text": f"smoke gate {gate.name}"},
        "fullDescription": {"text": meaning},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["mlops-trace", "smoke-gate"]},
    }
