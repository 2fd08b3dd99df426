"""From a run's exchanges to the catalog's findings: each exchange becomes a request record in the Snapshot, and the
check catalog runs on it exactly as `doctor` runs on a bundle with `requests/`, so `request` and `doctor` name the
same causes with the same checks. A failure is linked to the findings whose evidence cites its request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_trace.analysis.catalog import load_catalog
from mlops_trace.analysis.engine import run_checks
from mlops_trace.findings import Report
from mlops_trace.parsers.envoy_config import EnvoyConfig
from mlops_trace.snapshot.snapshot import EnvoySource, RequestRecord, Snapshot
from mlops_trace.trace.accesslogs import Found
from mlops_trace.trace.record import Exchange, Failure, Protocol
from mlops_trace.trace.target import REQUEST_ID_HEADER, Target

GRPC_INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
_BODY_CHARS = 2000  # as much of an answer as a recorded request keeps (the bundle reader keeps as much)


def record_display(exchange: Exchange) -> str:
    """How a recorded exchange is named in evidence: `request <x-request-id>`."""
    return f"request {exchange.request_id}"


def record_of(
    exchange: Exchange,
    target: Target,
    sent: Mapping[str, str],
    namespace: str | None,
    envoy_line: Found | None = None,
) -> RequestRecord:
    """The request record of one exchange. `sent` are the request's headers besides its ids (one mapping shared by
    every record of a run)."""
    grpc = target.protocol is Protocol.GRPC
    flags = envoy_line.envoy.response_flags if envoy_line is not None and envoy_line.envoy is not None else ()
    return RequestRecord(
        display=record_display(exchange),
        method="POST",
        path=GRPC_INFER_PATH if grpc else target.infer_path,
        authority=target.authority,
        headers=sent,
        protocol="grpc" if grpc else "rest",
        status=None if grpc else exchange.status,
        response_headers=exchange.headers,
        body=exchange.body[:_BODY_CHARS].decode("utf-8", "replace") if exchange.body else "",
        grpc_status=exchange.grpc_status,
        namespace=namespace,
        envoy_flags=tuple(flags),
        request_id=exchange.request_id,
        grpc_message=exchange.grpc_message,
        duration_ms=exchange.total_ms,
    )


def sent_headers(target: Target) -> dict[str, str]:
    """What every request of a run carries that a check may judge (the ids are left out: they differ per request)."""
    headers = target.header_map()
    headers.pop(REQUEST_ID_HEADER, None)
    return headers


def with_fresh_envoy(
    snap: Snapshot, config: EnvoyConfig | None, where: str | None, namespace: str | None
) -> Snapshot:
    """`snap` with the config_dump the run read from Envoy's admin endpoint in place of the namespace's older ones, so
    the path and the checks judge the same routes."""
    if config is None or where is None or namespace is None:
        return snap
    fresh = EnvoySource(
        namespace=namespace, pod=where, config=config, config_display=where, stats=None, stats_display=None
    )
    kept = [env for env in snap.envoys if env.namespace != namespace or env.config is None]
    return dataclasses.replace(snap, envoys=[*kept, fresh])


def diagnose(snap: Snapshot | None, records: Sequence[RequestRecord], options: Mapping[str, Any], source: str) -> Report:
    """Run the catalog on `snap` with this run's request records in place of any the input held (a bundle's old
    `requests/` are another run's)."""
    base = snap if snap is not None else Snapshot(source=source)
    judged = dataclasses.replace(base, requests=list(records))
    return run_checks(judged, load_catalog(), options)


def explained(failure: Failure | None, report: Report, display: str) -> Failure | None:
    """`failure` with the ids of the findings that cite its request."""
    if failure is None:
        return None
    ids = tuple(
        dict.fromkeys(
            finding.id for finding in report.findings if any(item.where == display for item in finding.evidence)
        )
    )
    return dataclasses.replace(failure, checks=ids)
