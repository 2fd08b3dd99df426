"""Failures placed at the right hop from the shape of the answer, the logs and the path; and named by the right check
once the exchange is recorded into the Snapshot and the catalog runs on it (as `request` does)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mlops_trace.findings import Report
from mlops_trace.parsers import envoy_access, nginx_access
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.accesslogs import Found, LogFile, LogKind, find
from mlops_trace.trace.diagnose import diagnose, explained, record_display, record_of, sent_headers
from mlops_trace.trace.explain import INGRESS_NO_MATCH, NO_ROUTE, explain
from mlops_trace.trace.path import PathRequest, RequestPath, reconstruct
from mlops_trace.trace.record import ErrorKind, Exchange, Failure
from mlops_trace.trace.target import Target, build_target
from tests.trace.helpers import EXPERIMENT, HEALTHY_AB, HOST, LB_IP, exchange, nginx_line


@pytest.fixture(scope="module")
def snap() -> Iterator[Snapshot]:
    with open_bundle(HEALTHY_AB) as loaded:
        yield loaded


def _target(headers: list[str] | None = None, *, model: str | None = None, host: str = HOST) -> Target:
    if model is not None:
        return build_target(f"http://{LB_IP}", host=host, model=model, experiment=None, extra_headers=headers or [])
    return build_target(f"http://{LB_IP}", host=host, model=None, experiment=EXPERIMENT, extra_headers=headers or [])


def _path(snap: Snapshot, target: Target, route: str | None = None):  # type: ignore[no-untyped-def]
    request = PathRequest(LB_IP, 80, target.authority, target.infer_path, target.header_map())
    return reconstruct(snap, request, route)


def _why(
    snap: Snapshot, target: Target, answer: Exchange, path: RequestPath | None, nginx: Found | None = None
) -> tuple[Failure, Report]:
    """The failure `explain` places, with the checks the catalog names for its recorded exchange."""
    failure = explain(answer, target, path, snap, nginx)
    assert failure is not None
    namespace = path.namespace if path is not None else None
    report = diagnose(snap, [record_of(answer, target, sent_headers(target), namespace)], {}, "test")
    explained_failure = explained(failure, report, record_display(answer))
    assert explained_failure is not None
    return explained_failure, report


def test_success_has_no_failure(snap: Snapshot) -> None:
    target = _target()
    assert explain(exchange(200, {"x-seldon-route": ":txn-baseline_1:"}), target, _path(snap, target), snap) is None


def test_envoy_no_route_for_an_experiment_path_without_header_is_mt301(snap: Snapshot) -> None:
    target = _target(model=EXPERIMENT)  # /v2/models/txn-ab/infer: the Lua filter sets seldon-model: txn-ab
    answer = exchange(404, {"server": "envoy", "content-length": "0"})
    failure, report = _why(snap, target, answer, _path(snap, target))
    assert (failure.hop, failure.code, failure.checks) == (4, NO_ROUTE, ("MT301",))
    assert [f.object for f in report.findings] == ["Experiment/txn-ab"]
    assert "Lua" in failure.summary


def test_stale_sticky_header_is_mt307(snap: Snapshot) -> None:
    target = _target(["x-seldon-route: :txn-baseline_9:"])
    failure, _ = _why(snap, target, exchange(404, {"server": "envoy"}), _path(snap, target))
    assert (failure.hop, failure.code, failure.checks) == (4, NO_ROUTE, ("MT307",))
    assert "txn-ab.experiment_http" in failure.summary  # the route that takes it without the header


def test_no_route_for_an_existing_model_is_mt302(snap: Snapshot) -> None:
    target = _target(["seldon-model: txn-ab.experiment"])
    assert _path(snap, target).route is not None
    # The dump routes it, so Envoy's 404 must have had another cause: no check claims a missing route.
    failure, _ = _why(snap, target, exchange(404, {"server": "envoy"}), None)
    assert (failure.hop, failure.code, failure.checks) == (4, NO_ROUTE, ())
    # Without a config_dump, the Ready Experiment and Envoy's own 404 for its exact route value say it.
    failure, report = _why(replace(snap, envoys=[]), target, exchange(404, {"server": "envoy"}), None)
    assert failure.checks == ("MT302",) and [f.object for f in report.findings] == ["Experiment/txn-ab"]


def test_versioned_name_is_mt306(snap: Snapshot) -> None:
    target = _target(model="txn-baseline_1")
    failure, _ = _why(snap, target, exchange(404, {"server": "envoy"}), _path(snap, target))
    assert (failure.code, failure.checks) == (NO_ROUTE, ("MT306",))


def test_unknown_name_names_no_check(snap: Snapshot) -> None:
    target = _target(model="nothing-here")
    failure = explain(exchange(404, {}), target, _path(snap, target), snap)
    assert failure is not None and (failure.hop, failure.code) == (4, "unknown-model")


def test_agent_page_not_found_with_route_is_mt108_at_the_agent(snap: Snapshot) -> None:
    target = _target()
    answer = exchange(
        404, {"x-seldon-route": ":txn-challenger_1:", "x-envoy-upstream-service-time": "1"}, b"404 page not found\n"
    )
    failure, report = _why(snap, target, answer, _path(snap, target, ":txn-challenger_1:"))
    assert (failure.hop, failure.checks) == (6, ("MT108",))
    assert [f.object for f in report.findings] == ["Model/txn-challenger"]


def test_mlserver_model_not_found_is_hop_7(snap: Snapshot) -> None:
    answer = exchange(404, {"x-seldon-route": ":txn-baseline_1:"}, b'{"error":"Model txn-baseline_1 not found"}')
    failure, _ = _why(snap, _target(), answer, None)
    assert (failure.hop, failure.checks) == (7, ("MT108",))
    assert "txn-baseline_1 not found" in failure.summary


def test_wrong_host_is_ingress_no_match(snap: Snapshot) -> None:
    target = _target(host="wrong.example")
    answer = exchange(404, {"server": "nginx"}, b"default backend - 404")
    failure, report = _why(snap, target, answer, _path(snap, target))
    assert (failure.hop, failure.code, failure.checks) == (2, INGRESS_NO_MATCH, ())
    assert report.findings == ()


def test_access_log_tells_default_backend_from_envoy(snap: Snapshot) -> None:
    target = _target(model=EXPERIMENT)
    body = b""
    default = nginx_access.parse_line(1, nginx_line("mt-1", "0.000", "-", 404, "[upstream-default-backend] [] - -"))
    upstream = nginx_access.parse_line(2, nginx_line("mt-1", "0.002", "0.001", 404))
    assert default is not None and upstream is not None
    failure = explain(exchange(404, {"server": "nginx"}, body), target, None, snap, Found("log:1", "x", nginx=default))
    assert failure is not None and failure.code == INGRESS_NO_MATCH
    answer = exchange(404, {"server": "nginx"}, body)
    failure, _ = _why(snap, target, answer, None, Found("log:2", "x", nginx=upstream))
    assert (failure.code, failure.checks) == (NO_ROUTE, ("MT301",))
    assert any(item.where == "log:2" for item in failure.evidence)


def test_grpc_unimplemented_is_envoy_no_route(snap: Snapshot) -> None:
    target = _target(["seldon-model: txn-ab"])
    answer = exchange(None, {}, grpc_status="UNIMPLEMENTED", error_kind=ErrorKind.GRPC, error="")
    failure, _ = _why(snap, target, answer, None)
    assert (failure.hop, failure.code, failure.checks) == (4, NO_ROUTE, ("MT301",))


def test_transport_failures(snap: Snapshot) -> None:
    target = _target()
    refused = explain(exchange(None, error_kind=ErrorKind.CONNECT, error="refused"), target, None, snap)
    assert refused is not None and (refused.hop, refused.code) == (1, "unreachable")
    slow = explain(exchange(None, error_kind=ErrorKind.TIMEOUT, error="timed out"), target, None, snap)
    assert slow is not None and (slow.hop, slow.code) == (2, "timeout")


def test_503_without_envoy_headers_is_the_ingress_backend(snap: Snapshot) -> None:
    failure = explain(exchange(503, {"server": "nginx"}, b"<html>503</html>"), _target(), None, snap)
    assert failure is not None and failure.hop == 3
    failure = explain(exchange(503, {"server": "envoy"}, b"no healthy upstream"), _target(), None, snap)
    assert failure is not None and (failure.hop, failure.code) == (6, "no-healthy-upstream")


def test_envoy_route_timeout_is_the_server_pods_hop(snap: Snapshot) -> None:
    # Envoy's own answer when the route timeout passes: 504 `upstream request timeout`, flag UT in its access log.
    line = envoy_access.parse_line(
        7, '[2026-12-07T10:00:00.000Z] "POST /v2/models/txn-ab/infer HTTP/1.1" 504 UT 412 24 60001 - "10.0.0.7" '
        '"python-requests/2.31.0" "mt-1" "seldon-mesh" "10.42.0.15:9000"'
    )
    assert line is not None and "UT" in line.response_flags
    answer = exchange(504, {"server": "envoy"}, b"upstream request timeout")
    failure = explain(answer, _target(), None, snap, envoy=Found("envoy.log:7", "x", envoy=line))
    assert failure is not None and (failure.hop, failure.code) == (6, "upstream-timeout")


def test_status_the_ingress_gives_itself_is_hop_2(snap: Snapshot) -> None:
    line = nginx_access.parse_line(3, nginx_line("mt-1", "0.000", "-", 421, "[] [] - -"))
    assert line is not None
    failure = explain(exchange(421, {"server": "nginx"}), _target(), None, snap, Found("log:3", "x", nginx=line))
    assert failure is not None and (failure.hop, failure.code) == (2, "http-421")
    failure = explain(exchange(429, {"server": "envoy"}), _target(), None, snap)
    assert failure is not None and failure.hop == 4


def test_421_over_http2_names_the_missing_http2_on(snap: Snapshot) -> None:
    over_h2 = replace(exchange(421, {"server": "nginx"}), http_version="HTTP/2")
    failure = explain(over_h2, _target(), None, snap)
    assert failure is not None and (failure.hop, failure.code) == (2, "http-421")
    assert "http2 on" in failure.summary and HOST in failure.summary
    failure = explain(exchange(421, {"server": "nginx"}), _target(), None, snap)
    assert failure is not None and "http2 on" not in failure.summary


def test_a_504_from_the_ingress_names_the_nginx_error_that_caused_it(snap: Snapshot, tmp_path: Path) -> None:

    target = _target()
    answer = exchange(504, {"server": "nginx"}, b"<html>504 Gateway Time-out</html>")
    log = tmp_path / "controller.log"
    # ingress-nginx's controller log interleaves klog, access and error lines; the error line carries no request
    # id, only the request line (the text as nginx writes it for a read timeout, ingress-nginx#9443).
    log.write_text(
        "I1207 10:00:00.000000       7 controller.go:190] \"Configuration changes detected, backend reload required\"\n"
        f"2026/12/07 10:00:05 [error] 31#31: *9021 upstream timed out (110: Operation timed out) while reading "
        f"response header from upstream, client: 10.0.0.7, server: {HOST}, request: \"POST {target.infer_path} "
        f"HTTP/1.1\", upstream: \"http://10.42.0.15:9000{target.infer_path}\", host: \"{HOST}\"\n",
        encoding="utf-8",
    )
    logs = find([LogFile(LogKind.INGRESS, log, "logs/ingress-nginx/ctl/controller.log")], {}, "no-such-id", [])
    found = logs.ingress_error_for(target.infer_path, 504)
    assert found is not None and found.where == "logs/ingress-nginx/ctl/controller.log:2"
    assert logs.ingress_error_for(target.infer_path, 502) is None
    assert logs.ingress_error_for("/v2/models/other/infer", 504) is None
    failure = explain(answer, target, None, snap, ingress_error=found)
    assert failure is not None and (failure.hop, failure.code) == (3, "ingress-upstream")
    assert "504" in failure.summary and "10.42.0.15:9000" in failure.summary
    assert any(e.where == found.where for e in failure.evidence)
    without = explain(answer, target, None, snap)
    assert without is not None and without.summary == "the ingress could not get an answer from its backend (504)"
