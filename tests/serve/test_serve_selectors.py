"""Label and field selectors of `bundle serve`: what the API server accepts matches as it does, the rest is refused."""

from __future__ import annotations

import pytest

from mlops_trace.serve.selectors import (
    FieldTerm,
    SelectorError,
    field_value,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app.kubernetes.io/name": "seldon-scheduler", "tier": "control", "replicas": "3", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("tier=control", True),
        ("tier==control", True),
        ("tier!=control", False),
        ("missing!=x", True),
        ("app.kubernetes.io/name=seldon-scheduler", True),
        ("tier in (data, control)", True),
        ("tier in (data)", False),
        ("tier notin (data)", True),
        ("missing notin (data)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("empty=", True),
        ("empty in (,a)", True),
        ("replicas>2", True),
        ("replicas<3", False),
        ("tier=control,!missing, replicas > 1", True),
        ("tier=control,missing", False),
    ],
)
def test_label_selectors_match_like_the_api_server(selector: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    [
        "a in (b",  # unclosed set
        "=x",
        "==x",
        "a in ()",  # an empty set
        "a in b",
        "a=(b)",
        "a b",
        ",",
        "a,",
        "a=b=c",
        "%ZZ%FF",
        "\x00",
        "-a=b",  # a name starts with an alphanumeric
        "a=-b",
        "a/b/c=d",  # one prefix at most
        "UPPER.example/x=y",  # a prefix is a lower-case DNS subdomain
        f"{'k' * 64}=v",
        f"k={'v' * 64}",
        "a>b",  # gt and lt compare integers
        "!",
        "a!b",
    ],
)
def test_malformed_label_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector(selector)


POD = {
    "metadata": {"name": "mlserver-0", "namespace": "fraud-serving"},
    "spec": {"hostNetwork": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=mlserver-0", True),
        ("metadata.name==mlserver-0", True),
        ("metadata.name!=mlserver-0", False),
        ("status.phase=Running,metadata.namespace=fraud-serving", True),
        ("spec.nodeName=", True),  # a missing field is the empty string, as for a pod not yet scheduled
        ("spec.hostNetwork=false", True),
        ("metadata.name=mlserver-0,", True),
    ],
)
def test_field_selectors_of_pods(selector: str, matches: bool) -> None:
    terms = parse_field_selector(selector, "Pod")
    assert all(term.matches(POD) for term in terms) is matches


def test_field_selector_values_take_escapes_and_split_at_the_first_operator() -> None:
    assert parse_field_selector(r"metadata.name=a\,b\=c\\d", "Pod") == (FieldTerm("metadata.name", "a,b=c\\d", False),)
    assert parse_field_selector("metadata.name!=x", "Pod") == (FieldTerm("metadata.name", "x", True),)


def test_event_field_selectors_of_kubectl_describe() -> None:
    event = {"involvedObject": {"name": "mlserver-0", "namespace": "fraud-serving", "kind": "Pod"},
             "source": {"component": "kubelet"}}
    terms = parse_field_selector(
        "involvedObject.name=mlserver-0,involvedObject.namespace=fraud-serving,involvedObject.kind=Pod,source=kubelet",
        "Event",
    )
    assert all(term.matches(event) for term in terms)
    assert field_value(event, "source") == "kubelet"


@pytest.mark.parametrize(
    ("selector", "kind", "message"),
    [
        ("foo", "Pod", "can't understand 'foo'"),
        ("metadata.name=a,foo", "Pod", "can't understand 'foo'"),
        ("foo=bar", "Pod", "field label not supported: foo"),
        ("status.phase=Running", "Service", "field label not supported: status.phase"),
        (" metadata.name=x", "Pod", "field label not supported"),
        ("metadata.name=a=b", "Pod", "unescaped"),
        (r"metadata.name=a\q", "Pod", "invalid escape"),
        ("metadata.name=a\\", "Pod", "escape"),
    ],
)
def test_malformed_field_selectors_are_refused(selector: str, kind: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_field_selector(selector, kind)
