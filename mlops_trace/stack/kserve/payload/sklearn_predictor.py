# mypy: ignore-errors
"""The predictor's kserve-container: KServe's model server (`kserve.ModelServer`) serving one scikit-learn model
from `--model_dir` over V1 and V2 REST and V2 gRPC (both bound to 127.0.0.1, `loopback.py`), as KServe's
sklearnserver does (it is not on PyPI, so this is our own `kserve.Model`): it loads the single
`*.joblib|*.pkl|*.pickle` under the directory the storage initializer filled, and `--delay_ms` makes each prediction
wait (the revision-timeout fault's slow model)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import joblib
from loopback import install

install()

from kserve import Model, ModelServer, logging, model_server
from kserve.errors import ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response

MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")


class SKLearnModel(Model):
    def __init__(self, name: str, model_dir: str, delay_ms: int) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.delay_ms = delay_ms
        self._model: Any = None

    def load(self) -> bool:
        files = sorted(p for p in Path(self.model_dir).iterdir() if p.name.endswith(MODEL_SUFFIXES))
        if not files:
            raise ModelMissingError(self.model_dir)
        if len(files) > 1:
            raise RuntimeError(f"More than one model file is detected, Only one is allowed within model_dir: {files}")
        self._model = joblib.load(os.fspath(files[0]))
        self.ready = True
        return self.ready

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self.delay_ms > 0:
            await asyncio.sleep(self.delay_ms / 1000.0)
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(instances), self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="A local directory holding the model file.")
    parser.add_argument("--delay_ms", type=int, default=0, help="Wait this long in every prediction.")
    args, _ = parser.parse_known_args()
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    model = SKLearnModel(args.model_name, args.model_dir, args.delay_ms)
    model.load()
    ModelServer().start([model])


if __name__ == "__main__":
    main()
