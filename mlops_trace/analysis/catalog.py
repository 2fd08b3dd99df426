"""Find and load the check catalog (`checks/<area>/<slug>.py` + `.md`) and the playbooks.

In a source checkout they sit at the top of the repository; in an installed wheel they are shipped as
`mlops_trace/_catalog/{checks,playbooks}`. Check modules are loaded from their files, so the catalog stays a folder
of plain modules a reader can browse.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from mlops_trace.analysis.check import Check
from mlops_trace.errors import UsageError
from mlops_trace.findings import Finding

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _catalog_dir(name: str) -> Path:
    shipped = _PACKAGE_DIR / "_catalog" / name
    if shipped.is_dir():
        return shipped
    return _PACKAGE_DIR.parent / name


def checks_dir() -> Path:
    return _catalog_dir("checks")


def playbooks_dir() -> Path:
    return _catalog_dir("playbooks")


@dataclass(frozen=True)
class CatalogEntry:
    check: Check
    run: Callable[..., Iterable[Finding]]
    module_path: Path
    doc_path: Path

    @property
    def area(self) -> str:
        return self.module_path.parent.name

    def doc(self) -> str:
        return self.doc_path.read_text(encoding="utf-8") if self.doc_path.is_file() else ""


@cache
def load_catalog() -> tuple[CatalogEntry, ...]:
    """Every check, sorted by id. Raises if two checks share an id (ids are stable and never reused)."""
    entries: list[CatalogEntry] = []
    root = checks_dir()
    for path in sorted(root.glob("*/*.py")):
        if path.name.startswith("_"):
            continue
        module = _load_module(path)
        check = getattr(module, "CHECK", None)
        run = getattr(module, "run", None)
        if not isinstance(check, Check) or not callable(run):
            raise RuntimeError(f"{path}: a check module needs CHECK = Check(...) and def run(snap)")
        entries.append(CatalogEntry(check=check, run=run, module_path=path, doc_path=path.with_suffix(".md")))
    seen: dict[str, Path] = {}
    for entry in entries:
        if entry.check.id in seen:
            raise RuntimeError(f"check id {entry.check.id} defined twice: {seen[entry.check.id]} and {entry.module_path}")
        seen[entry.check.id] = entry.module_path
    return tuple(sorted(entries, key=lambda e: e.check.id))


def _load_module(path: Path) -> ModuleType:
    name = f"mlops_trace_catalog.{path.parent.name}.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path}: cannot load check module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_entry(key: str) -> CatalogEntry:
    """A check by id (`MT101`, case-insensitive) or slug."""
    wanted = key.strip()
    for entry in load_catalog():
        if entry.check.id.lower() == wanted.lower() or entry.check.slug == wanted:
            return entry
    raise UsageError(f"unknown check {key!r} (see `mlops-trace checks list`)")


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> tuple[CatalogEntry, ...]:
    """The checks to run: all, or those `only` names, minus those `skip` names. Ids, slugs and id prefixes
    (`MT2` = the network area) are accepted; an unknown name is a usage error."""
    catalog = load_catalog()

    def resolve(names: Iterable[str]) -> set[str]:
        ids: set[str] = set()
        for raw in names:
            for name in (part.strip() for part in raw.split(",")):
                if not name:
                    continue
                matched = {
                    e.check.id
                    for e in catalog
                    if e.check.id.lower() == name.lower()
                    or e.check.slug == name
                    or (len(name) < 5 and e.check.id.lower().startswith(name.lower()))
                }
                if not matched:
                    raise UsageError(f"unknown check {name!r} (see `mlops-trace checks list`)")
                ids |= matched
        return ids

    only_ids = resolve(only)
    skip_ids = resolve(skip)
    return tuple(e for e in catalog if (not only_ids or e.check.id in only_ids) and e.check.id not in skip_ids)


def playbook_path(slug: str) -> Path:
    return playbooks_dir() / f"{slug}.md"


def playbook_name(value: str) -> str:
    """`envoy-404`, `envoy-404.md` and `playbooks/envoy-404.md` all name the playbook `envoy-404`."""
    return value.strip().removeprefix("playbooks/").removesuffix(".md")


@dataclass(frozen=True)
class Playbook:
    """A remediation playbook (`playbooks/<name>.md`) and the checks whose findings point to it."""

    name: str
    path: Path
    checks: tuple[CatalogEntry, ...]

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def playbook_names() -> tuple[str, ...]:
    """Every playbook shipped with this installation (source checkout or wheel), sorted."""
    return tuple(sorted(path.stem for path in playbooks_dir().glob("*.md")))


def find_playbook(key: str) -> Playbook:
    """A playbook by name; only names of existing files are accepted, so a key never reaches outside playbooks/."""
    name = playbook_name(key)
    if name not in playbook_names():
        raise UsageError(f"unknown playbook {key!r} (see `mlops-trace checks list`)")
    pointing = tuple(e for e in load_catalog() if playbook_name(e.check.playbook) == name)
    return Playbook(name=name, path=playbook_path(name), checks=pointing)


def find_check_or_playbook(key: str) -> CatalogEntry | Playbook:
    """What `mlops-trace checks explain KEY` shows: a check (id or slug) first, else a playbook by name."""
    try:
        return find_entry(key)
    except UsageError:
        pass
    try:
        return find_playbook(key)
    except UsageError:
        raise UsageError(f"unknown check or playbook {key!r} (see `mlops-trace checks list`)") from None


def markdown_table(entries: Iterable[CatalogEntry]) -> str:
    """The catalog as README.md's Markdown table (`mlops-trace checks list -o markdown`), ending in a newline.

    `requires` is the skip gate (`a|b`: either), `reads` what else a check may read; a `|` in a cell is escaped, or
    it would split the cell."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| id | slug | severity | requires | reads | title |", "|---|---|---|---|---|---|"]
    for entry in entries:
        c = entry.check
        requires = cell(", ".join(c.requires) or "-")
        reads = cell(", ".join(c.reads) or "-")
        lines.append(f"| {c.id} | {c.slug} | {c.severity.value} | {requires} | {reads} | {cell(c.title)} |")
    return "\n".join(lines) + "\n"
