# mypy: ignore-errors
"""An MLServer runtime for the slow-model fault: MLServer's own scikit-learn runtime that first sleeps a known time.

Loaded by MLServer inside the stack's venv (`implementation: stack_runtime.SlowSKLearnModel`), never by the CLI.
The delay comes from the model settings: `parameters.extra.delay_ms`. A plain `asyncio.sleep` overshoots by up to a
millisecond or more (the event loop's timers count whole milliseconds), which at 2 ms is half the fault again; so the
wait is a `time.sleep` on a thread of its own (the kernel's timer, tens of microseconds late), awaited without
blocking the loop or spending CPU.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel

# One thread per request in flight: sleeping threads cost no CPU, and a smaller pool would queue the delays.
_SLEEPERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="slow-model")


async def sleep_exactly(seconds: float) -> None:
    """Wait `seconds` to within tens of microseconds, letting other requests run meanwhile."""
    if seconds > 0:
        await asyncio.get_running_loop().run_in_executor(_SLEEPERS, time.sleep, seconds)


class SlowSKLearnModel(SKLearnModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        await sleep_exactly(float(extra.get("delay_ms", 0.0)) / 1000.0)
        return await super().predict(payload)
