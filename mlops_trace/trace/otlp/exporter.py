"""Export every traced request of a run (or the sampled ones) in batches, from a background thread.

The runner hands each TraceResult to `add` after the measured requests are done (it builds them while it summarises
the run), so exporting never competes with the requests it measures; the thread encodes and posts while the runner
goes on. A batch holds whole requests up to `batch_spans` spans (at least one request): 2,000 requests of eight
spans are 32 batches (POSTs), not 2,000. When a batch fails for good (collector down, 4xx, timeout) the rest are dropped and
counted, not tried one by one. `close` waits for the queue to drain (bounded) and says what happened in one line.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from mlops_trace.trace.otlp.config import OtlpConfig, OtlpProtocol
from mlops_trace.trace.otlp.encode import Batch, span_count, trace_ids
from mlops_trace.trace.otlp.sampling import sampled, threshold
from mlops_trace.trace.otlp.transport import Delivered, ExportError, HttpTransport
from mlops_trace.trace.record import TraceResult

MIN_CLOSE_WAIT_S = 30.0


class Transport(TypingProtocol):
    def send(self, request: ExportTraceServiceRequest) -> Delivered: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExportReport:
    """What an export did: requests seen and kept by sampling, what reached the collector, and the first error."""

    where: str  # the collector's URL, safe to print
    seen: int
    sampled: int
    exported_requests: int
    exported_spans: int
    batches: int
    rejected_spans: int
    dropped_requests: int
    busy_s: float  # the export thread's encoding and posting
    close_wait_s: float  # how long the command waited for the export after the run
    error: str | None = None
    rejected_message: str = ""

    def line(self) -> str:
        """One line for stderr."""
        sample = f" (sampled {self.sampled} of {self.seen})" if self.sampled != self.seen else ""
        done = (
            f"{self.exported_spans} spans of {self.exported_requests} requests{sample} to {self.where} "
            f"in {self.batches} batches ({self.busy_s:.2f} s of export work, "
            f"{self.close_wait_s:.2f} s waited after the run)"
        )
        if self.error is not None:
            return f"OTLP export failed: {self.error}; sent {done}, dropped {self.dropped_requests} requests"
        if self.rejected_spans:
            why = f": {self.rejected_message}" if self.rejected_message else ""
            return f"OTLP export: the collector rejected {self.rejected_spans} spans{why}; sent {done}"
        return f"exported {done}"


_DONE = object()


class BatchExporter:
    """Takes TraceResults (`add`, from any thread) and posts them in batches from one thread."""

    def __init__(self, config: OtlpConfig) -> None:
        self._config = config
        self._threshold = threshold(config.sample_ratio)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._seen = 0
        self._sampled = 0
        self._exported_requests = 0
        self._exported_spans = 0
        self._batches = 0
        self._rejected = 0
        self._rejected_message = ""
        self._dropped = 0
        self._error: str | None = None
        self._busy_s = 0.0
        self._thread = threading.Thread(target=self._run, name="mlops-trace-otlp", daemon=True)
        self._thread.start()

    def add(self, result: TraceResult) -> None:
        trace_id, _ = trace_ids(result)
        with self._lock:
            self._seen += 1
            if not sampled(trace_id, self._threshold):
                return
            self._sampled += 1
        self._queue.put(result)

    def close(self) -> ExportReport:
        """Flush what is queued and stop; waits at most max(30 s, 3 × the timeout)."""
        self._queue.put(_DONE)
        wait_s = max(MIN_CLOSE_WAIT_S, 3 * self._config.timeout_s)
        waiting = time.monotonic()
        self._thread.join(wait_s)
        waited = time.monotonic() - waiting
        with self._lock:
            if self._thread.is_alive():
                self._error = self._error or f"still exporting after {wait_s:g} s; gave up"
            if self._error is not None:
                self._dropped = self._sampled - self._exported_requests
            return ExportReport(
                where=self._config.display_url,
                seen=self._seen,
                sampled=self._sampled,
                exported_requests=self._exported_requests,
                exported_spans=self._exported_spans,
                batches=self._batches,
                rejected_spans=self._rejected,
                dropped_requests=self._dropped,
                busy_s=self._busy_s,
                close_wait_s=waited,
                error=self._error,
                rejected_message=self._rejected_message,
            )

    # --- the export thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        transport: Transport
        try:
            if self._config.protocol is OtlpProtocol.GRPC:
                from mlops_trace.trace.otlp.grpc_transport import GrpcTransport

                transport = GrpcTransport(self._config)
            else:
                transport = HttpTransport(self._config)
        except ExportError as exc:
            self._fail(str(exc), 0)
            self._drain()
            return
        batch = Batch(self._config.resource)
        try:
            while True:
                item = self._queue.get()
                if item is _DONE:
                    break
                if not isinstance(item, TraceResult):
                    continue
                if batch.spans and batch.spans + span_count(item) > self._config.batch_spans:
                    if not self._post(transport, batch):
                        self._drain()
                        return
                    batch = Batch(self._config.resource)
                began = time.perf_counter()
                batch.add(item)
                self._busy_s += time.perf_counter() - began
            if batch.spans:
                self._post(transport, batch)
        except Exception as exc:  # noqa: BLE001 - a bug here must cost the export, not print a thread's traceback
            self._fail(f"{type(exc).__name__}: {exc}", batch.requests)
            self._drain()
        finally:
            transport.close()

    def _post(self, transport: Transport, batch: Batch) -> bool:
        began = time.perf_counter()
        try:
            delivered = transport.send(batch.request)
        except ExportError as exc:
            self._fail(str(exc), batch.requests)
            return False
        finally:
            self._busy_s += time.perf_counter() - began
        with self._lock:
            self._batches += 1
            self._exported_requests += batch.requests
            self._exported_spans += batch.spans
            self._rejected += delivered.rejected_spans
            self._rejected_message = self._rejected_message or delivered.message
        return True

    def _fail(self, message: str, requests: int) -> None:
        with self._lock:
            self._error = message
            self._dropped += requests

    def _drain(self) -> None:
        """After a failure: count what is still queued as dropped until close() says the run is over."""
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            with self._lock:
                self._dropped += 1
