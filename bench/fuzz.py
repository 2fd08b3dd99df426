"""Mutation fuzzing of bundles: hostile changes to the fixture bundles, pushed through the whole offline pipeline.

One case = one fixture bundle (fixtures/checks and fixtures/scenarios), copied (unchanged files as hard links), one
mutation applied, then: the bundle reader (directory, or a .tar.gz of it), every check, every renderer. What must
hold for every case (`check_case`):

- nothing raises but an `InputError` that names the bundle, and only when nothing usable is left;
- no check ends in `error`;
- a structured file (YAML/JSON) that a reference parser rejects, or that breaks a limit, is named in the input
  problems; so is every symbolic link and special file;
- nothing from outside the bundle (a symlink's target) reaches any output;
- the case ends within its time bound.

`tests/test_fuzz.py` runs a fixed, seeded budget of cases in CI; `python -m bench --fuzz N` runs a long campaign and
writes its figures into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_trace.errors import InputError
from mlops_trace.limits import InputLimits

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
# Small limits, so the cases that break them stay cheap; the defaults are far larger.
FUZZ_LIMITS = InputLimits(
    archive_bytes=8 * 1024 * 1024,
    archive_entries=400,
    file_bytes=4 * 1024 * 1024,
    yaml_alias_nodes=5_000,
    nesting_depth=100,
    line_chars=16 * 1024,
)
CASE_SECONDS = 20.0  # a case slower than this is a hang (the slowest real case takes well under a second)
OUTSIDE_MARKER = "OUTSIDE-THE-BUNDLE-7f3a9c"
STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")
# The reference parser (what a user's own tools would say of a file). libyaml's loader is only given files a
# mutation of a fixture produced (never the deeply nested ones, on which it overflows the C stack).
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

HOSTILE_VALUES: tuple[Any, ...] = (
    math.inf, -math.inf, math.nan, -1, 0, 10**400, 2**64, True, False, None, "9002x", "", "../../etc/passwd",
    "\x00", "a" * 70_000, [], {}, [[[[[]]]]], {"a": {"b": {"c": None}}}, 1.5, "NaN", "1e400", "-", "🙂",
)


# Fields the checks read as numbers, names, selectors or lists: a mutation aims at them more than half the time.
TELLING_KEYS = frozenset({
    "weight", "candidates", "default", "mirror", "containerPort", "port", "targetPort", "ports", "replicas",
    "minReplicas", "maxReplicas", "selector", "podSelector", "namespaceSelector", "matchLabels", "matchExpressions",
    "labels", "annotations", "conditions", "status", "type", "reason", "message", "ingress", "egress", "from", "to",
    "policyTypes", "rules", "paths", "path", "pathType", "backend", "service", "serviceName", "servicePort", "name",
    "namespace", "externalName", "containers", "args", "command", "env", "value", "storageUri", "requirements",
    "memory", "kind", "spec", "metadata", "loadBalancer", "clusterIP", "endpoints", "subsets", "addresses",
    "result", "metric", "query", "family", "window", "request", "response", "headers", "configs", "routes",
    "weighted_clusters", "clusters", "total_weight", "match", "prefix", "virtual_hosts", "domains",
})


def fixture_bundles() -> list[Path]:
    """Every fixture bundle (a folder holding expected.yaml), in a stable order."""
    return sorted(p.parent for p in FIXTURES.glob("**/expected.yaml"))


@dataclass
class Case:
    """What a mutation did: which bundle, which file, what kind of change; what the reader must name."""

    bundle: str
    kind: str
    target: str = ""
    detail: str = ""
    must_name: list[str] = field(default_factory=list)  # bundle-relative paths that must be input problems
    as_archive: bool = False
    seed: int = 0

    def describe(self) -> str:
        archive = " (as .tar.gz)" if self.as_archive else ""
        return f"{self.bundle}{archive}: {self.kind} {self.target} {self.detail}".strip()


@dataclass
class CaseResult:
    case: Case
    seconds: float
    failure: str | None = None  # the broken invariant, or None
    problems: int = 0
    findings: int = 0


# --- copying and writing --------------------------------------------------------------------------------------------


def copy_bundle(source: Path, target: Path) -> None:
    """A copy whose files are hard links: cheap, and safe because mutations replace files instead of editing them."""
    shutil.copytree(source, target, copy_function=os.link)


def _replace(path: Path, data: bytes) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _files(root: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    found = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.name != "expected.yaml")
    return [p for p in found if suffixes is None or p.suffix in suffixes]


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# --- structured mutations -------------------------------------------------------------------------------------------


def _load(path: Path) -> list[Any] | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix == ".json":
            return [json.loads(text)]
        return list(yaml.load_all(text, Loader=_FAST_LOADER))
    except (ValueError, yaml.YAMLError, RecursionError):
        return None


def _dump(path: Path, docs: list[Any]) -> bytes:
    if path.suffix == ".json":
        return json.dumps(docs[0], allow_nan=True).encode()
    return yaml.dump_all(docs, Dumper=_FAST_DUMPER, sort_keys=False, allow_unicode=True).encode()


def _slots(value: Any, limit: int = 4000) -> list[tuple[Any, Any]]:
    """(container, key) for every value inside `value`, breadth first, at most `limit`."""
    slots: list[tuple[Any, Any]] = []
    queue: list[Any] = [value]
    while queue and len(slots) < limit:
        current = queue.pop(0)
        if isinstance(current, dict):
            keys: Iterator[Any] = iter(list(current))
        elif isinstance(current, list):
            keys = iter(range(len(current)))
        else:
            continue
        for key in keys:
            slots.append((current, key))
            queue.append(current[key])
    return slots


def _mutate_value(root: Path, rng: random.Random, case: Case) -> None:
    files = _files(root, STRUCTURED_SUFFIXES)
    if not files:
        return
    path = rng.choice(files)
    docs = _load(path)
    if not docs:
        return
    slots = _slots(docs)
    if not slots:
        return
    telling = [slot for slot in slots if slot[1] in TELLING_KEYS]
    for _ in range(rng.randint(1, 4)):
        container, key = rng.choice(telling if telling and rng.random() < 0.6 else slots)
        if case.kind == "shape":
            current = container[key]
            container[key] = rng.choice(([], {}, "x", 7)) if isinstance(current, dict | list) else {"k": [current]}
        else:
            container[key] = rng.choice(HOSTILE_VALUES)
    case.target = _rel(root, path)
    _replace(path, _dump(path, docs))


def _deep(path: Path, depth: int) -> bytes:
    if path.suffix == ".json":
        return (b'{"a":' * depth) + b"1" + (b"}" * depth)
    if path.suffix in (".yaml", ".yml"):
        return b"- " * depth + b"x\n" if depth % 2 else (b"[" * depth) + (b"]" * depth)
    return (b"[" * depth) + (b"]" * depth)


def _mutate_deep(root: Path, rng: random.Random, case: Case) -> None:
    files = _files(root, STRUCTURED_SUFFIXES)
    if not files:
        return
    path = rng.choice(files)
    depth = rng.choice((150, 5_000, 200_000))
    depth += rng.randint(0, 1)
    _replace(path, _deep(path, depth))
    case.target, case.detail = _rel(root, path), f"nested {depth} deep"
    if depth > FUZZ_LIMITS.nesting_depth and _is_read_whole(case.target):
        case.must_name.append(case.target)


def _mutate_aliases(root: Path, rng: random.Random, case: Case) -> None:
    candidates = [p for p in _files(root, (".yaml", ".yml")) if _is_read_whole(_rel(root, p))]
    path = rng.choice(candidates) if candidates and rng.random() < 0.7 else root / "bundle.yaml"
    width, levels = rng.choice(((9, 9), (10, 6), (3, 20)))
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    _replace(path, ("\n".join(lines) + "\n").encode())
    case.target, case.detail = _rel(root, path), f"aliases {width}^{levels}"
    case.must_name.append(case.target)


def _is_read(rel: str) -> bool:
    """Files the reader looks at (and so must name when it cannot read them); anything else is ignored."""
    return rel == "bundle.yaml" or rel.split("/", 1)[0] in ("kube", "logs", "envoy", "requests", "prometheus")


def _is_read_whole(rel: str) -> bool:
    """Files the reader parses whole as YAML/JSON (logs are lines; a config_dump is streamed)."""
    if rel == "bundle.yaml":
        return True
    top = rel.split("/", 1)[0]
    if top == "kube":
        return rel.endswith(STRUCTURED_SUFFIXES)
    if top in ("requests", "prometheus"):
        return rel.count("/") == 1 and rel.endswith(".json")
    return False


# --- byte, line and file mutations ----------------------------------------------------------------------------------


def _mutate_bytes(root: Path, rng: random.Random, case: Case) -> None:
    files = _files(root)
    if not files:
        return
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 8)):
        choice = rng.randrange(5)
        spot = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(spot, len(data) - 1)] = rng.randrange(256)
        elif choice == 1:
            del data[spot : spot + rng.randint(1, 64)]
        elif choice == 2:
            data[spot:spot] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 3:
            data = data[:spot]
        else:
            data[spot:spot] = rng.choice((b"\xff\xfe", b"\x00", b"{{{", b"]]]", b": &a\n", b"*zz", b"\r", b"\t- - -"))
    _replace(path, bytes(data))
    case.target = _rel(root, path)


def _mutate_long_line(root: Path, rng: random.Random, case: Case) -> None:
    logs = [p for p in _files(root, (".log",))]
    path = rng.choice(logs) if logs else root / "logs" / "ns" / "pod" / "scheduler.log"
    needle = rng.choice(("Scheduler not ready", "Subscribed to scheduler", "failed to schedule", "route", "x" * 7))
    length = rng.choice((40_000, 300_000, 2_000_000))
    line = (needle + " ") * (length // (len(needle) + 1))
    existing = path.read_bytes() if path.is_file() else b""
    _replace(path, existing + line.encode() + rng.choice((b"\n", b"")) + existing)
    case.target, case.detail = _rel(root, path), f"a {length}-character line"


def _mutate_link(root: Path, rng: random.Random, case: Case, outside: Path) -> None:
    files = _files(root)
    kind = rng.randrange(3)
    if kind == 0 and files:  # a file becomes a link to a file outside the bundle
        path = rng.choice(files)
        path.unlink()
        path.symlink_to(outside)
    elif kind == 1:  # a linked folder where the reader looks for pods
        path = root / "logs" / "linked-ns"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(outside.parent, target_is_directory=True)
    else:  # a log that is a link
        path = root / "logs" / "ns" / "pod" / "c.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        path.symlink_to(outside)
    case.target = _rel(root, path)
    if _is_read(case.target):
        case.must_name.append(case.target)


def _mutate_fifo(root: Path, rng: random.Random, case: Case) -> None:
    files = _files(root)
    path = rng.choice(files) if files else root / "kube" / "pipe.yaml"
    if path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    case.target = _rel(root, path)
    if _is_read(case.target):
        case.must_name.append(case.target)


def _mutate_junk_file(root: Path, rng: random.Random, case: Case) -> None:
    where = rng.choice((
        "kube/junk.yaml", "kube/deep/er/junk.json", "logs/ns/pod/junk.log", "logs/junk.log",
        "envoy/ns/pod/config_dump.json", "envoy/ns/pod/stats.txt", "envoy/ns/pod/access.log",
        "requests/junk.json", "prometheus/latency_p95.json", "prometheus/split_requests.json", "bundle.yaml",
    ))
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    if rng.random() < 0.5:
        body = rng.choice((
            b'{"query": "x", "result": [{"metric": {"a": 1}, "value": [1, ' + b"9" * 400 + b']}], "family": [1]}',
            b'{"query": "histogram_quantile(0.95, x)", "result": {"data": {"result": 5}}}',
            b'[{"request": {"path": "/v2/models/x/infer", "headers": {"a": [1]}}, "response": {"status": 1e400}}]',
            b'{"configs": [{"@type": 5}, null, {"dynamic_route_configs": {"a": 1}}]}',
            b"kind: List\nitems: [1, 2, {kind: Pod}]\n", b"--- !!python/object:os.system\nx: 1\n",
            b"\xef\xbb\xbfkind: Pod\nmetadata: {name: p, namespace: n, labels: [a]}\n", b"a: 2001-13-45\n",
            b"envoy_cluster_upstream_rq{a=\"b\"} NaN\nnot a stat line\n" + b"x" * 5000,
            b"cluster.x.upstream_rq_total: " + b"9" * 5000 + b"\nserver.live: 1\n",
        ))
    _replace(root / where, body)
    case.target = where
    if _is_read_whole(where) and _reference_rejects(root / where):
        case.must_name.append(where)


def _reference_rejects(path: Path) -> bool:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return True
    if not text.strip():
        return False  # an empty file is "collected, none found" (kubectl writes one for an empty List)
    try:
        if path.suffix == ".json":
            json.loads(text)
        else:
            list(yaml.load_all(text, Loader=_FAST_LOADER))
    except (ValueError, yaml.YAMLError, RecursionError):
        return True
    return False


MUTATIONS = ("value", "shape", "bytes", "deep", "aliases", "long-line", "link", "fifo", "junk-file")


def mutate(source: Path, root: Path, kind: str, rng: random.Random, outside: Path) -> Case:
    """Copy `source` to `root` and apply one mutation of `kind`; the Case says what was done."""
    copy_bundle(source, root)
    case = Case(bundle=source.relative_to(FIXTURES).as_posix(), kind=kind)
    actions: dict[str, Callable[[], None]] = {
        "value": lambda: _mutate_value(root, rng, case),
        "shape": lambda: _mutate_value(root, rng, case),
        "bytes": lambda: _mutate_bytes(root, rng, case),
        "deep": lambda: _mutate_deep(root, rng, case),
        "aliases": lambda: _mutate_aliases(root, rng, case),
        "long-line": lambda: _mutate_long_line(root, rng, case),
        "link": lambda: _mutate_link(root, rng, case, outside),
        "fifo": lambda: _mutate_fifo(root, rng, case),
        "junk-file": lambda: _mutate_junk_file(root, rng, case),
    }
    actions[kind]()
    if case.kind in ("value", "shape", "bytes") and case.target and _is_read_whole(case.target):
        if _reference_rejects(root / case.target):
            case.must_name.append(case.target)
    return case


def pack(root: Path, archive: Path) -> None:
    """The bundle as a .tar.gz (links and FIFOs kept as such, as a careless `tar czf` would)."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(root, arcname="bundle")


# --- running one case -----------------------------------------------------------------------------------------------


def check_case(root: Path, case: Case, outside: Path) -> CaseResult:
    """Read, check and render the mutated bundle at `root`; the first broken invariant is the result's failure."""
    from mlops_trace.analysis.catalog import select
    from mlops_trace.analysis.engine import run_checks
    from mlops_trace.findings import CheckStatus
    from mlops_trace.render import FORMATS, render
    from mlops_trace.snapshot.bundle import open_bundle

    started = time.perf_counter()
    target = root
    if case.as_archive:
        target = root.parent / "bundle.tar.gz"
        pack(root, target)
    result = CaseResult(case, 0.0)
    try:
        with open_bundle(target, FUZZ_LIMITS) as snap:
            report = run_checks(snap, select((), ()))
            # JSON holds every field of the report; one other format in turn, so each case stays cheap
            outputs = [render(report, fmt) for fmt in ("json", FORMATS[case.seed % len(FORMATS)])]
            named = {p.path for p in snap.problems}
            result.problems, result.findings = len(snap.problems), len(report.findings)
            errored = [f"{c.id}: {c.reason}" for c in report.checks if c.status is CheckStatus.ERROR]
            if errored:
                result.failure = "check error: " + "; ".join(errored)
            elif not case.as_archive and (missing := [p for p in case.must_name if p not in named]):
                result.failure = f"not named as input problems: {missing} (named: {sorted(named)[:8]})"
            elif any(OUTSIDE_MARKER in text for text in outputs):
                result.failure = "a file from outside the bundle reached the output"
    except InputError as exc:
        message = str(exc)
        if "\n" in message or str(target) not in message:
            result.failure = f"InputError is not one line naming the bundle: {message[:200]!r}"
    except Exception as exc:  # the invariant under test: nothing else escapes
        result.failure = f"uncaught {type(exc).__name__}: {str(exc)[:300]}"
    result.seconds = time.perf_counter() - started
    if result.failure is None and result.seconds > CASE_SECONDS:
        result.failure = f"took {result.seconds:.1f} s (bound {CASE_SECONDS:.0f} s)"
    return result


def outside_file(folder: Path) -> Path:
    """A file outside every bundle, whose content must never reach an output."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret.txt"
    path.write_text(f"{OUTSIDE_MARKER}\nkind: Secret\n", encoding="utf-8")
    return path


def run_case(work: Path, bundle: Path, kind: str, seed: int, as_archive: bool = False) -> CaseResult:
    """One whole case in `work` (which must be empty): mutate a copy of `bundle`, then check it."""
    rng = random.Random(seed)
    outside = outside_file(work / "outside")
    root = work / "case" / "bundle"
    root.parent.mkdir(parents=True)
    case = mutate(bundle, root, kind, rng, outside)
    case.as_archive, case.seed = as_archive, seed
    return check_case(root, case, outside)


# --- a campaign -----------------------------------------------------------------------------------------------------


@dataclass
class Campaign:
    cases: int = 0
    failures: list[CaseResult] = field(default_factory=list)
    hangs: int = 0
    slowest: float = 0.0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


def campaign(count: int, seed: int, work: Path, progress: Callable[[int], None] | None = None) -> Campaign:
    """`count` random cases (seeded): the figures `python -m bench --fuzz N` reports."""
    import resource

    rng = random.Random(seed)
    bundles = fixture_bundles()
    result = Campaign()
    started = time.perf_counter()
    for index in range(count):
        kind = rng.choice(MUTATIONS)
        case_dir = work / f"c{index}"
        case_dir.mkdir(parents=True)
        try:
            outcome = run_case(case_dir, rng.choice(bundles), kind, rng.randrange(2**32), rng.random() < 0.15)
        finally:
            shutil.rmtree(case_dir, ignore_errors=True)
        result.cases += 1
        result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        result.slowest = max(result.slowest, outcome.seconds)
        if outcome.failure is not None:
            result.failures.append(outcome)
            if outcome.seconds > CASE_SECONDS:
                result.hangs += 1
        if progress is not None and index % 100 == 0:
            progress(index)
    result.seconds = time.perf_counter() - started
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def describe(result: Campaign, seed: int) -> str:
    lines = [
        f"- cases: {result.cases} (seed {seed}), in {result.seconds:.0f} s ({result.seconds / max(result.cases, 1) * 1000:.0f} ms a case)",
        f"- crashes or broken invariants: {len(result.failures)}; hangs (a case over {CASE_SECONDS:.0f} s): {result.hangs}",
        f"- slowest case: {result.slowest:.2f} s; peak memory of the campaign process: {result.peak_rss_mib:.0f} MiB",
        "- mutations: " + ", ".join(f"{kind} {n}" for kind, n in sorted(result.by_kind.items())),
    ]
    for failure in result.failures[:10]:
        lines.append(f"  - FAILED {failure.case.describe()}: {failure.failure}")
    return "\n".join(lines)
