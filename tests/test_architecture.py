"""Rules of the package's shape, read from the source with `ast` (nothing is imported, so a broken module still gets
reported): no import cycles, checks stay pure functions over a Snapshot, the check catalog is the one home of check
ids, modules stay small, and one table of Kubernetes kinds.

Every failure names the modules and lines to change. The import graph counts every import statement wherever it
sits (module level, inside a function, under `if TYPE_CHECKING:`, in a `try:`) plus `importlib.import_module("...")`
with a literal name: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "mlops_trace"
PACKAGE_DIR = REPO / PACKAGE
CHECKS_DIR = REPO / "checks"

# Layers a check must not reach: a check is a pure function over a Snapshot, so it never talks to a cluster, a
# Prometheus, the reference stack, the bundle server, the trace runner or the CLI.
FORBIDDEN_FOR_CHECKS = (
    "mlops_trace.trace",
    "mlops_trace.collect",
    "mlops_trace.prometheus",
    "mlops_trace.stack",
    "mlops_trace.serve",
    "mlops_trace.cli",
)
MAX_MODULE_LINES = 800
# The CLI's flag declarations are one long list by nature; protoc output is not edited by hand.
LONG_MODULE_ALLOWED = ("mlops_trace/cli.py",)
GENERATED_GLOB = "mlops_trace/grpc_v2/*_pb2*.py"
KINDS_MODULE = "mlops_trace/kinds.py"
CHECK_ID = re.compile(r"MT[0-9]{3}")
MIN_KIND_TABLE = 5
# Kinds a table of kind specs would name (built-in, Seldon Core v2, MetalLB). A call naming one of them among its
# string arguments (`KindSpec("Pod", ...)`, `Resource("", "v1", "pods", "Pod", ...)`, `Spec(kind="Pod")`) is a spec.
KUBERNETES_KINDS = frozenset(
    {
        "Pod", "Service", "Endpoints", "EndpointSlice", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
        "CronJob", "Ingress", "IngressClass", "NetworkPolicy", "HorizontalPodAutoscaler", "ConfigMap", "Secret",
        "Event", "Namespace", "Node", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
        "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "Lease", "Model", "Server",
        "Experiment", "Pipeline", "SeldonRuntime", "SeldonConfig", "ServerConfig", "IPAddressPool", "L2Advertisement",
    }
)  # fmt: skip


# --- the source -----------------------------------------------------------------------------------------------------


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _package_files() -> dict[str, Path]:
    """`mlops_trace.analysis.check` -> its file; a package maps to its `__init__.py`."""
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _check_files() -> list[Path]:
    return sorted(CHECKS_DIR.rglob("*.py"))


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# --- the import graph -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    source: str  # importing module's file, relative to the repo
    line: int
    target: str  # the mlops_trace module it loads (a package stands for its __init__)
    statement: str  # the import as written, for the message

    def where(self) -> str:
        return f"{self.source}:{self.line} `{self.statement}`"


def _resolve(name: str) -> str | None:
    """The module a dotted name loads: itself if it is a module or package, else its longest existing prefix (so
    `mlops_trace.findings.Finding` is `mlops_trace.findings`). None outside mlops_trace."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    modules = _package_files()
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _relative_base(importer: str, is_package: bool, level: int) -> str:
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        package = package[: len(package) - (level - 1)]
    return ".".join(package)


def _raw_imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    return raw_imports(_tree(path), _module_name(path), path.name == "__init__.py")


def raw_imports(tree: ast.Module, importer: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """(line, statement, dotted names) for each import in a module, wherever it sits; `from x import a, b` yields
    `x.a`, `x.b` and the resolution falls back to `x` when `a` is not a submodule."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            yield node.lineno, ast.unparse(node), names
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _relative_base(importer, is_package, node.level)
                module = f"{base}.{node.module}" if node.module and base else (node.module or base)
            else:
                module = node.module or ""
            names = [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"] or [module]
            yield node.lineno, ast.unparse(node), names
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            yield node.lineno, ast.unparse(node), [node.args[0].value]


def _imports_of(path: Path) -> list[Import]:
    found: dict[tuple[int, str], Import] = {}
    importer = _module_name(path)
    for line, statement, names in _raw_imports(path):
        for name in names:
            target = _resolve(name)
            if target is None or target == importer:
                continue
            found.setdefault((line, target), Import(_rel(path), line, target, statement))
    return list(found.values())


@cache
def _graph() -> dict[str, list[Import]]:
    """Every mlops_trace module -> the mlops_trace modules it imports (lazy and TYPE_CHECKING imports included)."""
    return {name: _imports_of(path) for name, path in _package_files().items()}


def _edge(graph: dict[str, list[Import]], a: str, b: str) -> Import:
    return next(imp for imp in graph[a] if imp.target == b)


def _strongly_connected(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Tarjan, iteratively (no recursion limit on a deep package)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted({i.target for i in graph[root]})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({i.target for i in graph.get(child, [])}))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _shortest_cycle_through(graph: dict[str, list[Import]], start: str, within: set[str]) -> list[str]:
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for target in sorted({i.target for i in graph[node]}):
            if target not in within:
                continue
            if target == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return [*reversed(chain), start]
            if target not in seen:
                seen.add(target)
                previous[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    ring = cycle[:-1]
    turn = ring.index(min(ring))
    return tuple(ring[turn:] + ring[:turn])


def import_cycles() -> list[list[str]]:
    """One shortest cycle through each module caught in a cycle, without repeats: enough chains to show every edge
    worth cutting without listing the exponentially many elementary cycles of a big knot."""
    graph = _graph()
    cycles: dict[tuple[str, ...], list[str]] = {}
    for component in _strongly_connected(graph):
        members = set(component)
        for module in component:
            cycle = _shortest_cycle_through(graph, module, members)
            cycles.setdefault(_canonical(cycle), [*_canonical(cycle), _canonical(cycle)[0]])
    return [cycles[key] for key in sorted(cycles, key=lambda c: (len(c), c))]


def _describe_cycle(cycle: list[str]) -> str:
    graph = _graph()
    steps = "\n".join(f"      {_edge(graph, a, b).where()}" for a, b in itertools.pairwise(cycle))
    return f"  {' -> '.join(cycle)}\n{steps}"


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, (
        f"{len(cycles)} import cycle(s) among mlops_trace modules (lazy and TYPE_CHECKING imports count: they still "
        "tie the modules together). Cut one edge of each chain, usually by moving the shared piece down a layer:\n"
        + "\n".join(_describe_cycle(c) for c in cycles)
    )


# --- checks stay pure functions over a Snapshot ---------------------------------------------------------------------


def _forbidden(module: str) -> str | None:
    return next((f for f in FORBIDDEN_FOR_CHECKS if module == f or module.startswith(f + ".")), None)


def _chain(previous: dict[str, Import], start: str, node: str) -> list[Import]:
    chain: list[Import] = []
    while node != start:
        chain.append(previous[node])
        node = _module_name(REPO / previous[node].source)
    return list(reversed(chain))


def _reach(start: str) -> dict[str, Import]:
    """BFS over mlops_trace modules from `start`, not entering a forbidden layer: each module reached -> the import
    that first reached it (so `_chain` gives a shortest path)."""
    graph = _graph()
    previous: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for imp in graph.get(node, []):
            if imp.target != start and imp.target not in previous and not _forbidden(imp.target):
                previous[imp.target] = imp
                queue.append(imp.target)
    return previous


def _check_imports() -> Iterator[Import]:
    for path in _check_files():
        for line, statement, names in _raw_imports(path):
            for target in dict.fromkeys(t for t in map(_resolve, names) if t is not None):
                yield Import(_rel(path), line, target, statement)


def test_checks_do_not_import_io_layers() -> None:
    direct = [imp for imp in _check_imports() if _forbidden(imp.target)]
    assert not direct, (
        "checks are pure functions over a Snapshot; these import a layer that does I/O or runs the CLI "
        f"({', '.join(FORBIDDEN_FOR_CHECKS)}):\n" + "\n".join(f"  {imp.where()}" for imp in direct)
    )


def test_checks_do_not_reach_io_layers_transitively() -> None:
    # Each import that crosses into a forbidden layer from a module some check loads -> (check, chain to it).
    crossings: dict[Import, dict[str, list[Import]]] = {}
    for check_import in _check_imports():
        if _forbidden(check_import.target):
            continue  # reported by the direct test
        previous = _reach(check_import.target)
        for module in [check_import.target, *previous]:
            for imp in _graph().get(module, []):
                if _forbidden(imp.target):
                    chain = [check_import, *_chain(previous, check_import.target, module), imp]
                    known = crossings.setdefault(imp, {}).get(check_import.source)
                    if known is None or len(chain) < len(known):
                        crossings[imp][check_import.source] = chain
    every_check = {_rel(p) for p in _check_files()}
    report: list[str] = []
    for crossing, by_check in sorted(crossings.items(), key=lambda item: (item[0].source, item[0].line)):
        check, chain = min(by_check.items(), key=lambda item: (len(item[1]), item[0]))
        path = " -> ".join([check, *(link.target for link in chain)])
        who = f"every check ({len(by_check)})" if set(by_check) == every_check else ", ".join(sorted(by_check))
        report.append(
            f"  {crossing.where()}\n"
            f"    reached by {who}\n"
            f"    e.g. {path}\n" + "\n".join(f"      {link.where()}" for link in chain)
        )
    assert not report, (
        "checks reach an I/O or CLI layer through mlops_trace modules (lazy and TYPE_CHECKING imports count). "
        "Each entry is an import that crosses into such a layer; cut it or move what it brings below the layer:\n"
        + "\n".join(report)
    )


# --- check ids live in the catalog, not in the trace ----------------------------------------------------------------


def _documentation_strings(tree: ast.Module) -> set[int]:
    """ids of string nodes that are documentation: docstrings and any other bare string statement (no effect at
    run time, so a comment by another name)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def check_ids_in(path: Path) -> list[tuple[int, str]]:
    tree = _tree(path)
    docs = _documentation_strings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        value = node.value
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(text, str):
            found.extend((node.lineno, match) for match in CHECK_ID.findall(text))
    return sorted(set(found))


def test_trace_holds_no_check_ids() -> None:
    hits = [
        f"  {_rel(path)}:{line} {check_id}"
        for path in sorted((PACKAGE_DIR / "trace").rglob("*.py"))
        for line, check_id in check_ids_in(path)
    ]
    assert not hits, (
        "mlops_trace/trace/ names check ids in code; a check id, title or threshold is written only in its check "
        "(checks/<area>/<slug>.py). Ask the catalog/engine for the finding instead:\n" + "\n".join(hits)
    )


# --- module size ----------------------------------------------------------------------------------------------------


def _hand_written_modules() -> list[Path]:
    generated = set(REPO.glob(GENERATED_GLOB))
    allowed = {REPO / rel for rel in LONG_MODULE_ALLOWED}
    roots = [PACKAGE_DIR, CHECKS_DIR]
    return sorted(p for root in roots for p in root.rglob("*.py") if p not in generated and p not in allowed)


def _physical_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_modules_stay_under_the_size_limit() -> None:
    long = [(n, _rel(p)) for p in _hand_written_modules() if (n := _physical_lines(p)) > MAX_MODULE_LINES]
    assert not long, (
        f"modules over {MAX_MODULE_LINES} lines (a module holds one concept; split by concept, not by line count):\n"
        + "\n".join(f"  {rel}: {n} lines" for n, rel in sorted(long, reverse=True))
    )


# --- one table of Kubernetes kinds ----------------------------------------------------------------------------------


def _is_kind_spec(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    arguments = [*node.args, *(k.value for k in node.keywords)]
    return any(isinstance(a, ast.Constant) and a.value in KUBERNETES_KINDS for a in arguments)


def kind_tables_in(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each assignment of a literal tuple/list/set of at least MIN_KIND_TABLE kind-spec calls
    (`KindSpec("Pod", ...)`, `_Kind(kind="Service", ...)`)."""
    tables: list[tuple[int, str]] = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not isinstance(value, (ast.Tuple, ast.List, ast.Set)):
            continue
        if sum(_is_kind_spec(element) for element in value.elts) >= MIN_KIND_TABLE:
            tables.append((node.lineno, ", ".join(ast.unparse(t) for t in targets)))
    return tables


def test_one_table_of_kubernetes_kinds() -> None:
    copies = [
        f"  {_rel(path)}:{line} {name}"
        for path in _package_files().values()
        if _rel(path) != KINDS_MODULE
        for line, name in kind_tables_in(path)
    ]
    assert not copies, (
        f"tables of Kubernetes kind specs outside {KINDS_MODULE}; collect, serve and snapshot share the one registry "
        "there (import it, extend it there):\n" + "\n".join(copies)
    )


def test_snapshot_does_not_import_serve() -> None:
    graph = _graph()
    hits = [
        imp.where()
        for module, imports in graph.items()
        if module == "mlops_trace.snapshot" or module.startswith("mlops_trace.snapshot.")
        for imp in imports
        if imp.target == "mlops_trace.serve" or imp.target.startswith("mlops_trace.serve.")
    ]
    assert not hits, (
        "mlops_trace.snapshot is read by serve, not the other way round; move what snapshot needs into "
        "mlops_trace/snapshot/ or mlops_trace/kinds.py:\n" + "\n".join(f"  {h}" for h in hits)
    )


# --- the scanners themselves ----------------------------------------------------------------------------------------


def test_scanners_see_what_they_look_for(tmp_path: Path) -> None:
    """The rules above pass vacuously if their scanners are blind; hold them to small samples."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstring naming MT101 is fine."""\n'
        "KINDS = (K('Pod'), K('Service'), K('Endpoints'), K('Deployment'), K(kind='NetworkPolicy'))\n"
        "NOT_KINDS = (K('pods'), K('services'), K(1), K(), K('Error'))\n"
        "def f(check):\n"
        '    """MT102 in a docstring is fine."""\n'
        "    return f'{check} is MT103'\n",
        encoding="utf-8",
    )
    assert check_ids_in(sample) == [(6, "MT103")]
    assert kind_tables_in(sample) == [(2, "KINDS")]
    resources = tmp_path / "resources.py"
    resources.write_text(
        "WELL_KNOWN: tuple[R, ...] = (\n"
        + "".join(f"    R('', 'v1', '{k.lower()}s', '{k}', True),\n" for k in ("Pod", "Service", "Node", "Event"))
        + "    R('apps', 'v1', 'deployments', 'Deployment', True, ('deploy',)),\n)\n",
        encoding="utf-8",
    )
    assert kind_tables_in(resources) == [(1, "WELL_KNOWN")]
    # Every import counts, wherever it sits, and relative imports resolve against the importing module.
    imports = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from mlops_trace.findings import Finding\n"
        "def lazy():\n"
        "    from . import fields\n"
        "    from ..render import table\n"
        "    import importlib; importlib.import_module('mlops_trace.errors')\n"
    )
    names = [n for _, _, found in raw_imports(imports, "mlops_trace.analysis.engine", False) for n in found]
    assert names == [
        "typing.TYPE_CHECKING",
        "mlops_trace.findings.Finding",
        "mlops_trace.analysis.fields",
        "mlops_trace.render.table",
        "importlib",
        "mlops_trace.errors",
    ]
    assert _resolve("mlops_trace.findings.Finding") == "mlops_trace.findings"
    assert _resolve("mlops_trace.analysis.fields") == "mlops_trace.analysis.fields"
    assert _resolve("json") is None
    assert _relative_base("mlops_trace.analysis.engine", False, 1) == "mlops_trace.analysis"
    assert _relative_base("mlops_trace.analysis", True, 2) == "mlops_trace"
