"""Query a Prometheus for the service-level checks and write the answers as `prometheus/<name>.json` files.

Steps: probe which known metrics exist (`count by (__name__)`), plan the best query per check, run each, and write
`{"query", "window", "family", "result"}` per file, plus the probe itself (`metrics_present.json`) and the server's
address (`source.txt`). The checks then read the folder like any other part of a bundle; a bundle collected today
and one written by hand with curl look the same to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.promql import families as m
from mlops_trace.prometheus.client import QuerySource
from mlops_trace.promql.plan import PRESENT, Plan, plan_queries
from mlops_trace.promql.builders import check_window, freshest_common_sample, probe
from mlops_trace.snapshot.prometheus import FOLDER, parse_result


@dataclass(frozen=True)
class Collection:
    """What was written and why: the plan (found metrics, chosen query per check) and the files."""

    plan: Plan
    files: tuple[str, ...]
    source: str
    warnings: tuple[str, ...] = ()

    def notes(self) -> list[str]:
        found = m.describe_families(self.plan.present)
        lines = [f"prometheus {self.source or '(unnamed)'}: found {found}"]
        lines += [f"prometheus: {line}" for line in self.plan.describe()]
        return lines + list(self.warnings)


def present_metrics(source: QuerySource, names: Iterable[str] = m.PROBED) -> tuple[str, Any, frozenset[str]]:
    """(the probe's PromQL, its raw result, the metric names found)."""
    promql = probe(names)
    raw = source.query(promql)
    found = frozenset(s.labels.get("__name__", "") for s in parse_result(raw)) - {""}
    return promql, raw, found


def _write(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def collect_queries(source: QuerySource, window: str, bundle_root: Path, source_name: str = "") -> Collection:
    """Probe, plan and run the queries; write them under `<bundle_root>/prometheus/`."""
    window = check_window(window)
    folder = bundle_root / FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create ({exc.strerror or exc})") from exc
    promql, raw, found = present_metrics(source)
    files = [f"{FOLDER}/{PRESENT}.json"]
    _write(folder / f"{PRESENT}.json", {"query": promql, "window": window, "result": raw})
    plan = plan_queries(found, window)
    for planned in plan.queries:
        result = source.query(planned.promql)
        name = f"{planned.purpose.value}.json"
        _write(folder / name, {"query": planned.promql, "window": window, "family": planned.family.value,
                               "result": result})
        files.append(f"{FOLDER}/{name}")
    if source_name:
        try:
            (folder / "source.txt").write_text(source_name + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{folder / 'source.txt'}: cannot write ({exc.strerror or exc})") from exc
    return Collection(plan, tuple(files), source_name)


def wait_for_scrape(
    source: QuerySource,
    names: Iterable[str],
    after: float,
    timeout_s: float,
    *,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait until every target exporting `names` has been scraped after the wall-clock time `after` (so counters
    include requests that just ended). False when `timeout_s` passes first or no such series exists."""
    promql = freshest_common_sample(names)
    deadline = clock() + timeout_s
    while True:
        samples = parse_result(source.query(promql))
        if samples and samples[0].value >= after:
            return True
        if clock() >= deadline:
            return False
        sleep(poll_s)
