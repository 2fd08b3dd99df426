"""Seldon pipelines and the requests aimed at them: which pipeline a recorded request calls, and whether it hung.

Pure helpers shared by the pipeline checks (MT5xx) and the model-server checks that judge hung requests. A pipeline
is called as `/v2/pipelines/<p>/infer` (Envoy's Lua filter adds `seldon-model: <p>.pipeline`) or with that header on
any path; gRPC clients must send the header themselves (SELDON-FACTS.md §1.4).
"""

from __future__ import annotations

from mlops_trace.analysis.routing import PIPELINE_SUFFIX, SELDON_MODEL
from mlops_trace.snapshot.snapshot import RequestRecord

PIPELINES_PATH = "/v2/pipelines/"
MODELS_PATH = "/v2/models/"
# gRPC statuses a client reports when it gave up waiting: the deadline passed, or the call was cancelled by it.
_GRPC_TIMEOUTS = frozenset({"DEADLINE_EXCEEDED", "4"})
GATEWAY_TIMEOUT = 504


def pipeline_of_request(record: RequestRecord) -> str | None:
    """The pipeline a request calls: its `seldon-model: <p>.pipeline` header, else a `/v2/pipelines/<p>/` path."""
    header = record.headers.get(SELDON_MODEL, "").strip()
    if header:
        if not header.endswith(PIPELINE_SUFFIX):
            return None
        return header[: -len(PIPELINE_SUFFIX)] or None
    return _name_after(record.path, PIPELINES_PATH)


def model_of_request(record: RequestRecord) -> str | None:
    """The model a request calls by name: its `seldon-model` header when that names a model (not an experiment or a
    pipeline), else a `/v2/models/<m>/` path. A `<m>_<version>` name is returned as it is."""
    header = record.headers.get(SELDON_MODEL, "").strip()
    if header:
        return None if "." in header else header
    return _name_after(record.path, MODELS_PATH)


def request_timed_out(record: RequestRecord) -> bool:
    """Whether the request got no answer in time: a 504, a gRPC DEADLINE_EXCEEDED, or no status at all after the
    sender waited (`duration_ms` recorded, nothing came back)."""
    if record.status == GATEWAY_TIMEOUT:
        return True
    if (record.grpc_status or "").upper() in _GRPC_TIMEOUTS:
        return True
    return record.status is None and record.grpc_status is None and record.duration_ms is not None


def waited(record: RequestRecord) -> str:
    """`after 30000 ms` for evidence, or empty when the record does not say how long the sender waited."""
    return f" after {record.duration_ms:.0f} ms" if record.duration_ms is not None else ""


def answer_of(record: RequestRecord) -> str:
    """What came back, in a few words: `HTTP 504`, `gRPC DEADLINE_EXCEEDED`, or `no answer`."""
    if record.status is not None:
        return f"HTTP {record.status}"
    if record.grpc_status is not None:
        return f"gRPC {record.grpc_status}"
    return "no answer"


def _name_after(path: str, marker: str) -> str | None:
    if not path.startswith(marker):
        return None
    name = path[len(marker) :].split("/", 1)[0].split("?", 1)[0]
    return name or None
