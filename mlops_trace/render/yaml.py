"""`-o yaml`: the same object as `-o json`, written as YAML for people who read it in a terminal or a PR."""

from __future__ import annotations

from mlops_trace.findings import Report


def render(report: Report) -> str:
    import yaml

    return yaml.safe_dump(report.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False)
