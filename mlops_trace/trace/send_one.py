"""One timed request to a target, REST or gRPC, for the runners of both serving paths (Seldon's `trace.runner`,
KServe's `trace.kserve.runner`): a gRPC call opens its own channel (its connect time is the first hop's), a REST call
its own client (DNS timed apart). What differs between the paths is only what they add to the request: headers, a
User-Agent, extra gRPC metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops_trace.errors import ClusterError
from mlops_trace.trace import payload
from mlops_trace.trace.ids import RequestIds
from mlops_trace.trace.record import Exchange, Protocol
from mlops_trace.trace.rest import TlsOptions, make_client, resolve_ms, send
from mlops_trace.trace.target import Target


def send_one(
    target: Target,
    rid: RequestIds,
    *,
    tls: TlsOptions,
    http2: bool,
    timeout: float,
    body: bytes,
    document: Any,
    headers: Mapping[str, str],
    user_agent: str | None = None,
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> Exchange:
    """`body` is the REST body and `document` the V2 request it encodes (for gRPC); `headers` are the REST
    headers; `user_agent` and `extra_metadata` apply to gRPC."""
    if target.protocol is Protocol.GRPC:
        from mlops_trace.trace.grpc_client import infer, open_channel, wait_ready

        channel = open_channel(target, tls, user_agent)
        try:
            connect_ms = wait_ready(channel, timeout)
            if connect_ms is None:
                raise ClusterError(f"cannot connect to grpc://{target.url_host}:{target.url_port} within {timeout:g}s")
            return infer(
                channel,
                target,
                payload.to_grpc_request(document, target.name),
                request_id=rid.request_id,
                traceparent=rid.traceparent,
                timeout=timeout,
                connect_ms=connect_ms,
                extra_metadata=extra_metadata,
            )
        finally:
            channel.close()
    dns = resolve_ms(target.url_host, target.url_port)
    with make_client(http2=http2, tls=tls, timeout=timeout) as client:
        return send(
            client,
            entry="ingress",
            method="POST",
            url=f"{target.base_url}{target.infer_path}",
            headers=headers,
            body=body,
            request_id=rid.request_id,
            traceparent=rid.traceparent,
            dns_ms=dns,
        )
