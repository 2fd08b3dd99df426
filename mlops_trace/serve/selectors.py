"""Label and field selectors of list requests, parsed by the API server's grammar so a malformed one is a 400.

`labelSelector`: comma-separated requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
`k>3`, `k<3`, with keys and values checked like Kubernetes checks label keys and values. `fieldSelector`:
comma-separated `field=value`, `field==value`, `field!=value`, where `\\`, `\\,` and `\\=` escape those characters in a
value, and the field must be one the API server supports for that kind. Anything else raises `SelectorError`, whose
message says what was wrong, as the API server's 400 does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.snapshot.kube import as_mapping


class SelectorError(ValueError):
    """A selector that does not parse, or names a field the kind does not support."""


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator is Operator.EQUALS or self.operator is Operator.IN:
            return present and value in self.values
        if self.operator is Operator.NOT_EQUALS or self.operator is Operator.NOT_IN:
            return not present or value not in self.values
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        bound = int(next(iter(self.values)))
        if value is None or not re.fullmatch(r"-?[0-9]{1,18}", value):
            return False
        return int(value) > bound if self.operator is Operator.GREATER_THAN else int(value) < bound


# --- label selectors ---------------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# The lexer's tokens: two-character operators first, so `!=` is not read as `!` then `=`.
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,|>|<)|(?P<word>[^\s!=(),<>]+))")


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise SelectorError(f"invalid label key {key!r}: the prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not _NAME.fullmatch(name):
        raise SelectorError(
            f"invalid label key {key!r}: a name of at most 63 characters, alphanumeric, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME.fullmatch(value)):
        raise SelectorError(
            f"invalid label value {value!r}: at most 63 characters, alphanumeric, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            break  # only whitespace is left
        tokens.append(found.group("op") or found.group("word"))
        position = found.end()
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str) -> str:
        token = self.peek()
        if token is None:
            raise SelectorError(f"found end of string, expected: {expected}")
        self.position += 1
        return token

    def requirements(self) -> tuple[Requirement, ...]:
        found: list[Requirement] = []
        while self.peek() is not None:
            found.append(self.requirement())
            token = self.peek()
            if token is None:
                break
            if token != ",":
                raise SelectorError(f"found {token!r}, expected: ',' or end of string")
            self.position += 1
            if self.peek() is None:
                raise SelectorError("found end of string, expected: !, identifier")
        return tuple(found)

    def requirement(self) -> Requirement:
        token = self.take("!, identifier")
        if token == "!":
            key = self.identifier()
            return Requirement(key, Operator.DOES_NOT_EXIST)
        self.position -= 1
        key = self.identifier()
        operator = self.peek()
        if operator is None or operator == ",":
            return Requirement(key, Operator.EXISTS)
        self.position += 1
        if operator in ("=", "=="):
            return Requirement(key, Operator.EQUALS, frozenset({self.value()}))
        if operator == "!=":
            return Requirement(key, Operator.NOT_EQUALS, frozenset({self.value()}))
        if operator in ("in", "notin"):
            values = self.value_set()
            if not values:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (key {key!r})")
            return Requirement(key, Operator.IN if operator == "in" else Operator.NOT_IN, values)
        if operator in (">", "<"):
            bound = self.value()
            if not re.fullmatch(r"-?[0-9]{1,18}", bound):
                raise SelectorError(f"for 'gt', 'lt' operators, the value must be an integer, not {bound!r}")
            return Requirement(key, Operator.GREATER_THAN if operator == ">" else Operator.LESS_THAN,
                               frozenset({bound}))
        raise SelectorError(f"found {operator!r}, expected: in, notin, =, ==, !=, gt, lt")

    def identifier(self) -> str:
        token = self.take("identifier")
        if not _is_word(token):
            raise SelectorError(f"found {token!r}, expected: identifier")
        _check_key(token)
        return token

    def value(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""  # `k=` selects the empty value
        if not _is_word(token):
            raise SelectorError(f"found {token!r}, expected: identifier")
        self.position += 1
        _check_value(token)
        return token

    def value_set(self) -> frozenset[str]:
        if self.take("'('") != "(":
            raise SelectorError(f"found {self.tokens[self.position - 1]!r}, expected: '('")
        values: set[str] = set()
        while True:
            token = self.take("identifier, ',' or ')'")
            if token == ")":
                return frozenset(values)
            if token == ",":
                values.add("")  # `(a,,b)` and `(,a)` hold the empty value, as in Kubernetes
                continue
            if not _is_word(token):
                raise SelectorError(f"found {token!r}, expected: identifier, ',' or ')'")
            _check_value(token)
            values.add(token)
            after = self.take("',' or ')'")
            if after == ")":
                return frozenset(values)
            if after != ",":
                raise SelectorError(f"found {after!r}, expected: ',' or ')'")


def _is_word(token: str) -> bool:
    return token not in ("==", "!=", "=", "!", "(", ")", ",", ">", "<")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """The requirements of a `labelSelector`; `SelectorError` when it does not parse."""
    try:
        return _LabelParser(text).requirements()
    except SelectorError as exc:
        raise SelectorError(f"unable to parse requirement: {exc}") from None


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)


# --- field selectors ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.field) == self.value) != self.negate


# The fields the API server lets a selector name, beyond metadata.name and metadata.namespace (every kind has those).
_FIELDS_BY_KIND: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                      "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "ReplicaSet": frozenset({"status.replicas"}),
}
_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
# Event's `source` is the component of its source, not the mapping.
_FIELD_PATHS = {"source": "source.component"}


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The object's value for a field label, as the API server compares it: a missing field is the empty string."""
    current: Any = obj
    for step in _FIELD_PATHS.get(field, field).split("."):
        current = as_mapping(current).get(step)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    out, escaped = "", False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid escape sequence '\\{char}' in {value!r}")
            out += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"unescaped {char!r} in value {value!r}")
        else:
            out += char
    if escaped:
        raise SelectorError(f"unterminated escape sequence at the end of {value!r}")
    return out


def _split_term(term: str) -> tuple[str, str, str] | None:
    """(field, operator, value) at the first operator from the left, as the API server splits a term."""
    for at in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, at):
                return term[:at], operator, term[at + len(operator):]
    return None


def parse_field_selector(text: str, kind: str) -> tuple[FieldTerm, ...]:
    """The terms of a `fieldSelector` for objects of `kind`; `SelectorError` when it does not parse or names a field
    the API server does not support for that kind."""
    supported = _COMMON_FIELDS | _FIELDS_BY_KIND.get(kind, frozenset())
    terms: list[FieldTerm] = []
    for term in _split_unescaped(text, ","):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {term!r}")
        field, operator, value = split
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        terms.append(FieldTerm(field, _unescape(value), operator == "!="))
    return tuple(terms)
