"""Istio's Envoy access log (an istio-proxy sidecar's, the ingress gateway's), line by line: the default TEXT format
Istio configures, and its JSON encoding (meshConfig `accessLogEncoding: JSON`).

The text format is istio/istio `pilot/pkg/model/telemetry_logging.go` `EnvoyTextLogFormat` (at 01358b3, the 1.31
line; `%UPSTREAM_CLUSTER_RAW%` since 1.24, `%UPSTREAM_CLUSTER%` before, in the same place):

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
    %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED%
    %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%
    %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%

and the JSON one is `EnvoyJSONLogFormatIstio` there: the same operators under snake_case keys. The fields every
Envoy access log has (code, flags, details, durations, request id, authority, upstream host and cluster, route) are
read by `parsers.envoy_access`, which Seldon's Envoy uses too; this module adds what only Istio's format carries (the
termination details, the transport failure reason, the local and remote addresses, the SNI), the meaning of the
response flags, and Istio's cluster names (`outbound|80||knative-local-gateway.istio-system.svc.cluster.local`).
Lines that are not access log entries (Envoy's and istio-agent's own logs) give None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mlops_trace.parsers import envoy_access
from mlops_trace.parsers._common import split_kubectl_timestamp, strip_line_end
from mlops_trace.parsers.envoy_access import EnvoyAccessRecord

__all__ = [
    "RESPONSE_FLAGS",
    "IstioAccessRecord",
    "IstioCluster",
    "LogEncoding",
    "iter_records",
    "parse_cluster",
    "parse_line",
]

# envoyproxy/envoy source/common/stream_info/utility.h (at 02c062b) `ResponseFlagUtils`: each short flag and its long
# name, as `%RESPONSE_FLAGS%` and `%RESPONSE_FLAGS_LONG%` print them.
RESPONSE_FLAGS: Mapping[str, str] = {
    "LH": "FailedLocalHealthCheck",
    "UH": "NoHealthyUpstream",
    "UT": "UpstreamRequestTimeout",
    "LR": "LocalReset",
    "UR": "UpstreamRemoteReset",
    "UF": "UpstreamConnectionFailure",
    "UC": "UpstreamConnectionTermination",
    "UO": "UpstreamOverflow",
    "NR": "NoRouteFound",
    "DI": "DelayInjected",
    "FI": "FaultInjected",
    "RL": "RateLimited",
    "UAEX": "UnauthorizedExternalService",
    "RLSE": "RateLimitServiceError",
    "DC": "DownstreamConnectionTermination",
    "URX": "UpstreamRetryLimitExceeded",
    "SI": "StreamIdleTimeout",
    "IH": "InvalidEnvoyRequestHeaders",
    "DPE": "DownstreamProtocolError",
    "UMSDR": "UpstreamMaxStreamDurationReached",
    "RFCF": "ResponseFromCacheFilter",
    "NFCF": "NoFilterConfigFound",
    "DT": "DurationTimeout",
    "UPE": "UpstreamProtocolError",
    "NC": "NoClusterFound",
    "OM": "OverloadManagerTerminated",
    "DF": "DnsResolutionFailed",
    "DO": "DropOverload",
}

# `%RESPONSE_CODE_DETAILS%` of an answer the upstream sent (envoy/stream_info/stream_info.h `ResponseCodeDetails`).
VIA_UPSTREAM = "via_upstream"


class LogEncoding(StrEnum):
    TEXT = "text"  # Istio's EnvoyTextLogFormat, all of its fields
    JSON = "json"  # EnvoyJSONLogFormatIstio (or any JSON access log envoy_access reads)
    ENVOY = "envoy"  # another Envoy text format: only the fields every Envoy access log has


@dataclass(frozen=True)
class IstioCluster:
    """An Istio cluster name `<direction>|<port>|<subset>|<host>` (istio/istio pilot/pkg/model/service.go
    `BuildSubsetKey`): `outbound|80||knative-local-gateway.istio-system.svc.cluster.local`."""

    direction: str  # outbound, inbound
    port: int | None
    subset: str
    host: str


@dataclass(frozen=True)
class IstioAccessRecord:
    """One access log entry of an Istio proxy: the common Envoy fields (`access`) and Istio's own. `-` is None."""

    access: EnvoyAccessRecord
    encoding: LogEncoding
    connection_termination_details: str | None = None
    upstream_transport_failure_reason: str | None = None
    upstream_local_address: str | None = None
    downstream_local_address: str | None = None
    downstream_remote_address: str | None = None
    requested_server_name: str | None = None

    @property
    def lineno(self) -> int:
        return self.access.lineno

    @property
    def time(self) -> datetime | None:
        return self.access.time

    @property
    def status(self) -> int | None:
        return self.access.status

    @property
    def response_flags(self) -> tuple[str, ...]:
        return self.access.response_flags

    @property
    def response_code_details(self) -> str | None:
        return self.access.response_code_details

    @property
    def duration_ms(self) -> float | None:
        return self.access.duration_ms

    @property
    def upstream_service_time_ms(self) -> float | None:
        return self.access.upstream_service_time_ms

    @property
    def request_id(self) -> str | None:
        return self.access.request_id

    @property
    def authority(self) -> str | None:
        return self.access.authority

    @property
    def upstream_host(self) -> str | None:
        return self.access.upstream_host

    @property
    def upstream_cluster(self) -> IstioCluster | None:
        return parse_cluster(self.access.upstream_cluster)

    @property
    def route_name(self) -> str | None:
        return self.access.route_name

    def has_flag(self, flag: str) -> bool:
        return flag in self.access.response_flags

    @property
    def flag_names(self) -> tuple[str, ...]:
        """The long names of the response flags (`NoRouteFound`); an unknown (custom) flag keeps its short form."""
        return tuple(RESPONSE_FLAGS.get(flag, flag) for flag in self.access.response_flags)

    @property
    def answered_by_proxy(self) -> bool:
        """Whether the proxy answered itself rather than relaying an upstream's answer: a response flag, or details
        other than `via_upstream`, or no upstream host at all. A 404 with `NR` is the proxy's (empty body); a 404
        `via_upstream` is the model server's."""
        details = self.access.response_code_details
        if details is not None:
            return details != VIA_UPSTREAM
        return bool(self.access.response_flags) or self.access.upstream_host is None


_QUOTED = r'"([^"]*)"'
_FIELD = r"(\S+)"
# From the end of the request field to the first quoted field after %RESPONSE_CODE%: code, flags, details,
# termination details, "transport failure reason", bytes in, bytes out, duration, upstream service time.
_MIDDLE = re.compile(
    rf'" (?:\d+|-) \S+ {_FIELD} {_FIELD} {_QUOTED} (?:\d+|-) (?:\d+|-) (?:\d+|-) (?:\d+|-) "'
)
# From "%UPSTREAM_HOST%" to the end: cluster, upstream local, downstream local, downstream remote, SNI, route.
_TAIL = re.compile(rf' {_QUOTED} {_FIELD} {_FIELD} {_FIELD} {_FIELD} {_FIELD} {_FIELD}\s*$')
_JSON_EXTRAS = (
    "connection_termination_details",
    "upstream_transport_failure_reason",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
)


def _value(text: str | None) -> str | None:
    return None if text is None or text in ("-", "") else text


def parse_cluster(name: str | None) -> IstioCluster | None:
    """Istio's cluster name split into its parts; None for another name (`BlackHoleCluster`, `PassthroughCluster`,
    an `inbound|8080||` without host is kept, host empty)."""
    if not name:
        return None
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound"):
        return None
    port = int(parts[1]) if parts[1].isdecimal() else None
    return IstioCluster(direction=parts[0], port=port, subset=parts[2], host=parts[3])


def _text_extras(body: str) -> dict[str, str | None] | None:
    middle = _MIDDLE.search(body)
    tail = _TAIL.search(body)
    if middle is None or tail is None or tail.start() < middle.end():
        return None
    _details, termination, transport = middle.groups()
    _host, _cluster, upstream_local, downstream_local, downstream_remote, sni, _route = tail.groups()
    return {
        "connection_termination_details": _value(termination),
        "upstream_transport_failure_reason": _value(transport),
        "upstream_local_address": _value(upstream_local),
        "downstream_local_address": _value(downstream_local),
        "downstream_remote_address": _value(downstream_remote),
        "requested_server_name": _value(sni),
    }


def _json_extras(body: str) -> dict[str, str | None]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    found: dict[str, str | None] = {}
    for key in _JSON_EXTRAS:
        value = document.get(key)
        found[key] = _value(str(value)) if isinstance(value, str | int | float) else None
    return found


def parse_line(lineno: int, line: str) -> IstioAccessRecord | None:
    """The record for one access log line (a `kubectl logs --timestamps` prefix allowed), None for anything else.
    Never raises."""
    access = envoy_access.parse_line(lineno, line)
    if access is None:
        return None
    _, body = split_kubectl_timestamp(strip_line_end(line))
    body = body.strip()
    if body.startswith("{"):
        return IstioAccessRecord(access, LogEncoding.JSON, **_json_extras(body))
    extras = _text_extras(body)
    if extras is None:
        return IstioAccessRecord(access, LogEncoding.ENVOY)
    return IstioAccessRecord(access, LogEncoding.TEXT, **extras)


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[IstioAccessRecord]:
    """Records for `(lineno, line)` pairs (e.g. `LogSource.lines()`), lazily: one line at a time, whatever the log's
    size; other lines are skipped."""
    for lineno, line in lines:
        record = parse_line(lineno, line)
        if record is not None:
            yield record
