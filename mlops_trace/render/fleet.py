"""A run over several clusters (`FleetReport`) as text, in the same formats as one report (`render.FORMATS`).

`json`/`yaml`: `FleetReport.to_dict()` (one report's keys, each item with its `cluster`, plus the `clusters` rows);
`table`: `render.fleet_table`; `sarif`, `junit`: their modules' `render_fleet`; `markdown`: a table of the clusters,
then each cluster's report with its headings one level down.
"""

from __future__ import annotations

import json

from mlops_trace.errors import UsageError
from mlops_trace.fleet_report import ClusterStatus, FleetReport


def render_fleet(fleet: FleetReport, fmt: str, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
    from mlops_trace.render import FORMATS

    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(fleet.to_dict(), indent=2, sort_keys=False) + "\n"
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(fleet.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False))
    if fmt == "table":
        from mlops_trace.render import fleet_table

        return fleet_table.render(fleet, color=color, width=width, verbose=verbose)
    if fmt == "sarif":
        from mlops_trace.render import sarif

        return sarif.render_fleet(fleet)
    if fmt == "junit":
        from mlops_trace.render import junit

        return junit.render_fleet(fleet)
    return _markdown(fleet)


def _markdown(fleet: FleetReport) -> str:
    from mlops_trace.render import markdown, render

    lines = ["# mlops-trace doctor report: several clusters", "", f"**Source:** {markdown._code(fleet.source)}", ""]
    lines += ["| cluster | status | findings | reason |", "|---|---|---|---|"]
    for outcome in fleet.clusters:
        row = outcome.row()
        found = ", ".join(f"{count} {severity}" for severity, count in row["findings"].items())
        cells = (outcome.cluster, outcome.status.value,
                 found if outcome.status is ClusterStatus.EXAMINED else "–", outcome.reason or "")
        lines.append("| " + " | ".join(markdown._text(cell) for cell in cells) + " |")
    lines.append("")
    for outcome in fleet.clusters:
        lines += [f"## Cluster {markdown._code(outcome.cluster)}", ""]
        if outcome.report is None:
            lines += [f"Could not be examined: {markdown._text(outcome.reason)}", ""]
            continue
        # Text from a cluster is escaped (`\#`), so a line that starts with `#` is one of the report's headings.
        body = render(outcome.report, "markdown").splitlines()[1:]
        lines += [f"#{line}" if line.startswith("#") else line for line in body]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
