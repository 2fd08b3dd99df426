"""README.md's check catalog table is the catalog: regenerated from the checks' metadata and compared, row by row.

On a mismatch the failure prints the table to paste (or run `mlops-trace checks list -o markdown`).
"""

from __future__ import annotations

from typer.testing import CliRunner

from mlops_trace.analysis.catalog import load_catalog, markdown_table
from mlops_trace.cli import app
from tests.fixture_walk import REPO

HEADER = "| id | slug | severity | requires |"


def readme_table() -> str:
    """The table in README.md that starts with HEADER: its consecutive `|` lines, each ending in a newline."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(HEADER)]
    assert len(starts) == 1, f"README.md must hold one catalog table starting {HEADER!r}, found {len(starts)}"
    table: list[str] = []
    for line in lines[starts[0] :]:
        if not line.startswith("|"):
            break
        table.append(line + "\n")
    return "".join(table)


def test_readme_catalog_table_is_the_catalog() -> None:
    expected = markdown_table(load_catalog())
    assert readme_table() == expected, (
        "README.md's check catalog table differs from the catalog; replace it with this "
        "(`mlops-trace checks list -o markdown` prints it):\n\n" + expected
    )


def test_checks_list_markdown_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["checks", "list", "-o", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout == markdown_table(load_catalog())
