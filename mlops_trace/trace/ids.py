"""Identifiers every request carries so it can be found again in each log: an X-Request-ID and a W3C traceparent.

Request ids are `mt-<run>-<n>`: one random run prefix (so a log scan can skip lines without it) and a counter, cheap
enough to make per request under load. Trace ids are random per request, as W3C Trace Context asks.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass

REQUEST_ID_PREFIX = "mt-"


@dataclass(frozen=True)
class RequestIds:
    request_id: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits: the client span, parent of every hop span

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


class IdSource:
    """Makes RequestIds for one run; thread-safe, so sync probes and async workers may share it."""

    def __init__(self, run: str | None = None) -> None:
        self.run_prefix = f"{REQUEST_ID_PREFIX}{run or os.urandom(4).hex()}-"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> RequestIds:
        with self._lock:
            number = next(self._counter)
        raw = os.urandom(24)
        trace_id = raw[:16].hex()
        if trace_id == "0" * 32:  # the all-zero trace id is invalid in W3C Trace Context
            trace_id = "0" * 31 + "1"
        span_id = raw[16:].hex()
        if span_id == "0" * 16:
            span_id = "0" * 15 + "1"
        return RequestIds(f"{self.run_prefix}{number:06d}", trace_id, span_id)


def random_span_id() -> str:
    span = os.urandom(8).hex()
    return span if span != "0" * 16 else "0" * 15 + "1"
