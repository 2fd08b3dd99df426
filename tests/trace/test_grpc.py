"""gRPC ModelInfer through our own stubs against an in-process server on 127.0.0.1: metadata we send, response
headers we read, a non-OK status as an exchange, and the payload conversion."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from mlops_trace.grpc_v2 import open_inference_pb2 as pb2
from mlops_trace.grpc_v2 import open_inference_pb2_grpc as pb2_grpc
from mlops_trace.trace.grpc_client import (
    infer,
    infer_async,
    infer_callable,
    model_metadata,
    open_aio_channel,
    open_channel,
    wait_ready,
)
from mlops_trace.trace.payload import to_grpc_request
from mlops_trace.trace.record import ErrorKind, Protocol
from mlops_trace.trace.rest import TlsOptions
from mlops_trace.trace.target import Target, build_target


class _Servicer(pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def ModelInfer(self, request: Any, context: Any) -> Any:
        sent = dict(context.invocation_metadata())
        self.metadata.append(sent)
        if sent.get("seldon-model") != "ab.experiment":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "")
        context.send_initial_metadata((("x-seldon-route", ":a_1:"), ("x-envoy-upstream-service-time", "3")))
        values = list(request.inputs[0].contents.fp32_contents)
        return pb2.ModelInferResponse(
            model_name="a_1",
            model_version="1",
            outputs=[
                pb2.ModelInferResponse.InferOutputTensor(
                    name="sum",
                    datatype="FP32",
                    shape=[1],
                    contents=pb2.InferTensorContents(fp32_contents=[sum(values)]),
                )
            ],
        )

    def ModelMetadata(self, request: Any, context: Any) -> Any:
        return pb2.ModelMetadataResponse(
            name=request.name,
            inputs=[pb2.ModelMetadataResponse.TensorMetadata(name="x", datatype="FP32", shape=[-1, 3])],
        )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[_Servicer, int]]:
    servicer = _Servicer()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield servicer, port
    srv.stop(None)


def _target(port: int, headers: list[str] | None = None) -> Target:
    return build_target(
        f"http://127.0.0.1:{port}",
        host="ml-api.local",
        model=None,
        experiment="ab",
        extra_headers=headers or [],
        protocol=Protocol.GRPC,
    )


PAYLOAD = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [[1.0, 2.0, 3.5]]}]}


def test_infer_sends_our_metadata_and_reads_the_route(server: tuple[_Servicer, int]) -> None:
    servicer, port = server
    target = _target(port)
    channel = open_channel(target, TlsOptions())
    try:
        connect_ms = wait_ready(channel, 5.0)
        assert connect_ms is not None
        exchange = infer(
            channel,
            target,
            to_grpc_request(PAYLOAD, target.name),
            request_id="mt-x-000001",
            traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
            timeout=5.0,
            connect_ms=connect_ms,
        )
        metadata = model_metadata(channel, target, timeout=5.0)
    finally:
        channel.close()
    assert exchange.ok and exchange.grpc_status == "OK"
    assert exchange.route == ":a_1:" and exchange.upstream_service_time_ms == 3.0
    assert b'"model_name":"a_1"' in exchange.body
    sent = servicer.metadata[-1]
    assert sent["x-request-id"] == "mt-x-000001" and sent["seldon-model"] == "ab.experiment"
    assert sent["traceparent"].startswith("00-1111")
    assert exchange.phases.connect_ms == connect_ms
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]


def test_non_ok_status_is_an_exchange(server: tuple[_Servicer, int]) -> None:
    _, port = server
    target = _target(port, ["seldon-model: ab"])
    channel = open_channel(target, TlsOptions())
    try:
        exchange = infer(
            channel,
            target,
            to_grpc_request(PAYLOAD, "ab"),
            request_id="mt-x-000002",
            traceparent="tp",
            timeout=5.0,
            connect_ms=None,
        )
    finally:
        channel.close()
    assert not exchange.ok
    assert exchange.grpc_status == "UNIMPLEMENTED" and exchange.error_kind is ErrorKind.GRPC


def test_async_infer_on_one_channel(server: tuple[_Servicer, int]) -> None:
    _, port = server
    target = _target(port)

    async def run() -> list[Any]:
        channel = open_aio_channel(target, TlsOptions())
        call = infer_callable(channel)
        request = to_grpc_request(PAYLOAD, target.name)
        try:
            return list(
                await asyncio.gather(
                    *(
                        infer_async(call, target, request, request_id=f"mt-y-{i:06d}", traceparent="tp", timeout=5.0)
                        for i in range(5)
                    )
                )
            )
        finally:
            await channel.close()

    exchanges = asyncio.run(run())
    assert all(ex.ok and ex.route == ":a_1:" for ex in exchanges)


def test_payload_conversion_flattens_and_types() -> None:
    payload = {
        "inputs": [
            {"name": "f", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
            {"name": "i", "datatype": "INT64", "shape": [2], "data": [5, 6]},
            {"name": "b", "datatype": "BOOL", "shape": [1], "data": [1]},
            {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hi"]},
        ]
    }
    request = to_grpc_request(payload, "m")
    assert request.model_name == "m"
    assert list(request.inputs[0].contents.fp32_contents) == [1.0, 2.0, 3.0, 4.0]
    assert list(request.inputs[0].shape) == [2, 2]
    assert list(request.inputs[1].contents.int64_contents) == [5, 6]
    assert list(request.inputs[2].contents.bool_contents) == [True]
    assert list(request.inputs[3].contents.bytes_contents) == [b"hi"]
