"""The ingress config, the log lines of the stand-in components, and the gRPC wire codec."""

from __future__ import annotations

import struct
from pathlib import Path

from mlops_trace.parsers import logs, nginx_access
from mlops_trace.stack import grpc_wire, nginx
from mlops_trace.stack.logfmt import PodLog, logrus_line, zap_dev_line


def _render(prefix: bool = False, derive: bool = True) -> str:
    return nginx.render(layout=nginx.IngressLayout(prefix, derive), http_port=1081, grpc_port=1082, envoy_port=1083,
                        run_dir=Path("/run/ingress"), log_path=Path("/b/controller.log"))


def test_ingress_config() -> None:
    healthy = _render()
    assert "log_format upstreaminfo" in healthy and "access_log /b/controller.log upstreaminfo;" in healthy
    assert "location /v2/ {" in healthy and "location /v2/models/financial-ab-test-experiment/ {" in healthy
    assert 'set $seldon_model "financial-ab-test-experiment.experiment"' in healthy
    assert "proxy_set_header X-Request-ID $req_id;" in healthy and '"" $request_id;' in healthy
    assert "grpc_pass grpc://seldon_mesh_grpc;" in healthy and "server_name ml-api.local;" in healthy
    assert "127.0.0.1:1083" in healthy and "0.0.0.0" not in healthy
    assert "seldon_model" not in _render(derive=False)
    prefixed = _render(prefix=True)
    assert "location /financial-inference/ {" in prefixed and "location /v2/ {" not in prefixed
    assert "rewrite" not in prefixed


def test_upstreaminfo_has_the_17_fields() -> None:
    line = ('127.0.0.1 - - [23/Nov/2026:18:31:38 +0000] "POST /v2/models/x/infer HTTP/1.1" 200 227 "-" "curl/7.88.1" '
            "2041 0.004 [financial-inference-seldon-mesh-80] [] 127.0.0.1:56087 227 0.004 200 3ed1b19e")
    record = nginx_access.parse_line(1, line)
    assert record is not None and record.request_id == "3ed1b19e" and record.upstream_status == 200
    assert nginx.UPSTREAMINFO.count("$") == 17


def test_log_lines_parse(tmp_path: Path) -> None:
    record = logs.parse_line(1, logrus_line("info", "Remove Routes for model x.experiment", source="SeldonXDSCache"))
    assert record.level == "info" and record.message == "Remove Routes for model x.experiment"
    assert record.logger == "SeldonXDSCache"
    zap = logs.parse_line(2, zap_dev_line("error", "SchedulerClient.SubscribeModelEvents", "Scheduler not ready",
                                          error="rpc error"))
    assert zap.level == "error" and zap.message == "Scheduler not ready"
    log = PodLog(tmp_path / "a" / "agent.log")
    log.logrus("info", "Subscribed to scheduler")
    log.close()
    assert "msg=\"Subscribed to scheduler\"" in (tmp_path / "a" / "agent.log").read_text()


def test_grpc_request_encoding() -> None:
    data = grpc_wire.encode_infer_request("exp", "input_data", [1, 10, 35], [0.5] * 350, request_id="r1")
    fields = list(grpc_wire._fields(data))
    assert [(n, t) for n, t, _ in fields] == [(1, 2), (3, 2), (5, 2)]
    assert fields[0][2] == b"exp" and fields[1][2] == b"r1"
    tensor = {n: v for n, _, v in grpc_wire._fields(fields[2][2])}  # type: ignore[arg-type]
    assert tensor[1] == b"input_data" and tensor[2] == b"FP32"
    assert grpc_wire._packed_varints(tensor[3]) == [1, 10, 35]  # type: ignore[arg-type]
    contents = {n: v for n, _, v in grpc_wire._fields(tensor[5])}  # type: ignore[arg-type]
    assert struct.unpack("<350f", contents[6]) == (0.5,) * 350  # type: ignore[arg-type]


def test_grpc_response_decoding() -> None:
    ints = grpc_wire._length_delimited(3, grpc_wire._varint(1))
    output = (grpc_wire._string(1, "predict") + grpc_wire._string(2, "INT64")
              + grpc_wire._length_delimited(3, grpc_wire._varint(1) + grpc_wire._varint(1))
              + grpc_wire._length_delimited(5, ints))
    body = grpc_wire._string(1, "baseline-predictor_1") + grpc_wire._string(2, "1") + grpc_wire._length_delimited(5,
                                                                                                                   output)
    response = grpc_wire.decode_infer_response(body)
    assert response.model_name == "baseline-predictor_1" and response.model_version == "1"
    assert response.outputs[0].name == "predict" and response.outputs[0].shape == (1, 1)
    assert response.outputs[0].int64 == (1,)
