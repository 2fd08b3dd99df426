"""Deliver one `ExportTraceServiceRequest` to the collector over OTLP/HTTP: protobuf or JSON body, gzip when asked,
the configured headers, TLS verified (with the configured CA and client certificate), retried as OTLP asks.

Retries (opentelemetry-specification protocol/otlp.md, "Failures"): 429, 502, 503, 504 and a transport error are
transient and retried with exponential back-off and jitter (honouring Retry-After), all within the batch's timeout;
anything else fails the batch. Every message we raise has the header values and URL secrets masked.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mlops_trace import __version__
from mlops_trace.redaction import REPLACEMENT, redact_text
from mlops_trace.trace.otlp.config import Compression, OtlpConfig, OtlpProtocol
from mlops_trace.trace.otlp.encode import to_json

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 3
FIRST_BACKOFF_S = 0.2
MAX_RETRY_AFTER_S = 5.0
MIN_SECRET_CHARS = 3  # shorter header values ("1", "on") would mask unrelated text


class ExportError(Exception):
    """A batch the collector did not take; the message is one line, safe to print."""


@dataclass(frozen=True)
class Delivered:
    rejected_spans: int = 0  # the collector's partial_success
    message: str = ""


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Mask the header values we sent and anything the redaction rules recognise; one line, at most 200 chars."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REPLACEMENT)
    masked, _ = redact_text(" ".join(text.split()))
    return masked if len(masked) <= 200 else masked[:197] + "..."


def _ssl_context(config: OtlpConfig) -> Any:
    import ssl

    if config.certificate is None and config.client_certificate is None:
        return True
    context = ssl.create_default_context(cafile=str(config.certificate) if config.certificate else None)
    if config.client_certificate is not None and config.client_key is not None:
        context.load_cert_chain(str(config.client_certificate), str(config.client_key))
    return context


class HttpTransport:
    """One connection pool for a whole export."""

    def __init__(self, config: OtlpConfig) -> None:
        import httpx

        self._config = config
        try:
            verify = _ssl_context(config)
        except (OSError, ValueError) as exc:
            raise ExportError(f"cannot load the TLS files for {config.display_url}: {exc}") from exc
        self._client = httpx.Client(verify=verify, trust_env=False)
        json_body = config.protocol is OtlpProtocol.HTTP_JSON
        self._headers = {
            **dict(config.headers),
            "content-type": "application/json" if json_body else "application/x-protobuf",
            "user-agent": f"mlops-trace/{__version__}",
        }
        if config.compression is Compression.GZIP:
            self._headers["content-encoding"] = "gzip"

    def close(self) -> None:
        self._client.close()

    def _body(self, request: ExportTraceServiceRequest) -> bytes:
        raw = to_json(request) if self._config.protocol is OtlpProtocol.HTTP_JSON else request.SerializeToString()
        return gzip.compress(raw, compresslevel=6) if self._config.compression is Compression.GZIP else raw

    def send(self, request: ExportTraceServiceRequest) -> Delivered:
        import httpx

        config = self._config
        body = self._body(request)
        deadline = time.monotonic() + config.timeout_s
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                response = self._client.post(config.url, content=body, headers=self._headers, timeout=remaining)
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                retry_after = None
            else:
                if 200 <= response.status_code < 300:
                    return self._delivered(response.content)
                status = response.status_code
                why = f"HTTP {status}{self._error_text(response)}"
                retry_after = _retry_after(response.headers.get("retry-after"))
                if status not in RETRYABLE_STATUS:
                    raise ExportError(scrub(why, config.secrets))
            pause = retry_after if retry_after is not None else FIRST_BACKOFF_S * 2 ** (attempt - 1)
            pause *= random.uniform(0.8, 1.2)
            if attempt >= MAX_ATTEMPTS or time.monotonic() + pause >= deadline:
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise ExportError(scrub(why + tries, config.secrets))
            time.sleep(pause)

    def _delivered(self, content: bytes) -> Delivered:
        if not content:
            return Delivered()
        try:
            if self._config.protocol is OtlpProtocol.HTTP_JSON:
                partial = json.loads(content).get("partialSuccess") or {}
                rejected, message = int(partial.get("rejectedSpans", 0)), str(partial.get("errorMessage", ""))
            else:
                answer = ExportTraceServiceResponse.FromString(content)
                rejected = answer.partial_success.rejected_spans
                message = answer.partial_success.error_message
        except (DecodeError, ValueError, AttributeError, TypeError):
            return Delivered()  # a 2xx whose body is not a response message: the spans were taken
        return Delivered(rejected, scrub(message, self._config.secrets) if message else "")

    @staticmethod
    def _error_text(response: Any) -> str:
        kind = response.headers.get("content-type", "")
        if not kind.startswith(("text/", "application/json")):
            return ""
        text = response.text.strip()
        return f" {text}" if text else ""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
