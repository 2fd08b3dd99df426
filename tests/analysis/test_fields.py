"""Typed readers of Kubernetes fields, and the shared helpers that read malformed values through them without raising.

`test_checks_robust.py` proves no check crashes on fixtures it mutates; these pin the rules themselves, and the fields
no fixture holds (endPort, matchExpressions values, v1beta1 servicePort, rewrite-target captures).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any

import pytest

from mlops_trace.analysis import fields
from mlops_trace.analysis.catalog import select
from mlops_trace.analysis.engine import run_checks
from mlops_trace.analysis.ingress import (
    Hop,
    PortRef,
    Resolution,
    Stop,
    ingress_backends,
    simulate_path,
    substitute_captures,
    target_port,
)
from mlops_trace.analysis.netpol import (
    Endpoint,
    NetworkPolicyError,
    Protocol,
    endpoint_from_pod,
    evaluate,
    invalid_container_ports,
    rules_text,
)
from mlops_trace.analysis.seldon import (
    experiment_candidates,
    iter_weighted_candidates,
    local_scheduler,
    runtime_disables_scheduler,
    workload_replicas,
)
from mlops_trace.analysis.selectors import SelectorError, selector_matches
from mlops_trace.findings import CheckStatus
from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import Snapshot
from tests.fixture_walk import FIXTURES

HOSTILE: tuple[Any, ...] = (float("inf"), float("-inf"), float("nan"), -1, 10**400, True, None, "9002x", [], {}, "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (9000, 9000),
        ("9000", 9000),
        (" 9000 ", 9000),
        (9000.0, 9000),
        (1, 1),
        (65535, 65535),
        (0, None),
        (65536, None),
        (-1, None),
        (10**400, None),
        ("1" * 400, None),
        (9000.5, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        (None, None),
        ("9002x", None),
        ("²", None),  # isdigit() says yes, int() says no
        ("٩٠٠٠", None),  # Arabic-Indic digits are digits to Python, not to Kubernetes
        ([], None),
        ({}, None),
        ("", None),
    ],
)
def test_port_number(value: Any, expected: int | None) -> None:
    assert fields.port_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http", "http"),
        ("agent-grpc", "agent-grpc"),
        ("9002x", "9002x"),  # a valid name: it has a letter
        ("envoy-stats-1234", None),  # 16 characters
        ("HTTP", None),
        ("http--x", None),
        ("-http", None),
        ("http_metrics", None),
        ("9002", None),  # no letter: that is a number written as text
        (9002, None),
        (True, None),
        (None, None),
        ("", None),
    ],
)
def test_port_name(value: Any, expected: str | None) -> None:
    assert fields.port_name(value) == expected


def test_port_is_a_number_or_a_name() -> None:
    assert fields.port(9000) == 9000
    assert fields.port("9000") == 9000
    assert fields.port("http") == "http"
    assert [fields.port(value) for value in HOSTILE if value != "9002x"] == [None] * (len(HOSTILE) - 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 1), (0, 0), (3, 3), ("2", 2), (2.0, 2), (-1, None), (2.5, None), (float("nan"), None), (True, None),
     ("two", None), (10**400, None), ([], None)],
)
def test_replicas(value: Any, expected: int | None) -> None:
    assert fields.replicas(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (0, 0), (70, 70), ("70", 70), (70.0, 70), (2**32 - 1, 2**32 - 1), (2**32, None), (-1, None),
     (0.5, None), (float("nan"), None), (float("inf"), None), (True, None), ("70%", None), (10**400, None)],
)
def test_weight(value: Any, expected: int | None) -> None:
    assert fields.weight(value) == expected


def test_shown_quotes_values_the_way_yaml_writes_them() -> None:
    assert fields.shown(float("nan")) == ".nan"
    assert fields.shown(float("inf")) == ".inf"
    assert fields.shown(float("-inf")) == "-.inf"
    assert fields.shown(True) == "true"
    assert fields.shown(None) == "null"
    assert fields.shown("9002x") == "'9002x'"
    assert fields.shown([1]) == "a list"
    assert fields.shown({"a": 1}) == "a mapping"
    assert fields.shown(10**400) == "an integer of about 401 digits"
    assert fields.shown(-(10**5000)).startswith("a negative integer of about 5001 digits")
    assert len(fields.shown("x" * 500)) <= 40


# --- Experiments -----------------------------------------------------------------------------------------------------


def _experiment(*candidates: dict[str, Any]) -> KubeObject:
    raw = {"kind": "Experiment", "metadata": {"name": "e", "namespace": "ns"}, "spec": {"candidates": list(candidates)}}
    return KubeObject("Experiment", "ns", "e", raw, "kube/e.yaml#0")


def test_candidates_keep_invalid_weights_apart() -> None:
    exp = _experiment(
        {"name": "a", "weight": 60},
        {"name": "b", "weight": float("nan")},
        {"name": "c"},
        {"name": "d", "weight": -5},
        {"weight": 10},
    )
    found = experiment_candidates(exp)
    assert [(c.name, c.index, c.weight) for c in found] == [("a", 0, 60), ("b", 1, None), ("c", 2, 0), ("d", 3, None)]
    assert found[1].weight_text() == ".nan" and found[1].field == ".spec.candidates[1].weight"
    # The old reader's callers (trace, alerts) get 0 for a weight that is none, as they did for text.
    assert list(iter_weighted_candidates(exp)) == [("a", 60), ("b", 0), ("c", 0), ("d", 0)]


# --- workloads -------------------------------------------------------------------------------------------------------


def _obj(kind: str, name: str, raw: dict[str, Any], namespace: str = "ns") -> KubeObject:
    body = {"kind": kind, "metadata": {"name": name, "namespace": namespace}, **raw}
    return KubeObject(kind, namespace, name, body, f"kube/{name}.yaml#0")


def test_replicas_that_are_no_count_leave_the_local_scheduler_unknown() -> None:
    snap = Snapshot(source="t")
    snap.add_objects([_obj("StatefulSet", "seldon-scheduler", {"spec": {"replicas": float("nan")}})])
    assert workload_replicas(snap.objects[0]) is None
    local = local_scheduler(snap, "ns")
    assert local.running is None
    assert any("replicas=.nan (not a count)" in what for _, what in local.evidence)


def test_controller_whose_replicas_are_no_count_watches_an_unknown_scope() -> None:
    seed = load_bundle_dir(FIXTURES / "checks" / "MT107" / "healthy")
    objects = []
    for obj in seed.objects:
        if obj.kind == "Deployment" and obj.name == "seldon-v2-controller-manager":
            raw = {**obj.raw, "spec": {**obj.spec, "replicas": float("nan")}}
            obj = dataclasses.replace(obj, raw=raw)
        objects.append(obj)
    snap = dataclasses.replace(seed, objects=[], _by_kind={}, _by_key={})
    snap.add_objects(objects)
    (result,) = run_checks(snap, select(("MT107",), ())).checks
    assert result.status is CheckStatus.SKIP
    assert "replicas=.nan (not a count) does not tell whether it runs" in result.reason


def test_runtime_override_scales_down_only_with_a_zero_count() -> None:
    for replicas, disables in ((0, True), ("0", True), (False, False), (float("nan"), False), (None, False)):
        override = {"name": "seldon-scheduler", "replicas": replicas}
        snap = Snapshot(source="t")
        snap.add_objects([_obj("SeldonRuntime", "seldon", {"spec": {"overrides": [override]}})])
        assert (runtime_disables_scheduler(snap, "ns") is not None) is disables, replicas


# --- NetworkPolicies -------------------------------------------------------------------------------------------------

SCHEDULER = Endpoint(namespace="ns", labels={"app": "scheduler"}, namespace_labels={}, container_ports={"xds": 9002})
ENVOY = Endpoint(namespace="ns", labels={"app": "envoy"}, namespace_labels={})


def _policy(port_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}], "ports": [port_spec]}]},
    }


@pytest.mark.parametrize("value", [value for value in HOSTILE if value not in (None, "9002x")])
def test_policy_port_that_is_neither_number_nor_name_is_a_policy_error(value: Any) -> None:
    with pytest.raises(NetworkPolicyError, match="neither a port number"):
        evaluate([_policy({"port": value})], ENVOY, SCHEDULER, 9002, Protocol.TCP)


@pytest.mark.parametrize("value", [value for value in HOSTILE if value is not None])
def test_end_port_that_is_no_port_number_is_a_policy_error(value: Any) -> None:
    with pytest.raises(NetworkPolicyError, match="endPort"):
        evaluate([_policy({"port": 9000, "endPort": value})], ENVOY, SCHEDULER, 9002, Protocol.TCP)


def test_named_port_whose_container_port_is_invalid_admits_nothing() -> None:
    pod: dict[str, Any] = {
        "kind": "Pod",
        "metadata": {"name": "seldon-scheduler-0", "namespace": "ns", "labels": {"app": "scheduler"}},
        "spec": {"containers": [{"name": "scheduler", "ports": [
            {"name": "xds", "containerPort": "9002x"},
            {"name": "agent", "containerPort": 9005},
            {"name": True, "containerPort": 9004},
        ]}]},
    }
    scheduler = endpoint_from_pod(pod)
    assert scheduler.container_ports == {"agent": 9005}
    assert not evaluate([_policy({"port": "xds"})], ENVOY, scheduler, 9002, Protocol.TCP).allowed
    assert evaluate([_policy({"port": "agent"})], ENVOY, scheduler, 9005, Protocol.TCP).allowed
    problems = [(bad.path, bad.name, bad.problem) for bad in invalid_container_ports(pod["spec"])]
    assert problems == [
        (".containers[0].ports[0]", "xds", "port xds: containerPort '9002x' is not a port number (1-65535)"),
        (".containers[0].ports[2]", None, "a port: name true is not a valid port name"),
    ]


def test_rules_text_quotes_what_json_cannot_hold() -> None:
    spec = {"ingress": [{"ports": [{"port": 10**5000}], "since": datetime.date(2025, 1, 1)}, {1: "x", "from": []}]}
    text = rules_text(spec, "ingress")
    assert text.startswith("policyTypes=default ingress=")


@pytest.mark.parametrize("values", [5, float("nan"), "prod", {"a": 1}, True])
def test_expression_values_that_are_no_list_are_a_selector_error(values: Any) -> None:
    selector = {"matchExpressions": [{"key": "tier", "operator": "In", "values": values}]}
    with pytest.raises(SelectorError, match="must be a list"):
        selector_matches(selector, {"tier": "prod"})


# --- Ingress and Services --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "name", "expected"),
    [
        (80, None, PortRef(number=80)),
        ("80", None, PortRef(number=80)),
        ("http", None, PortRef(name="http")),
        (None, "http", PortRef(name="http")),
        (None, "²", PortRef(name="²")),
        (-1, None, PortRef()),
        (10**400, "http", PortRef(name="http")),
        (float("nan"), None, PortRef()),
        (True, None, PortRef()),
        ([], {}, PortRef()),
    ],
)
def test_backend_ports(number: Any, name: Any, expected: PortRef) -> None:
    v1 = {"service": {"name": "seldon-mesh", "port": {"number": number, "name": name}}}
    raw = {"kind": "Ingress", "metadata": {"name": "i", "namespace": "ns"}, "spec": {"defaultBackend": v1}}
    (backend,) = ingress_backends(KubeObject("Ingress", "ns", "i", raw, "kube/i.yaml#0"))
    assert backend.port == expected
    if name is None:
        beta = {"backend": {"serviceName": "seldon-mesh", "servicePort": number}}
        raw = {"kind": "Ingress", "metadata": {"name": "i", "namespace": "ns"}, "spec": beta}
        (backend,) = ingress_backends(KubeObject("Ingress", "ns", "i", raw, "kube/i.yaml#0"))
        assert backend.port == expected


def test_target_port_that_is_no_port_is_unknown() -> None:
    for raw, expected in ((9000, 9000), ("http", "http"), ("9000", 9000), (-1, None), (float("nan"), None),
                          ("HTTP", None), (True, None), ([], None)):
        hop = Hop("ns", "seldon-mesh", PortRef(number=80), None, {"port": 80, "targetPort": raw})
        assert target_port(Resolution((hop,), Stop.SERVICE, "")) == expected, raw


def test_rewrite_capture_that_is_no_ascii_digit_stays_as_written() -> None:
    match = re.match(r"^/a/(b)", "/a/b")
    assert match is not None
    assert substitute_captures("/$1/$²", match) == "/b/$²"


@pytest.mark.parametrize("path", ["/v2{99999999999}", "(" * 5000 + ")" * 5000])
def test_paths_python_cannot_compile_are_reported_not_raised(path: str) -> None:
    result = simulate_path(path, "Prefix", "/v2/models/m/infer", regex=True, rewrite=None)
    assert result.error is not None and not result.matched
