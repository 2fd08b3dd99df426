# mypy: ignore-errors
"""A custom MLServer runtime for the runtime-deps fault: it needs a package the server's environment does not have.

The fault's Model ships a model-settings.json with `implementation: stack_deps_runtime.FeatureStoreModel`; when the
agent asks MLServer to load it, MLServer imports this module and the import below raises the real
`ModuleNotFoundError: No module named 'feature_store_client'`, as a runtime does whose requirements were never
installed in the server image (and no environment tarball came with the model).
"""

from __future__ import annotations

import feature_store_client  # noqa: F401  (not installed in the stack's MLServer venv, on purpose)
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class FeatureStoreModel(MLModel):
    """Adds each request's stored features to its input, as a runtime that reads a feature store would."""

    async def load(self) -> bool:
        self._store = feature_store_client.connect()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = [
            ResponseOutput(name=item.name, shape=item.shape, datatype=item.datatype, data=self._store.enrich(item.data))
            for item in payload.inputs
        ]
        return InferenceResponse(model_name=self.name, outputs=outputs)
