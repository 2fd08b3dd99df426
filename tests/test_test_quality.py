"""Tests that cannot fail, found with `ast` over tests/: an `assert` whose expression is true whatever the code under
test does, and a test function that asserts nothing at all.

Always true: a generator expression, a lambda, a non-empty tuple/list/set/dict/string literal (`assert (x, "why")`
is a tuple), a call returning an iterator (`iter`, `map`, `filter`, `zip`, `reversed`, `enumerate`, an
`Element.iter()`, a `Path.glob()`, a `re.finditer()`), a truthy constant or `x or True`.

Asserts nothing: no `assert`, no `pytest.raises`/`warns`/`fail`, no `subprocess.run(..., check=True)` and no call to
a helper that asserts. A helper defined in tests/ counts when its body asserts (followed through further helpers);
a helper from elsewhere counts when its name says so (`assert_…`, `check_…`, `expect_…`, `self.assertEqual`).
A test whose whole contract is "does not raise" says so, in its name (`test_garbage_never_raises`,
`..._does_not_raise`, `..._does_not_crash`) or with `# asserts: does not raise` in its body, so a reader (and this
scanner) knows the missing assert is deliberate.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent

ITERATOR_BUILTINS = frozenset({"iter", "map", "filter", "zip", "reversed", "enumerate"})
# Methods that return a lazy iterator (always truthy, whatever it would yield).
ITERATOR_METHODS = frozenset({"iter", "iterfind", "itertext", "finditer", "glob", "rglob", "iterdir", "scandir"})
RAISING_PYTEST = frozenset({"raises", "warns", "deprecated_call", "fail"})
ASSERTING_PREFIXES = ("assert", "check", "expect")
DOES_NOT_RAISE = "# asserts: does not raise"
DOES_NOT_RAISE_NAME = re.compile(r"_(never|not|no)_(raises?|crash(es)?)(_|$)")


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the folder holding the tests package
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


# --- asserts that are always true -----------------------------------------------------------------------------------


def _callee_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def always_true(test: ast.expr) -> str | None:
    """Why `assert <test>` cannot fail, or None."""
    if isinstance(test, ast.GeneratorExp):
        return "a generator expression is always true (use any(...) or all(...))"
    if isinstance(test, ast.Lambda):
        return "a lambda is always true (call it)"
    if isinstance(test, ast.Tuple) and test.elts:
        return "a non-empty tuple is always true (`assert (cond, msg)` should be `assert cond, msg`)"
    if isinstance(test, (ast.List, ast.Set)) and test.elts:
        return f"a non-empty {type(test).__name__.lower()} literal is always true"
    if isinstance(test, ast.Dict) and test.keys:
        return "a non-empty dict literal is always true"
    if isinstance(test, ast.JoinedStr) and test.values:
        return "a non-empty f-string is always true"
    if isinstance(test, ast.Constant) and test.value:
        return f"the constant {test.value!r} is always true"
    if isinstance(test, ast.Call):
        name = _callee_name(test)
        if isinstance(test.func, ast.Name) and name in ITERATOR_BUILTINS:
            return f"{name}(...) returns an iterator, always true whatever it yields (use any(...) or list(...))"
        if isinstance(test.func, ast.Attribute) and name in ITERATOR_METHODS:
            return f".{name}(...) returns an iterator, always true whatever it yields (use any(...) or list(...))"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        for operand in test.values:
            if always_true(operand):
                return f"`... or {ast.unparse(operand)}` is always true"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        reasons = [always_true(operand) for operand in test.values]
        if all(reasons):
            return reasons[0]
    return None


# --- tests that assert nothing --------------------------------------------------------------------------------------


@dataclass
class _Module:
    path: Path
    name: str  # tests.serve.wire
    tree: ast.Module
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    imported_functions: dict[str, tuple[str, str]]  # local name -> (module, function)
    imported_modules: dict[str, str]  # local name -> module


def _load(path: Path, top: Path) -> _Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = ".".join(path.relative_to(top).with_suffix("").parts)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.setdefault(item.name, item)  # `self.helper()` resolves by name
    imported_functions: dict[str, tuple[str, str]] = {}
    imported_modules: dict[str, str] = {}
    package = name.rpartition(".")[0]
    for statement in ast.walk(tree):
        if isinstance(statement, ast.ImportFrom):
            if statement.level:
                base = package.split(".")
                base = base[: len(base) - (statement.level - 1)]
                source = ".".join([*base, *([statement.module] if statement.module else [])])
            else:
                source = statement.module or ""
            for alias in statement.names:
                imported_functions[alias.asname or alias.name] = (source, alias.name)
                imported_modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    imported_modules[alias.asname] = alias.name
                else:  # `import a.b` binds `a`
                    imported_modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
    return _Module(path, name, tree, functions, imported_functions, imported_modules)


class _Suite:
    def __init__(self, root: Path) -> None:
        self.top = root.parent
        self.modules = {m.name: m for m in (_load(path, self.top) for path in sorted(root.rglob("*.py")))}
        self._asserts: dict[tuple[str, str], bool] = {}

    def resolve(self, module: _Module, call: ast.Call) -> tuple[_Module, ast.FunctionDef | ast.AsyncFunctionDef] | None:
        """The tests/ function a call runs, if it is one."""
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in module.functions:
                return module, module.functions[func.id]
            if func.id in module.imported_functions:
                source, name = module.imported_functions[func.id]
                target = self.modules.get(source)
                if target is not None and name in target.functions:
                    return target, target.functions[name]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in ("self", "cls") and func.attr in module.functions:
                return module, module.functions[func.attr]
            target = self.modules.get(module.imported_modules.get(func.value.id, ""))
            if target is not None and func.attr in target.functions:
                return target, target.functions[func.attr]
        return None

    def asserts(self, module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        key = (module.name, function.name)
        if key not in self._asserts:
            self._asserts[key] = False  # a recursive helper asserts only if some other path does
            self._asserts[key] = self._body_asserts(module, function)
        return self._asserts[key]

    def _body_asserts(self, module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        for node in ast.walk(function):
            if isinstance(node, ast.Assert):
                return True
            if isinstance(node, ast.Raise) and node.exc is not None and "AssertionError" in ast.unparse(node.exc):
                return True
            if isinstance(node, ast.Call) and self._call_asserts(module, node):
                return True
        return False

    def _call_asserts(self, module: _Module, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "pytest":
            return func.attr in RAISING_PYTEST
        if any(k.arg == "check" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords):
            return True  # subprocess.run(..., check=True) fails the test on a non-zero exit
        resolved = self.resolve(module, call)
        if resolved is not None:
            return self.asserts(*resolved)
        name = _callee_name(call)
        return name is not None and name.lstrip("_").startswith(ASSERTING_PREFIXES)


def _test_functions(module: _Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield item


def _says_it_only_must_not_raise(module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    if DOES_NOT_RAISE_NAME.search(function.name):
        return True
    lines = module.path.read_text(encoding="utf-8").splitlines()
    end = function.end_lineno or function.lineno
    return any(DOES_NOT_RAISE in line for line in lines[function.lineno - 1 : end])


def scan(root: Path) -> list[Problem]:
    suite = _Suite(root)
    problems: list[Problem] = []
    for module in suite.modules.values():
        if not module.path.name.startswith("test_"):
            continue
        where = module.path.relative_to(suite.top).as_posix()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Assert) and (reason := always_true(node.test)):
                problems.append(Problem(where, node.lineno, f"`assert {ast.unparse(node.test)}`: {reason}"))
        for function in _test_functions(module):
            if not suite.asserts(module, function) and not _says_it_only_must_not_raise(module, function):
                problems.append(
                    Problem(
                        where,
                        function.lineno,
                        f"{function.name} asserts nothing (no assert, pytest.raises or asserting helper); if its "
                        f"contract is only that nothing raises, say so with `{DOES_NOT_RAISE}`",
                    )
                )
    return sorted(problems, key=lambda p: (p.path, p.line))


def test_every_test_can_fail() -> None:
    problems = scan(TESTS)
    assert not problems, "tests that cannot fail:\n" + "\n".join(f"  {p}" for p in problems)


# --- the scanner itself ---------------------------------------------------------------------------------------------


def test_scanner_flags_what_cannot_fail_and_only_that(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(
        "def verify(x):\n    assert x\n\ndef check_cases():\n    return [1]\n", encoding="utf-8"
    )
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "from .helpers import verify, check_cases\n"
        "def test_generator(xs):\n    assert (x for x in xs)\n"  # 3
        "def test_tuple(x):\n    assert (x == 1, 'why')\n"  # 5
        "def test_iter(tree):\n    assert tree.iter('failure')\n"  # 7
        "def test_map(xs):\n    assert map(str, xs)\n"  # 9
        "def test_or_true(x):\n    assert x == 1 or True\n"  # 11
        "def test_string():\n    assert 'always'\n"  # 13
        "def test_lambda():\n    assert lambda: False\n"  # 15
        "def test_nothing(x):\n    x.run()\n"  # 17
        "def test_only_builds_cases():\n    check_cases()\n"  # 19
        "def test_any(xs):\n    assert any(x for x in xs)\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n"
        "def test_helper():\n    verify(1)\n"
        "def test_named_helper(x):\n    assert_status(x, 200)\n"
        "def test_no_raise():\n    # asserts: does not raise\n    int('1')\n"
        "def test_garbage_never_raises():\n    int('1')\n"
        "def test_raise_in_name_is_not_enough():\n    int('1')\n"  # 35
        "def test_message(x):\n    assert x, ('why', x)\n"
        "def test_empty_or(x):\n    assert x or []\n",
        encoding="utf-8",
    )
    flagged = {problem.line for problem in scan(tmp_path)}
    assert flagged == {4, 6, 8, 10, 12, 14, 16, 17, 19, 35}, scan(tmp_path)
