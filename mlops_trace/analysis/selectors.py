"""Kubernetes label-selector matching (metav1.LabelSelector: matchLabels plus matchExpressions).

Selectors arrive as plain dicts, the way `kubectl get -o yaml` prints them. An empty selector (`{}`) matches every
object; an absent one (`None`) matches nothing, as in the Kubernetes API. Callers whose field treats absence
differently (a NetworkPolicy's `spec.podSelector` is a struct, so absence means `{}`) substitute `{}` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

__all__ = ["Operator", "SelectorError", "label_value", "selector_matches", "selector_matches_partly"]


class Operator(StrEnum):
    """The operators a `matchExpressions` entry may use."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorError(ValueError):
    """A selector the API server would have rejected (unknown operator, wrong field shape)."""


def label_value(value: Any) -> str:
    """Return a label value as the API stores it: hand-written YAML may turn `true` or `1` into non-strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Tell whether `labels` satisfy `selector`; all of matchLabels and every matchExpressions entry must hold."""
    if selector is None:
        return False
    if not isinstance(selector, Mapping):
        raise SelectorError(f"a label selector must be a mapping, got {type(selector).__name__}")
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be a mapping of label names to values")
    for key, wanted in match_labels.items():
        if key not in labels or label_value(labels[key]) != label_value(wanted):
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, Sequence) or isinstance(expressions, str):
        raise SelectorError("matchExpressions must be a list")
    return all(_expression_matches(expression, labels) for expression in expressions)


def selector_matches_partly(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str], known_keys: frozenset[str] | None
) -> bool | None:
    """Match a selector against labels of which only `known_keys` are certain (`None`: all of them).

    Returns False when a requirement on a known key fails (the answer is no whatever the other labels are), None when
    every known requirement holds but some requirement is on a key we do not know, else True. A malformed selector
    raises `SelectorError` as in `selector_matches`.
    """
    # Validate the whole selector first, so an unknown operator raises even when its key is unknown.
    whole = selector_matches(selector, labels)
    if known_keys is None or selector is None:
        return whole
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    known_labels = {key: value for key, value in match_labels.items() if str(key) in known_keys}
    if not isinstance(expressions, Sequence) or isinstance(expressions, str):
        raise SelectorError("matchExpressions must be a list")
    known_expressions = []
    for expression in expressions:
        if not isinstance(expression, Mapping) or "key" not in expression:
            raise SelectorError(f"a matchExpressions entry needs a key and an operator, got {expression!r}")
        if str(expression["key"]) in known_keys:
            known_expressions.append(expression)
    if not selector_matches({"matchLabels": known_labels, "matchExpressions": known_expressions}, labels):
        return False
    if len(known_labels) < len(match_labels) or len(known_expressions) < len(expressions):
        return None
    return True


def _expression_matches(expression: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(expression, Mapping) or "key" not in expression:
        raise SelectorError(f"a matchExpressions entry needs a key and an operator, got {expression!r}")
    key = str(expression["key"])
    raw_operator = str(expression.get("operator"))
    try:
        operator = Operator(raw_operator)
    except ValueError:
        known = ", ".join(member.value for member in Operator)
        raise SelectorError(f"unknown selector operator {raw_operator!r} for key {key!r} (expected {known})") from None
    raw_values = expression.get("values")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, Sequence) or isinstance(raw_values, str):
        raise SelectorError(f"values of the matchExpressions entry for key {key!r} must be a list")
    values = {label_value(value) for value in raw_values}
    present = key in labels
    match operator:
        case Operator.IN:
            return present and label_value(labels[key]) in values
        case Operator.NOT_IN:
            # Kubernetes counts a missing key as "not in the set".
            return not present or label_value(labels[key]) not in values
        case Operator.EXISTS:
            return present
        case Operator.DOES_NOT_EXIST:
            return not present
