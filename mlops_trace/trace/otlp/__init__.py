"""Export traced requests as OpenTelemetry spans over OTLP, so they open in Jaeger, Tempo or any collector.

`config` resolves where and how (the `--otlp` flags over the OpenTelemetry exporter environment), `sampling` which
requests, `encode` the spans (opentelemetry-proto messages), `transport` the delivery (OTLP/HTTP, gzip, retries),
`exporter` the batching thread a run hands its requests to.
"""

from __future__ import annotations

from mlops_trace.trace.otlp.config import OtlpConfig, Resolved, resolve

__all__ = ["OtlpConfig", "Resolved", "resolve"]
