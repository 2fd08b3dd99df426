"""YAML and JSON from untrusted files, within the limits of `mlops_trace.limits`.

Every YAML or JSON file of a bundle that is read whole comes through here, so one place enforces the bounds:
the file's size, how deep a document nests, and how many nodes YAML aliases may add. Each breach is an `InputError`
with a one-line reason; the caller names the file.

YAML is composed by PyYAML's pure-Python composer over libyaml's event parser: the C composer recurses on the C
stack and crashes the interpreter (SIGSEGV) on a document nested ~100,000 deep, where this one stops at the limit.
It costs about 1.4× the C loader's time on large documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import CollectionNode, MappingNode, Node
from yaml.resolver import Resolver

from mlops_trace.errors import InputError
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits, human_size

try:  # libyaml's event parser when pyyaml was built with it, else the pure-Python one
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - depends on how pyyaml was built
    from yaml.parser import Parser as _ParserBase
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _EventParser(Reader, Scanner, _ParserBase):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _ParserBase.__init__(self)


class _LimitBreached(yaml.YAMLError):
    """Raised from inside the composer; turned into an InputError by `load_yaml_documents`."""


class _BoundedComposer(Composer):
    """PyYAML's composer with a depth bound and a budget for the nodes aliases add when expanded."""

    limits: InputLimits = DEFAULT_LIMITS

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._alias_nodes = 0
        self._expanded_sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):  # type: ignore[attr-defined]  # from the event parser beside it
            target = super().compose_node(parent, index)
            if target is not None:
                self._alias_nodes += self._expanded_size(target)
            if self._alias_nodes > self.limits.yaml_alias_nodes:
                raise _LimitBreached(
                    f"YAML aliases expand to more than {self.limits.yaml_alias_nodes} nodes (limit yaml-alias-nodes)"
                )
            return target
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > self.limits.nesting_depth:
            raise _LimitBreached(f"nested deeper than {self.limits.nesting_depth} levels (limit nesting-depth)")

    def _expanded_size(self, root: Node) -> int:
        """Nodes in `root` with every alias inside it expanded; memoised, walked without recursion."""
        known = self._expanded_sizes
        if id(root) in known:
            return known[id(root)]
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if id(node) in known:
                continue
            children = _children(node)
            if children_done or not children:
                known[id(node)] = 1 + sum(known[id(child)] for child in children)
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in known)
        return known[id(root)]


def _children(node: Node) -> list[Node]:
    if not isinstance(node, CollectionNode):
        return []
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


class _BoundedLoader(_BoundedComposer, _EventParser, SafeConstructor, Resolver):
    """libyaml's events, our composer (first in the MRO, so the C parser's own composer is never used)."""

    def __init__(self, stream: str, limits: InputLimits) -> None:
        _EventParser.__init__(self, stream)
        self.limits = limits
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)



def read_bounded_text(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """The whole file as UTF-8 text; InputError when it is larger than `file-bytes` or cannot be read."""
    try:
        size = path.stat().st_size
        if size > limits.file_bytes:
            raise InputError(f"{human_size(size)} is larger than {human_size(limits.file_bytes)} (limit file-bytes)")
        with path.open("rb") as handle:
            data = handle.read(limits.file_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limits.file_bytes:  # it grew while we read it
        raise InputError(f"larger than {human_size(limits.file_bytes)} (limit file-bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})") from exc


def load_yaml_documents(text: str, limits: InputLimits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Each YAML document of `text`, constructed safely; InputError (with the line) on a syntax error or a limit."""
    loader = _BoundedLoader(text, limits)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                document = loader.construct_document(node)
            except _LimitBreached as exc:
                raise InputError(str(exc)) from exc
            except RecursionError as exc:
                raise InputError(f"nested too deep to read (limit nesting-depth is {limits.nesting_depth})") from exc
            except yaml.YAMLError as exc:
                if "maximum nesting depth" in str(exc):
                    # PyYAML 6.0.4+ stops at a nesting depth of its own, which may come before ours.
                    raise InputError(
                        f"{_yaml_problem(exc)} (the YAML parser's own bound, below or at the limit nesting-depth "
                        f"of {limits.nesting_depth})"
                    ) from exc
                raise InputError(_yaml_problem(exc)) from exc
            except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp or number libyaml lets through
                raise InputError(f"YAML value error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            yield document
    finally:
        loader.dispose()


def load_yaml(text: str, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """The first YAML document of `text` (None for an empty one), as `yaml.safe_load` but bounded."""
    for document in load_yaml_documents(text, limits):
        return document
    return None


def load_json(text: str | bytes, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """One JSON document; InputError (with the line) on a syntax error, a value Python cannot hold, or a limit."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"JSON error at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise InputError(f"nested deeper than {limits.nesting_depth} levels (limit nesting-depth)") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. an integer of more than 4,300 digits
        raise InputError(f"JSON value error: {str(exc).splitlines()[0]}") from exc
    depth = nesting_depth(document, limits.nesting_depth)
    if depth > limits.nesting_depth:
        raise InputError(f"nested deeper than {limits.nesting_depth} levels (limit nesting-depth)")
    return document


def nesting_depth(value: Any, stop_above: int) -> int:
    """How deep lists and dicts nest in `value` (a scalar is 0), counted without recursion; stops past `stop_above`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > stop_above:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"YAML error{where}: {problem}"
