"""The request body for an InferenceService: V1 `{"instances": …}` (or `{"inputs": …}`) as given, V2 from a file,
from the model's V2 metadata, or from V1 instances (one FP64 tensor `[rows, columns]`, which KServe's sklearn and
xgboost servers read as the V1 instances; kserve 0.21.0 `kserve/utils/utils.py` `get_predict_input`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError, UsageError
from mlops_trace.trace import payload


def _read(path: Path, flag: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{flag} {path}: not JSON ({exc})") from exc


def v1_body(data: Path | None, example: Path | None) -> dict[str, Any]:
    """A V1 body: `--data`, else the reference stack's example request."""
    source, flag = (data, "--data") if data is not None else (example, "the stack's request file")
    if source is None:
        raise UsageError('give --data FILE with a V1 body ({"instances": [[...]]}) for the V1 protocol')
    document = _read(source, flag)
    if not isinstance(document, dict) or not ("instances" in document or "inputs" in document):
        raise InputError(f'{flag} {source}: a V1 body is a JSON object with "instances" (or "inputs")')
    return document


def v2_from_instances(instances: Any, where: str) -> dict[str, Any]:
    """V1 instances (a list of equal-length rows of numbers) as one V2 FP64 input."""
    rows = instances if isinstance(instances, list) else []
    if not rows or not all(isinstance(row, list) and row and len(row) == len(rows[0]) for row in rows):
        raise InputError(f"{where}: instances are not rows of equal length; give --data with a V2 body")
    flat = [value for row in rows for value in row]
    if not all(isinstance(value, (int, float)) for value in flat):
        raise InputError(f"{where}: instances are not numbers; give --data with a V2 body")
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}]}


def v2_body(
    data: Path | None, metadata: dict[str, Any] | None, example: Path | None, notes: list[str]
) -> dict[str, Any]:
    """A V2 body: `--data`, else one made from the model's metadata, else from the stack's V1 example."""
    if data is not None:
        return payload.load_payload(data)
    if metadata is not None:
        try:
            return payload.payload_from_metadata(metadata, "model metadata")
        except InputError as exc:
            why = str(exc)
    else:
        why = "no model metadata"
    if example is not None:
        document = _read(example, "the stack's request file")
        if isinstance(document, dict) and "instances" in document:
            notes.append(f"V2 payload made from the reference stack's V1 example ({why})")
            return v2_from_instances(document["instances"], str(example))
    raise UsageError(f"give --data FILE with a V2 body ({why})")
