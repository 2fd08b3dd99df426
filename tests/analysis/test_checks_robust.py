"""No check crashes on a malformed Kubernetes object: every check ends in pass, fail or skip, never `error`.

Objects reach the checks as YAML a person may have written, so any field can hold a value of the wrong type or
range. The fixture bundles (`fixtures/checks/`, `fixtures/scenarios/`) are the seeds. Each field of each object, named
by its path with list positions folded (`spec.candidates[].weight`: every candidate's weight at once), is set in turn
to each hostile value: infinity, NaN, -1, 10**400, true, null, "9002x", [], {}, "" and a date where a scalar was; a
scalar, or a list for a mapping and a mapping for a list, where a mapping or list was. Then every check runs through
the engine. Which bundles each (field, value) pair meets is bounded so the test takes about 25 seconds (see `_plan`).
The mutated snapshots are built in memory from the loaded seed; the bundles on disk stay as they are.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import CheckStatus
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot
from tests.fixture_walk import FIXTURES

# An unquoted date is a datetime to YAML: it stands in for the timestamps a field may hold where text belongs.
A_DATE = datetime.datetime(2025, 7, 1, 12, 0, tzinfo=datetime.timezone.utc)
LEAF_VALUES: tuple[Any, ...] = (float("inf"), float("nan"), -1, 10**400, True, None, "9002x", [], {}, "", A_DATE)
MAPPING_VALUES: tuple[Any, ...] = ("9002x", 7, None, ["9002x"])
LIST_VALUES: tuple[Any, ...] = ("9002x", 7, None, {"9002x": 1})

SLOW_PREFIX = "scenarios/"  # whole-stack bundles; see _plan

Step = str | int  # a mapping key, or a list position
FieldPath = tuple[Step, ...]
ANY_ITEM = "[]"  # a list position, folded


@dataclass(frozen=True)
class Mutation:
    """Set the fields of `bundle` at `fields` (object index, its kind, path with list positions folded) to `value`."""

    bundle: str
    fields: tuple[tuple[int, str, FieldPath], ...]
    value: Any

    @property
    def label(self) -> str:
        index, kind, path = self.fields[0]
        more = f" (and {len(self.fields) - 1} more fields)" if len(self.fields) > 1 else ""
        return f"{self.bundle} {kind} #{index} .{_dotted(path)}{more} = {self.value!r:.40}"


def _dotted(path: FieldPath) -> str:
    return ".".join(str(step) for step in path).replace(".[]", "[]")


def _bundle_dirs() -> list[str]:
    roots = [FIXTURES / "checks", FIXTURES / "scenarios"]
    return sorted(str(p.parent.relative_to(FIXTURES)) for root in roots for p in root.glob("**/expected.yaml"))


@cache
def _seed(bundle: str) -> Snapshot:
    return load_bundle_dir(FIXTURES / bundle, display=bundle)


def _shapes(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, str]]:
    """(folded path, "leaf" | "mapping" | "list") of every node below the object root."""
    if isinstance(value, Mapping):
        if path:
            yield path, "mapping"
        for key, item in value.items():
            yield from _shapes(item, (*path, key))
    elif isinstance(value, list):
        yield path, "list"
        for item in value:
            yield from _shapes(item, (*path, ANY_ITEM))
    else:
        yield path, "leaf"


def _values(shape: str) -> tuple[Any, ...]:
    return {"leaf": LEAF_VALUES, "mapping": MAPPING_VALUES, "list": LIST_VALUES}[shape]


@cache
def _log_bytes(bundle: str) -> int:
    return sum(log.path.stat().st_size for log in _seed(bundle).logs)


@cache
def _plan() -> dict[str, list[Mutation]]:
    """Mutations per bundle. A field some check fixtures hold is changed to each value once per check whose fixtures
    hold it (so a weight of 10**400 meets MT303's fixtures as well as MT304's), in that check's bundles with the fewest
    log bytes taken in turn: logs are parsed again on every run, and that is most of its cost.

    The scenario bundles hold whole stacks, with fields no check fixture has (probes, volumes, owner references,
    status details), and a run on them is 10 to 60 times slower: the fields only they hold are changed together, per
    value and shape, in the scenario with the fewest log bytes. About 20,000 runs of the catalog in all."""
    sites: dict[tuple[str, FieldPath, str], list[tuple[str, int]]] = defaultdict(list)
    for bundle in _bundle_dirs():
        seen: set[tuple[str, FieldPath, str]] = set()
        for index, obj in enumerate(_seed(bundle).objects):
            for path, shape in _shapes(obj.raw):
                key = (obj.kind, path, shape)
                if key not in seen:  # one object per bundle stands for its kind: other bundles vary the context
                    seen.add(key)
                    sites[key].append((bundle, index))
    plan: dict[str, list[Mutation]] = defaultdict(list)
    together: dict[tuple[str, str, int], list[tuple[int, str, FieldPath]]] = defaultdict(list)
    for (kind, path, shape), holders in sorted(sites.items(), key=lambda item: repr(item[0])):
        by_check: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for site in holders:
            if not site[0].startswith(SLOW_PREFIX):
                by_check[site[0].split("/")[1]].append(site)
        if not by_check:
            bundle, index = min(holders, key=lambda site: (_log_bytes(site[0]), site))
            for position in range(len(_values(shape))):
                together[(bundle, shape, position)].append((index, kind, path))
            continue
        start = zlib.crc32(repr((kind, path)).encode())  # stable across runs, unlike hash()
        for check_sites in by_check.values():
            least = min(_log_bytes(bundle) for bundle, _ in check_sites)
            cheap = [site for site in check_sites if _log_bytes(site[0]) <= 2 * least + 4096]
            for position, value in enumerate(_values(shape)):
                bundle, index = cheap[(start + position) % len(cheap)]
                plan[bundle].append(Mutation(bundle, ((index, kind, path),), value))
    for (bundle, shape, position), fields in together.items():
        # Shallow paths first: a mapping replaced whole leaves nothing below it for the deeper ones to change.
        ordered = tuple(sorted(fields, key=lambda field: len(field[2])))
        plan[bundle].append(Mutation(bundle, ordered, _values(shape)[position]))
    return dict(plan)


def _set(node: Any, path: FieldPath, value: Any) -> None:
    """Set every field at `path` below `node` (a folded step stands for every item of the list)."""
    step, rest = path[0], path[1:]
    if step == ANY_ITEM and isinstance(node, list):
        for position in range(len(node)):
            if rest:
                _set(node[position], rest, value)
            else:
                node[position] = copy.deepcopy(value)
    elif isinstance(node, dict) and step in node:
        if rest:
            _set(node[step], rest, value)
        else:
            node[step] = copy.deepcopy(value)


def _rebuilt(obj: KubeObject, raw: dict[str, Any]) -> KubeObject | None:
    """The object as the bundle reader would make it of `raw`: without a string kind and name it is left out."""
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    kind, name, namespace = raw.get("kind"), metadata.get("name"), metadata.get("namespace")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        return None
    return KubeObject(kind=kind, namespace=str(namespace) if namespace else None, name=name, raw=raw, source=obj.source)


def _mutated(seed: Snapshot, mutation: Mutation) -> Snapshot:
    objects: list[KubeObject | None] = list(seed.objects)
    raws: dict[int, dict[str, Any]] = {}
    for index, _, path in mutation.fields:
        raw = raws.setdefault(index, copy.deepcopy(dict(seed.objects[index].raw)))
        _set(raw, path, mutation.value)
    for index, raw in raws.items():
        objects[index] = _rebuilt(seed.objects[index], raw)
    snap = dataclasses.replace(seed, objects=[], _by_kind={}, _by_key={})
    snap.add_objects(obj for obj in objects if obj is not None)
    return snap


def test_plan_covers_the_fields_of_the_audit() -> None:
    """The mutations reach the fields that once crashed checks, in the fixtures of each check that holds them."""
    planned = {
        (m.bundle.split("/")[1], kind, _dotted(path), repr(m.value))
        for mutations in _plan().values()
        for m in mutations
        for _, kind, path in m.fields
    }
    weight = "spec.candidates[].weight"
    for check in ("MT108", "MT303", "MT304", "MT305", "MT403"):
        for value in ("nan", "inf", repr(10**400)):
            assert (check, "Experiment", weight, value) in planned, (check, value)
    for check in ("MT201", "MT202", "MT203"):
        assert (check, "Pod", "spec.containers[].ports[].containerPort", "'9002x'") in planned, check
    assert ("MT201", "NetworkPolicy", "spec.ingress[].ports[].port", "-1") in planned
    assert ("MT205", "Service", "spec.selector", "['9002x']") in planned


@pytest.mark.parametrize("bundle", _bundle_dirs())
def test_no_check_errors_on_mutated_objects(bundle: str) -> None:
    entries = select((), ())
    seed = _seed(bundle)
    errors: list[str] = []
    for mutation in _plan().get(bundle, []):
        report = run_checks(_mutated(seed, mutation), entries)
        errors += [f"{mutation.label}: {c.id} {c.reason}" for c in report.checks if c.status is CheckStatus.ERROR]
    assert not errors, f"{len(errors)} check error(s), first ones:\n" + "\n".join(errors[:15])
