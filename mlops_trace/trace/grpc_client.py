"""gRPC `inference.GRPCInferenceService/ModelInfer` with our stubs (mlops_trace.grpc_v2), sync for one request and
grpc.aio for many.

gRPC hides the transport, so the phases are coarser than over REST: connect (the channel becoming ready: TCP,
TLS and the HTTP/2 preface) and the call itself. Response headers (`x-seldon-route`,
`x-envoy-upstream-service-time`) arrive as initial metadata, the agent's `x-request-id` as a trailer; both are merged
into the exchange's headers. A non-OK status is an `Exchange` with `grpc_status` set, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_trace.errors import UsageError
from mlops_trace.trace.record import ClientPhases, ErrorKind, Exchange
from mlops_trace.trace.rest import TlsOptions
from mlops_trace.trace.target import GRPC_SERVICE, Target

if TYPE_CHECKING:
    from mlops_trace.grpc_v2 import open_inference_pb2

INFER_METHOD = f"/{GRPC_SERVICE}/ModelInfer"
METADATA_METHOD = f"/{GRPC_SERVICE}/ModelMetadata"


def grpc_address(target: Target) -> str:
    return f"{target.url_host}:{target.url_port}"


def _options(target: Target, user_agent: str | None = None) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [("grpc.enable_retries", 0), ("grpc.max_receive_message_length", 64 << 20)]
    if target.host_header:
        options.append(("grpc.default_authority", target.host_header))
    if user_agent:
        # grpc-core puts this first in the call's user-agent (`<it> grpc-python/… grpc-c/…`): a gateway that
        # replaces x-request-id still logs the request's id there.
        options.append(("grpc.primary_user_agent", user_agent))
    return options


def _credentials(target: Target, tls: TlsOptions) -> Any:
    import grpc

    if tls.insecure:
        raise UsageError("--insecure: gRPC over TLS cannot skip certificate checks; give --cacert FILE instead")
    roots = tls.cacert.read_bytes() if tls.cacert is not None else None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def open_channel(target: Target, tls: TlsOptions, user_agent: str | None = None) -> Any:
    import grpc

    options = _options(target, user_agent)
    if target.scheme == "https":
        return grpc.secure_channel(grpc_address(target), _credentials(target, tls), options=options)
    return grpc.insecure_channel(grpc_address(target), options=options)


def open_aio_channel(target: Target, tls: TlsOptions, user_agent: str | None = None) -> Any:
    import grpc

    options = _options(target, user_agent)
    if target.scheme == "https":
        return grpc.aio.secure_channel(grpc_address(target), _credentials(target, tls), options=options)
    return grpc.aio.insecure_channel(grpc_address(target), options=options)


def infer_callable(channel: Any) -> Any:
    from mlops_trace.grpc_v2 import open_inference_pb2

    return channel.unary_unary(
        INFER_METHOD,
        request_serializer=open_inference_pb2.ModelInferRequest.SerializeToString,
        response_deserializer=open_inference_pb2.ModelInferResponse.FromString,
    )


def metadata_callable(channel: Any) -> Any:
    from mlops_trace.grpc_v2 import open_inference_pb2

    return channel.unary_unary(
        METADATA_METHOD,
        request_serializer=open_inference_pb2.ModelMetadataRequest.SerializeToString,
        response_deserializer=open_inference_pb2.ModelMetadataResponse.FromString,
    )


def call_metadata(
    target: Target, request_id: str, traceparent: str, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    metadata = [(name, value) for name, value in target.headers]
    metadata.append(("x-request-id", request_id))
    metadata.append(("traceparent", traceparent))
    metadata.extend(extra)
    return metadata


def _headers(*parts: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part or ():
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            merged.setdefault(str(key).lower(), text)
    return merged


def wait_ready(channel: Any, timeout: float) -> float | None:
    """Milliseconds until the channel is connected, None when it does not connect within `timeout`."""
    import grpc

    start = time.perf_counter()
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        return None
    return round((time.perf_counter() - start) * 1000.0, 3)


def infer(
    channel: Any,
    target: Target,
    request: open_inference_pb2.ModelInferRequest,
    *,
    request_id: str,
    traceparent: str,
    timeout: float,
    connect_ms: float | None,
    entry: str = "ingress",
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> Exchange:
    """One ModelInfer on a ready sync channel; `connect_ms` (from `wait_ready`) is added to the total."""
    import grpc

    url = f"grpc://{grpc_address(target)}{INFER_METHOD}"
    metadata = call_metadata(target, request_id, traceparent, extra_metadata)
    started_at = time.time()
    start = time.perf_counter()
    try:
        response, call = infer_callable(channel).with_call(request, metadata=metadata, timeout=timeout)
        elapsed = (time.perf_counter() - start) * 1000.0
        headers = _headers(call.initial_metadata(), call.trailing_metadata())
        body = f'{{"model_name":"{response.model_name}","model_version":"{response.model_version}"}}'.encode()
        status, message = "OK", None
    except grpc.RpcError as exc:
        elapsed = (time.perf_counter() - start) * 1000.0
        rpc: Any = exc
        headers = _headers(rpc.initial_metadata(), rpc.trailing_metadata())
        status, message, body = rpc.code().name, rpc.details(), b""
    total = round(elapsed + (connect_ms or 0.0), 3)
    return _grpc_exchange(
        entry,
        url,
        request_id,
        traceparent,
        started_at,
        headers,
        body,
        total,
        ClientPhases(connect_ms=connect_ms, wait_ms=round(elapsed, 3)),
        status,
        message,
    )


async def infer_async(
    callable_: Any,
    target: Target,
    request: open_inference_pb2.ModelInferRequest,
    *,
    request_id: str,
    traceparent: str,
    timeout: float,
    reused_connection: bool = True,
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> Exchange:
    """One ModelInfer on a grpc.aio channel's callable (made once with `infer_callable`); `reused_connection`
    False when the channel was opened for this call (its connect time is then in the total)."""
    import grpc

    url = f"grpc://{grpc_address(target)}{INFER_METHOD}"
    metadata = call_metadata(target, request_id, traceparent, extra_metadata)
    started_at = time.time()
    start = time.perf_counter()
    call = callable_(request, metadata=metadata, timeout=timeout)
    try:
        await call
        status, message = "OK", None
    except grpc.aio.AioRpcError as exc:
        status, message = exc.code().name, exc.details()
    elapsed = round((time.perf_counter() - start) * 1000.0, 3)
    try:
        headers = _headers(await call.initial_metadata(), await call.trailing_metadata())
    except grpc.aio.AioRpcError:
        headers = {}
    return _grpc_exchange(
        entry="ingress",
        url=url,
        request_id=request_id,
        traceparent=traceparent,
        started_at=started_at,
        headers=headers,
        body=b"",
        total=elapsed,
        phases=ClientPhases(wait_ms=elapsed, reused_connection=reused_connection),
        status=status,
        message=message,
    )


def _grpc_exchange(
    entry: str,
    url: str,
    request_id: str,
    traceparent: str,
    started_at: float,
    headers: Mapping[str, str],
    body: bytes,
    total: float,
    phases: ClientPhases,
    status: str,
    message: str | None,
) -> Exchange:
    unreachable = status == "UNAVAILABLE" and not headers
    return Exchange(
        entry=entry,
        url=url,
        request_id=request_id,
        traceparent=traceparent,
        started_at=started_at,
        status=None,
        headers=headers,
        body=body,
        total_ms=total,
        phases=phases,
        http_version="HTTP/2",
        error=message if status != "OK" else None,
        error_kind=(ErrorKind.CONNECT if unreachable else ErrorKind.GRPC) if status != "OK" else None,
        grpc_status=status,
        grpc_message=message,
    )


def model_metadata(channel: Any, target: Target, *, timeout: float) -> dict[str, Any]:
    """The model's metadata over gRPC, REST-shaped; the RpcError propagates to the caller."""
    from mlops_trace.grpc_v2 import open_inference_pb2
    from mlops_trace.trace.payload import metadata_from_grpc

    request = open_inference_pb2.ModelMetadataRequest(name=target.name)
    metadata = [(name, value) for name, value in target.headers]
    response = metadata_callable(channel)(request, metadata=metadata, timeout=timeout)
    return metadata_from_grpc(response)
