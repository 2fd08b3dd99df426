# mypy: ignore-errors
"""The transformer's container: a `kserve.Model` whose preprocess turns each V1 instance (or the first V2 input) into
four floats and whose predict is KServe's own: an HTTP call to `http://<--predictor_host>/v1/models/<name>:predict`
(kserve/model.py), forwarding only the headers KServe forwards. A V2 request, REST or gRPC (kserve's gRPC server hands
`preprocess` the same `InferRequest`), gets its answer back as a V2 response (postprocess), the predictor being called
over V1 either way."""

from __future__ import annotations

import argparse
import contextvars
from typing import Any

from loopback import install

install()

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, logging, model_server
from kserve.errors import InvalidInput
from kserve.model import PredictorConfig

FEATURES = 4
# The V2 request id while one request runs through preprocess, predict and postprocess (one task).
_V2_REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("v2_request", default=None)


def _row(values: Any) -> list[float]:
    try:
        row = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"each instance must be {FEATURES} numbers: {exc}") from None
    if len(row) != FEATURES:
        raise InvalidInput(f"each instance must be {FEATURES} numbers, got {len(row)}")
    return row


class IrisTransformer(Model):
    def __init__(self, name: str, predictor_config: PredictorConfig) -> None:
        super().__init__(name, predictor_config)
        self.ready = True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        _V2_REQUEST.set(None)
        if isinstance(payload, InferRequest):
            _V2_REQUEST.set(payload.id or "")
            rows = payload.inputs[0].as_numpy().reshape(-1, FEATURES).tolist()
        elif isinstance(payload, dict) and isinstance(payload.get("instances"), list):
            rows = payload["instances"]
        else:
            raise InvalidInput("expected {\"instances\": [[4 numbers], ...]}")
        return {"instances": [_row(r) for r in rows]}

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> Any:
        request_id = _V2_REQUEST.get()
        if request_id is None or not isinstance(result, dict):
            return result
        predictions = list(result.get("predictions") or [])
        output = InferOutput(name="output-0", shape=[len(predictions)], datatype="INT64", data=predictions)
        return InferResponse(response_id=request_id, model_name=self.name, infer_outputs=[output])


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    config = PredictorConfig(predictor_host=args.predictor_host, predictor_protocol=args.predictor_protocol,
                             predictor_use_ssl=args.predictor_use_ssl,
                             predictor_request_timeout_seconds=args.predictor_request_timeout_seconds)
    ModelServer().start([IrisTransformer(args.model_name, config)])


if __name__ == "__main__":
    main()
