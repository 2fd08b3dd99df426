"""Renderers: turn a `Report` into text, one module per output format.

Every module here exposes a pure `render(report) -> str` (no I/O, same input, same text); `table.render` also takes
`color`, `width` and `verbose`. `render(report, fmt)` below links causes to effects (`Report.caused_by`, from
`analysis.causes`) when the caller has not, picks the module by name and imports it only when asked, so `-o json`
never pays for rich.
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from mlops_trace.analysis.causes import linked
from mlops_trace.errors import UsageError
from mlops_trace.findings import Report

FORMATS: tuple[str, ...] = ("table", "json", "yaml", "junit", "sarif", "markdown")

__all__ = ["FORMATS", "render"]


class _Renderer(Protocol):
    def __call__(self, report: Report) -> str: ...


class _TableRenderer(Protocol):
    def __call__(self, report: Report, *, color: bool = False, width: int = 120, verbose: bool = False) -> str: ...


def render(report: Report, fmt: str, *, color: bool = False, width: int = 120, verbose: bool = False) -> str:
    """`report` as text in format `fmt` (one of `FORMATS`); `color`, `width` and `verbose` only shape the table."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if not report.caused_by:
        report = linked(report)
    module = importlib.import_module(f"{__name__}.{fmt}")
    if fmt == "table":
        table_render = cast(_TableRenderer, module.render)
        return table_render(report, color=color, width=width, verbose=verbose)
    format_render = cast(_Renderer, module.render)
    return format_render(report)
