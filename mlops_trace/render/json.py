"""`-o json`: the report object of DESIGN.md, exactly as `Report.to_dict()` builds it.

`{"schema_version": 1, "source": ..., "findings": [...], "checks": [...], "input_problems": [...]}`; keys keep the
order of the schema and non-ASCII text is escaped, so the output is plain ASCII whatever the logs contained.
"""

from __future__ import annotations

import json

from mlops_trace.findings import Report


def render(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"
