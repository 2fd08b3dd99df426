"""Label-selector matching: matchLabels, the four matchExpressions operators, empty versus absent selectors."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_trace.analysis.selectors import SelectorError, label_value, selector_matches

SERVER_LABELS = {"app.kubernetes.io/name": "seldon-server", "seldon-server-name": "mlserver"}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        entry["values"] = list(values)
    return entry


CASES: list[tuple[str, dict[str, Any] | None, dict[str, str], bool]] = [
    ("absent selector matches nothing", None, SERVER_LABELS, False),
    ("absent selector matches nothing, even no labels", None, {}, False),
    ("empty selector matches everything", {}, SERVER_LABELS, True),
    ("empty selector matches an unlabelled object", {}, {}, True),
    ("null fields behave like an empty selector", {"matchLabels": None, "matchExpressions": None}, {}, True),
    ("matchLabels subset", {"matchLabels": {"seldon-server-name": "mlserver"}}, SERVER_LABELS, True),
    ("matchLabels all of them", {"matchLabels": dict(SERVER_LABELS)}, SERVER_LABELS, True),
    ("matchLabels wrong value", {"matchLabels": {"seldon-server-name": "triton"}}, SERVER_LABELS, False),
    ("matchLabels missing key", {"matchLabels": {"tier": "serving"}}, SERVER_LABELS, False),
    ("matchLabels on unlabelled object", {"matchLabels": {"tier": "serving"}}, {}, False),
    ("matchLabels empty value needs the key", {"matchLabels": {"tier": ""}}, {}, False),
    ("matchLabels empty value present", {"matchLabels": {"tier": ""}}, {"tier": ""}, True),
    ("In hit", {"matchExpressions": [expr("seldon-server-name", "In", "triton", "mlserver")]}, SERVER_LABELS, True),
    ("In miss", {"matchExpressions": [expr("seldon-server-name", "In", "triton")]}, SERVER_LABELS, False),
    ("In missing key", {"matchExpressions": [expr("tier", "In", "serving")]}, SERVER_LABELS, False),
    ("In with no values", {"matchExpressions": [expr("seldon-server-name", "In")]}, SERVER_LABELS, False),
    ("NotIn hit", {"matchExpressions": [expr("seldon-server-name", "NotIn", "triton")]}, SERVER_LABELS, True),
    ("NotIn miss", {"matchExpressions": [expr("seldon-server-name", "NotIn", "mlserver")]}, SERVER_LABELS, False),
    ("NotIn missing key matches", {"matchExpressions": [expr("tier", "NotIn", "serving")]}, SERVER_LABELS, True),
    ("Exists hit", {"matchExpressions": [expr("seldon-server-name", "Exists")]}, SERVER_LABELS, True),
    ("Exists miss", {"matchExpressions": [expr("tier", "Exists")]}, SERVER_LABELS, False),
    ("Exists with empty value", {"matchExpressions": [expr("tier", "Exists")]}, {"tier": ""}, True),
    ("DoesNotExist hit", {"matchExpressions": [expr("tier", "DoesNotExist")]}, SERVER_LABELS, True),
    ("DoesNotExist miss", {"matchExpressions": [expr("seldon-server-name", "DoesNotExist")]}, SERVER_LABELS, False),
    (
        "labels and expressions are AND-ed (both hold)",
        {
            "matchLabels": {"app.kubernetes.io/name": "seldon-server"},
            "matchExpressions": [expr("seldon-server-name", "In", "mlserver"), expr("tier", "DoesNotExist")],
        },
        SERVER_LABELS,
        True,
    ),
    (
        "labels and expressions are AND-ed (one expression fails)",
        {
            "matchLabels": {"app.kubernetes.io/name": "seldon-server"},
            "matchExpressions": [expr("seldon-server-name", "In", "mlserver"), expr("tier", "Exists")],
        },
        SERVER_LABELS,
        False,
    ),
    (
        "labels and expressions are AND-ed (labels fail)",
        {"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}, "matchExpressions": [expr("tier", "DoesNotExist")]},
        SERVER_LABELS,
        False,
    ),
    ("YAML boolean value compares as the API string", {"matchLabels": {"canary": True}}, {"canary": "true"}, True),
    ("YAML number value compares as the API string", {"matchLabels": {"version": 2}}, {"version": "2"}, True),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_number_values_in_expressions_compare_as_strings() -> None:
    selector = {"matchExpressions": [{"key": "version", "operator": "In", "values": [1, 2]}]}
    assert selector_matches(selector, {"version": "2"})
    assert not selector_matches(selector, {"version": "3"})


@pytest.mark.parametrize(
    "selector",
    [
        {"matchExpressions": [expr("tier", "in", "serving")]},
        {"matchExpressions": [expr("tier", "Equals", "serving")]},
        {"matchExpressions": [{"key": "tier"}]},
        {"matchExpressions": [{"operator": "Exists"}]},
        {"matchExpressions": "tier"},
        {"matchLabels": ["tier"]},
    ],
    ids=["lowercase operator", "unknown operator", "no operator", "no key", "expressions not a list", "labels list"],
)
def test_malformed_selectors_raise(selector: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        selector_matches(selector, SERVER_LABELS)


def test_unknown_operator_message_names_key_and_choices() -> None:
    with pytest.raises(SelectorError, match=r"'Equals'.*'tier'.*In, NotIn, Exists, DoesNotExist"):
        selector_matches({"matchExpressions": [expr("tier", "Equals", "x")]}, {})


def test_label_value() -> None:
    assert label_value(True) == "true"
    assert label_value(False) == "false"
    assert label_value(9005) == "9005"
    assert label_value("mlserver") == "mlserver"
