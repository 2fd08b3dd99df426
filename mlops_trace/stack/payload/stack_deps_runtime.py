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
from mlserver.types import InferenceRequest, InferenceResponse


class FeatureStoreModel(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        raise NotImplementedError
