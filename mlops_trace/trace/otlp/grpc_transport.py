"""Deliver one `ExportTraceServiceRequest` to the collector over OTLP/gRPC (`TraceService/Export` of
opentelemetry-proto, through grpcio, which the V2 gRPC client already needs): headers as call metadata, gzip as the
call's compression, TLS from the scheme (or `OTEL_EXPORTER_OTLP_INSECURE` for a bare `host:port`) with the configured
CA and client certificate.

Retries follow OTLP/gRPC's retryable codes (CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
DATA_LOSS; RESOURCE_EXHAUSTED only when the server says when to retry), all within the batch's timeout.
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mlops_trace.trace.otlp.config import Compression, OtlpConfig
from mlops_trace.trace.otlp.transport import FIRST_BACKOFF_S, MAX_ATTEMPTS, Delivered, ExportError, scrub

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE_CODES = frozenset({"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"})


def channel_target(config: OtlpConfig) -> tuple[str, bool]:
    """(`host:port`, secure) of the configured address."""
    if "://" not in config.url:
        return config.url, not config.insecure
    parts = urlsplit(config.url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port or (443 if secure else 80)}", secure


def _credentials(config: OtlpConfig) -> Any:
    import grpc

    def read(path: Any) -> bytes | None:
        return path.read_bytes() if path is not None else None

    try:
        return grpc.ssl_channel_credentials(
            root_certificates=read(config.certificate),
            private_key=read(config.client_key),
            certificate_chain=read(config.client_certificate),
        )
    except OSError as exc:
        raise ExportError(f"cannot read the TLS files for {config.display_url}: {exc}") from exc


class GrpcTransport:
    """One channel for a whole export."""

    def __init__(self, config: OtlpConfig) -> None:
        import grpc

        self._config = config
        target, secure = channel_target(config)
        self._channel = grpc.secure_channel(target, _credentials(config)) if secure else grpc.insecure_channel(target)
        self._export = self._channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=ExportTraceServiceRequest.SerializeToString,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._metadata = tuple(config.headers)
        self._compression = grpc.Compression.Gzip if config.compression is Compression.GZIP else None

    def close(self) -> None:
        self._channel.close()

    def send(self, request: ExportTraceServiceRequest) -> Delivered:
        import grpc

        config = self._config
        deadline = time.monotonic() + config.timeout_s
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._export(
                    request,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    metadata=self._metadata,
                    compression=self._compression,
                )
            except grpc.RpcError as exc:
                error: Any = exc
                code = error.code().name if error.code() is not None else "UNKNOWN"
                why = f"gRPC {code}: {error.details() or ''}".rstrip(": ")
                if code not in RETRYABLE_CODES:
                    raise ExportError(scrub(why, config.secrets)) from None
            else:
                partial = answer.partial_success
                message = scrub(partial.error_message, config.secrets) if partial.error_message else ""
                return Delivered(partial.rejected_spans, message)
            pause = FIRST_BACKOFF_S * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
            if attempt >= MAX_ATTEMPTS or time.monotonic() + pause >= deadline:
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise ExportError(scrub(why + tries, config.secrets))
            time.sleep(pause)
