"""Prometheus query results as part of a Snapshot: `prometheus/<name>.json` in a bundle, read into values.

File format (one instant query per file; users may write it by hand from `curl .../api/v1/query`):

    {"query": "<PromQL>", "window": "5m", "result": [{"metric": {...}, "value": [<unix time>, "<number>"]}, ...]}

`result` may also be the whole API answer (`{"status": "success", "data": {"result": [...]}}`) or a scalar
(`[<time>, "<number>"]`). The file stem says what the result is for (`latency_p95`, `split_requests`; see `plan`);
the metric named in the query says where it was measured and in which unit. An unreadable file is an input problem
named by its path; the other files are still used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError
from mlops_trace.findings import InputProblem
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits
from mlops_trace.parsers.structured import load_json, read_bounded_text
from mlops_trace.promql.families import Family, family_of_query, unit_of_query
from mlops_trace.snapshot.files import bundle_files, is_plain_file

FOLDER = "prometheus"


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query result: its labels (`__name__` too, when the query keeps it) and its value
    (NaN when undefined, e.g. a quantile over no requests)."""

    labels: Mapping[str, str]
    value: float

    def group(self) -> tuple[tuple[str, str], ...]:
        """The labels that identify the series' group (everything but `__name__`), for joining two results."""
        return tuple(sorted((k, v) for k, v in self.labels.items() if k != "__name__"))

    def label_text(self) -> str:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in self.group()) + "}"


@dataclass(frozen=True)
class QueryResult:
    name: str  # the file stem: what the result is for
    query: str
    window: str
    samples: tuple[Sample, ...]
    display: str  # bundle-relative path, used as evidence
    family: Family | None
    unit: str  # "ms", "s" or "" for counts

    def to_ms(self, value: float) -> float:
        return value * 1000.0 if self.unit == "s" else value


@dataclass(frozen=True)
class PrometheusData:
    results: Mapping[str, QueryResult] = field(default_factory=dict)
    problems: tuple[InputProblem, ...] = ()
    source: str = ""  # the Prometheus URL the results came from, when known

    def __bool__(self) -> bool:
        """True when at least one result could be read (a folder of broken files is no usable input)."""
        return bool(self.results)

    def get(self, name: str) -> QueryResult | None:
        return self.results.get(name)

    def present_metrics(self) -> frozenset[str] | None:
        """The metric names the probe found (`metrics_present.json`), or None when there was no probe."""
        probe = self.results.get("metrics_present")
        if probe is None:
            return None
        return frozenset(s.labels.get("__name__", "") for s in probe.samples if s.labels.get("__name__"))


def parse_value(raw: Any) -> float | None:
    """`[<time>, "<number>"]` → float (`NaN`, `+Inf` included); None when it is not a sample value."""
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    try:
        return float(raw[1])
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float's range
        return None


def parse_result(raw: Any) -> list[Sample]:
    """Samples of a vector result, a scalar, or a whole `/api/v1/query` answer. ValueError when it is none of them."""
    if isinstance(raw, Mapping):
        data = raw.get("data", raw)
        if isinstance(data, Mapping) and "result" in data:
            return parse_result(data["result"])
        raise ValueError("result is an object without data.result")
    if not isinstance(raw, list):
        raise ValueError("result is not a list")
    scalar = parse_value(raw)
    if scalar is not None and not (raw and isinstance(raw[0], Mapping)):
        return [Sample({}, scalar)]
    samples: list[Sample] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"result[{index}] is not an object")
        metric = item.get("metric") or {}
        value = parse_value(item.get("value"))
        if not isinstance(metric, Mapping) or value is None:
            raise ValueError(f"result[{index}] has no metric labels or no [time, value] pair")
        samples.append(Sample({str(k): str(v) for k, v in metric.items()}, value))
    return samples


def read_query_file(path: Path, display: str, limits: InputLimits = DEFAULT_LIMITS) -> QueryResult:
    """One `prometheus/<name>.json`; ValueError (with a one-line reason) when it cannot be used."""
    try:
        document = load_json(read_bounded_text(path, limits), limits)
    except InputError as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(document, Mapping):
        raise ValueError("not a JSON object with query, window and result")
    query = document.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("no query (the PromQL the result answers)")
    if "result" not in document:
        raise ValueError("no result")
    samples = parse_result(document["result"])
    window = document.get("window")
    family_name = document.get("family")
    known_families = {f.value for f in Family}
    family = Family(family_name) if isinstance(family_name, str) and family_name in known_families else None
    family = family or family_of_query(query)
    return QueryResult(
        name=path.stem,
        query=" ".join(query.split()),
        window=window if isinstance(window, str) else "",
        samples=tuple(samples),
        display=display,
        family=family,
        unit=unit_of_query(query),
    )


def load_prometheus_dir(root: Path, limits: InputLimits = DEFAULT_LIMITS) -> PrometheusData | None:
    """The `prometheus/` folder of a bundle root; None when the bundle has none."""
    folder = root / FOLDER
    if folder.is_symlink() or not folder.is_dir():
        return None if not folder.is_symlink() else PrometheusData(
            problems=(InputProblem(FOLDER, "symbolic link: not followed"),))
    results: dict[str, QueryResult] = {}
    problems: list[InputProblem] = []
    source = ""
    for path in bundle_files(root, FOLDER, problems):
        if path.parent != folder or path.suffix != ".json":
            continue
        display = f"{FOLDER}/{path.name}"
        try:
            result = read_query_file(path, display, limits)
        except ValueError as exc:
            problems.append(InputProblem(display, str(exc).splitlines()[0]))
            continue
        results[result.name] = result
    meta = folder / "source.txt"
    if is_plain_file(meta) and meta.stat().st_size < 64 * 1024:
        try:
            source = meta.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            source = ""
    return PrometheusData(results, tuple(problems), source)


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
