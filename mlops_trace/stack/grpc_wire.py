"""Just enough of the Open Inference Protocol's gRPC messages (`inference.GRPCInferenceService`) to send a
ModelInfer call with grpcio's generic unary API and read the answer, without generated stubs or the protobuf package.

Field numbers are those of the public V2 protocol (ModelInferRequest: model_name 1, model_version 2, id 3, inputs 5;
InferInputTensor: name 1, datatype 2, shape 3 (packed), contents 5; InferTensorContents: fp32_contents 6 (packed),
int64_contents 3; ModelInferResponse: model_name 1, model_version 2, id 3, outputs 5).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
# What Seldon's agent calls to load a model into MLServer (scheduler/pkg/agent/modelserver_controlplane/oip/v2.go).
REPOSITORY_MODEL_LOAD = "/inference.GRPCInferenceService/RepositoryModelLoad"


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _length_delimited(number, text.encode()) if text else b""


def encode_infer_request(model_name: str, input_name: str, shape: Sequence[int], fp32: Sequence[float],
                         request_id: str = "") -> bytes:
    """A ModelInferRequest with one FP32 input tensor whose values go in `contents.fp32_contents`."""
    contents = _length_delimited(6, struct.pack(f"<{len(fp32)}f", *fp32))
    tensor = (
        _string(1, input_name)
        + _string(2, "FP32")
        + _length_delimited(3, b"".join(_varint(dim) for dim in shape))
        + _length_delimited(5, contents)
    )
    return _string(1, model_name) + _string(3, request_id) + _length_delimited(5, tensor)


def encode_repository_model_load(model_name: str) -> bytes:
    """A RepositoryModelLoadRequest (repository_name 1, model_name 2)."""
    return _string(2, model_name)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a message; fixed-width values are returned as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire_type, value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            yield number, wire_type, data[pos:pos + length]
            pos += length
        elif wire_type == 1:
            yield number, wire_type, data[pos:pos + 8]
            pos += 8
        elif wire_type == 5:
            yield number, wire_type, data[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    int64: tuple[int, ...] = ()
    fp32: tuple[float, ...] = ()


@dataclass(frozen=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str
    outputs: tuple[OutputTensor, ...] = field(default_factory=tuple)


def _packed_varints(data: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _read_varint(data, pos)
        values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return values


def _output(data: bytes) -> OutputTensor:
    name = datatype = ""
    shape: list[int] = []
    int64: list[int] = []
    fp32: list[float] = []
    for number, wire_type, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            name = value.decode()
        elif number == 2 and isinstance(value, bytes):
            datatype = value.decode()
        elif number == 3:
            shape += _packed_varints(value) if isinstance(value, bytes) else [int(value)]
        elif number == 5 and isinstance(value, bytes):
            for inner, _, content in _fields(value):
                if inner == 3:
                    int64 += _packed_varints(content) if isinstance(content, bytes) else [int(content)]
                elif inner == 6 and isinstance(content, bytes):
                    fp32 += list(struct.unpack(f"<{len(content) // 4}f", content))
    return OutputTensor(name, datatype, tuple(shape), tuple(int64), tuple(fp32))


def decode_infer_response(data: bytes) -> InferResponse:
    model_name = model_version = request_id = ""
    outputs: list[OutputTensor] = []
    for number, _, value in _fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            model_name = value.decode()
        elif number == 2:
            model_version = value.decode()
        elif number == 3:
            request_id = value.decode()
        elif number == 5:
            outputs.append(_output(value))
    return InferResponse(model_name, model_version, request_id, tuple(outputs))
