"""V2 (Open Inference Protocol) request bodies: read one from a file, make one from a model's metadata, encode it
once for REST, turn it into a gRPC `ModelInferRequest`, and read the model name back from an answer.

A generated payload fills each input with deterministic values in [0, 1) (a fixed linear congruential sequence), so
two runs send the same bytes; a variable dimension (-1) becomes 1.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_trace.analysis.routing import STICKY_HEADER
from mlops_trace.errors import InputError

if TYPE_CHECKING:
    from mlops_trace.grpc_v2 import open_inference_pb2

DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"}
)
MAX_GENERATED_ELEMENTS = 1_000_000
_MODEL_IN_BODY = re.compile(rb'"model_name"\s*:\s*"([^"]+)"')


def load_payload(path: Path) -> dict[str, Any]:
    """A V2 request body from a JSON file; InputError naming the file when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--data {path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--data {path}: not JSON ({exc})") from exc
    return validate_payload(document, f"--data {path}")


def validate_payload(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InputError(f"{where}: a V2 request is a JSON object with an `inputs` list")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError(f"{where}: a V2 request needs a non-empty `inputs` list")
    for index, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise InputError(f"{where}: inputs[{index}] is not an object")
        for key in ("name", "datatype", "shape", "data"):
            if key not in item:
                raise InputError(f"{where}: inputs[{index}] has no `{key}`")
    return document


def _pseudo_random(count: int, seed: int) -> Iterator[float]:
    state = seed & 0xFFFFFFFF
    for _ in range(count):
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        yield round(state / 4294967296.0, 4)


def _fill(datatype: str, count: int, seed: int) -> list[Any]:
    if datatype == "BOOL":
        return [value >= 0.5 for value in _pseudo_random(count, seed)]
    if datatype == "BYTES":
        return ["a"] * count
    if datatype.startswith(("INT", "UINT")):
        return [int(value * 10) for value in _pseudo_random(count, seed)]
    return list(_pseudo_random(count, seed))


def payload_from_metadata(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A request matching the inputs a V2 metadata answer (`GET /v2/models/<m>`) declares."""
    inputs = metadata.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError(f"{where}: the model's metadata declares no inputs; give a request body with --data FILE")
    built: list[dict[str, Any]] = []
    for index, item in enumerate(inputs):
        if not isinstance(item, Mapping):
            raise InputError(f"{where}: metadata inputs[{index}] is not an object")
        name = str(item.get("name") or f"input-{index}")
        datatype = str(item.get("datatype") or "FP32").upper()
        if datatype not in DATATYPES:
            raise InputError(f"{where}: input {name!r} has datatype {datatype!r}, not a V2 datatype")
        raw_shape = item.get("shape")
        if not isinstance(raw_shape, list) or not raw_shape:
            raise InputError(f"{where}: input {name!r} declares no shape; give a request body with --data FILE")
        shape = [int(dim) if isinstance(dim, int) and dim > 0 else 1 for dim in raw_shape]
        count = math.prod(shape)
        if count > MAX_GENERATED_ELEMENTS:
            raise InputError(f"{where}: input {name!r} has {count} elements; give a request body with --data FILE")
        built.append({"name": name, "datatype": datatype, "shape": shape, "data": _fill(datatype, count, index + 1)})
    return {"inputs": built}


def encode(payload: Mapping[str, Any]) -> bytes:
    """The REST body, encoded once per run (compact separators: fewer bytes on the wire)."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def served_model(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The `<model>_<version>` that answered: MLServer's `Ce-Modelid` header, the body's `model_name`, or the
    route header `:<m>_<v>:`."""
    for key in ("ce-modelid", "ce-endpoint"):
        if headers.get(key):
            return headers[key]
    match = _MODEL_IN_BODY.search(body[:4096])
    if match is not None:
        return match.group(1).decode("utf-8", "replace")
    route = headers.get(STICKY_HEADER)
    if route:
        names = [part for part in route.replace(" ", ":").split(":") if part]
        if names:
            return names[0]
    return None


def flatten(data: Any) -> list[Any]:
    """Row-major flattening of nested lists (V2 REST accepts nested or flat `data`)."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack: list[Iterator[Any]] = [iter(data)]
    while stack:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP16": "fp32_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def to_grpc_request(payload: Mapping[str, Any], model_name: str) -> open_inference_pb2.ModelInferRequest:
    """The gRPC `ModelInferRequest` of a REST-shaped payload."""
    from mlops_trace.grpc_v2 import open_inference_pb2

    request = open_inference_pb2.ModelInferRequest(model_name=model_name)
    for item in payload.get("inputs", []):
        datatype = str(item.get("datatype", "FP32")).upper()
        tensor = request.inputs.add(name=str(item.get("name")), datatype=datatype, shape=_shape(item.get("shape")))
        values = flatten(item.get("data"))
        field_name = _CONTENTS_FIELD.get(datatype, "fp32_contents")
        if field_name == "bytes_contents":
            values = [value.encode("utf-8") if isinstance(value, str) else bytes(value) for value in values]
        elif field_name == "bool_contents":
            values = [bool(value) for value in values]
        elif field_name in ("fp32_contents", "fp64_contents"):
            values = [float(value) for value in values]
        else:
            values = [int(value) for value in values]
        getattr(tensor.contents, field_name).extend(values)
    return request


def _shape(value: Any) -> list[int]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [int(dim) for dim in value]
    return []


def metadata_from_grpc(response: open_inference_pb2.ModelMetadataResponse) -> dict[str, Any]:
    """The REST-shaped metadata of a gRPC `ModelMetadataResponse`."""
    return {
        "name": response.name,
        "versions": list(response.versions),
        "platform": response.platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.outputs],
    }
