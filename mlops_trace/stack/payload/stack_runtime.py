# mypy: ignore-errors
"""An MLServer runtime for the slow-model fault: MLServer's own scikit-learn runtime that first sleeps a known time.

Loaded by MLServer inside the stack's venv (`implementation: stack_runtime.SlowSKLearnModel`), never by the CLI.
The delay comes from the model settings: `parameters.extra.delay_ms`.
"""

from __future__ import annotations

import asyncio

from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel


class SlowSKLearnModel(SKLearnModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        await asyncio.sleep(float(extra.get("delay_ms", 0.0)) / 1000.0)
        return await super().predict(payload)
