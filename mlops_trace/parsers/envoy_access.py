"""Envoy access log lines, text or JSON, one `EnvoyAccessRecord` each.

Text lines follow Envoy's default format and the variants people derive from it:

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
    %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
    "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

Seldon's scheduler writes `%GRPC_STATUS_NUMBER%` between the code and the flags; Istio-style formats put
`%RESPONSE_CODE_DETAILS%` and more after the flags and extra fields at the end. So the four numeric fields followed by
a quoted one anchor the line, and the tokens between the code and them are told apart by shape (flags are short
upper-case codes, gRPC statuses are numbers or code names). JSON lines are read by common key names, whatever case or
`-`/`_` spelling the operator chose; keys that are not standard access-log fields are kept as headers.

Envoy's own application log lines (`[2025-07-12 18:30:09.123][1][info][main] …`) and blank lines give None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_trace.parsers._common import (
    parse_epoch,
    parse_timestamp,
    split_kubectl_timestamp,
    stringify,
    strip_line_end,
    to_float,
    to_int,
)

__all__ = ["EnvoyAccessRecord", "iter_records", "parse_line"]


@dataclass(frozen=True)
class EnvoyAccessRecord:
    """One access log entry. Durations are milliseconds; `-` fields are None.

    `headers` holds the header values the line carried: for JSON lines every key that is not a standard access-log
    field (lower-case, `_` read as `-`); for text lines x-request-id, user-agent, x-forwarded-for and
    x-envoy-upstream-service-time when present.
    """

    lineno: int
    raw: str
    time: datetime | None
    method: str | None
    path: str | None
    protocol: str | None
    status: int | None
    response_flags: tuple[str, ...]
    duration_ms: float | None
    upstream_service_time_ms: float | None
    request_id: str | None
    authority: str | None
    upstream_host: str | None
    upstream_cluster: str | None
    route_name: str | None
    grpc_status: str | None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    response_code_details: str | None = None
    bytes_received: int | None = None
    bytes_sent: int | None = None
    forwarded_for: str | None = None
    user_agent: str | None = None
    extra_fields: tuple[str, ...] = ()  # text-format values after %UPSTREAM_HOST% that we could not name


_TEXT_START = re.compile(r"\[([^\]]+)\] \"")
_FLAG_CODE = re.compile(r"[A-Z]{2,5}")
_GRPC_CODE_NAMES = frozenset(
    name.replace("_", "").lower()
    for name in (
        "OK",
        "CANCELLED",
        "CANCELED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    )
)
# Istio's text format ends with these six fields after %UPSTREAM_HOST%.
_ISTIO_EXTRA_COUNT = 6

_JSON_KEYS: dict[str, tuple[str, ...]] = {
    "time": ("start_time", "timestamp", "time", "@timestamp"),
    "method": ("method", "request_method", "req_method"),
    "path": ("x_envoy_original_path", "path", "request_path", "req_path"),
    "protocol": ("protocol",),
    "status": ("response_code", "status", "status_code", "code"),
    "response_flags": ("response_flags", "flags"),
    "response_code_details": ("response_code_details",),
    "duration": ("duration", "duration_ms", "request_duration"),
    "upstream_service_time": (
        "upstream_service_time",
        "x_envoy_upstream_service_time",
        "resp_x_envoy_upstream_service_time",
    ),
    "request_id": ("x_request_id", "request_id", "req_x_request_id"),
    "authority": ("authority", "host", "req_authority"),
    "upstream_host": ("upstream_host",),
    "upstream_cluster": ("upstream_cluster", "upstream_cluster_raw"),
    "route_name": ("route_name", "route"),
    "grpc_status": ("grpc_status", "grpc_status_number", "grpc_status_code"),
    "bytes_received": ("bytes_received",),
    "bytes_sent": ("bytes_sent",),
    "forwarded_for": ("x_forwarded_for",),
    "user_agent": ("user_agent",),
}
# Normalised JSON keys that name access-log fields rather than headers; everything else is kept as a header.
_NOT_HEADERS = frozenset(
    {key for keys in _JSON_KEYS.values() for key in keys}
    - {"x_envoy_upstream_service_time", "x_request_id", "x_forwarded_for", "user_agent", "x_envoy_original_path"}
) | frozenset(
    {
        "connection_termination_details",
        "upstream_transport_failure_reason",
        "downstream_transport_failure_reason",
        "upstream_local_address",
        "downstream_local_address",
        "downstream_remote_address",
        "downstream_remote_port",
        "upstream_remote_port",
        "requested_server_name",
        "upstream_request_attempt_count",
        "connection_id",
        "stream_id",
        "trace_id",
        "access_log_type",
    }
)


def _none_if_dash(value: str | None) -> str | None:
    return None if value is None or value in ("-", "") else value


def _is_flags(token: str) -> bool:
    return token != "OK" and all(_FLAG_CODE.fullmatch(part) for part in token.split(","))


def _is_grpc_status(token: str) -> bool:
    if token.isdecimal():
        return int(token) <= 16
    return token.replace("_", "").lower() in _GRPC_CODE_NAMES


def _flags(text: str | None) -> tuple[str, ...]:
    if text is None or text in ("-", ""):
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _closes_value(text: str, index: int, paired: bool) -> bool:
    if text[index] != '"' or not (index + 1 == len(text) or text[index + 1] == " "):
        return False
    return not paired or text.count('"', index + 1) % 2 == 0


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(value, was_quoted) tokens.

    Envoy does not escape quotes inside values such as user agents, so a quote closes a value only when a space or the
    line end follows it and the quotes left on the line pair up (when the line has an odd number of quotes, the
    pairing cannot hold and the first quote before a space closes).
    """
    paired = text.count('"') % 2 == 0
    tokens: list[tuple[str, bool]] = []
    index = 0
    length = len(text)
    while index < length:
        if text[index] == " ":
            index += 1
            continue
        if text[index] == '"':
            end = index + 1
            while end < length and not _closes_value(text, end, paired):
                end += 1
            tokens.append((text[index + 1 : end], True))
            index = end + 1
        else:
            end = text.find(" ", index)
            end = length if end < 0 else end
            tokens.append((text[index:end], False))
            index = end
    return tokens


def _numeric_window(tokens: list[tuple[str, bool]], start: int) -> int | None:
    """Index of %BYTES_RECEIVED%: three bare integers, then a bare integer or `-`, then a quoted field or the end."""
    for index in range(start, len(tokens) - 3):
        window = tokens[index : index + 4]
        if any(quoted for _, quoted in window):
            continue
        if not all(value.isdecimal() for value, _ in window[:3]):
            continue
        if not (window[3][0].isdecimal() or window[3][0] == "-"):
            continue
        if index + 4 == len(tokens) or tokens[index + 4][1]:
            return index
    return None


def _parse_text(lineno: int, raw: str, body: str, prefix_time: datetime | None) -> EnvoyAccessRecord | None:
    start = _TEXT_START.match(body)
    if start is None:
        return None
    tokens = _tokens(body[start.end() - 1 :])
    if len(tokens) < 2 or not tokens[0][1] or tokens[1][1]:
        return None
    status_text = tokens[1][0]
    if not (status_text.isdecimal() or status_text == "-"):
        return None
    request = tokens[0][0].split(" ")
    method, path, protocol = (_none_if_dash(part) for part in request) if len(request) == 3 else (None, None, None)

    window = _numeric_window(tokens, 3)
    middle = tokens[2:window] if window is not None else tokens[2:]
    bare = [value for value, quoted in middle if not quoted]
    flag_index = next((i for i, value in enumerate(bare) if value != "-" and _is_flags(value)), None)
    grpc_candidates = bare[:flag_index] if flag_index is not None else bare
    grpc_status = next((value for value in grpc_candidates if _is_grpc_status(value)), None)
    details = next(
        (
            value
            for index, value in enumerate(bare)
            if index != flag_index and value != "-" and not _is_grpc_status(value) and not _is_flags(value)
        ),
        None,
    )

    numbers: list[str] = []
    quoted_values: list[str | None] = []
    extras: list[str] = []
    if window is not None:
        numbers = [value for value, _ in tokens[window : window + 4]]
        rest = tokens[window + 4 :]
        while rest and rest[0][1] and len(quoted_values) < 5:
            quoted_values.append(_none_if_dash(rest.pop(0)[0]))
        extras = [value for value, _ in rest]
    quoted_values += [None] * (5 - len(quoted_values))
    forwarded_for, user_agent, request_id, authority, upstream_host = quoted_values
    upstream_cluster = route_name = None
    if len(extras) == _ISTIO_EXTRA_COUNT:
        upstream_cluster, route_name = _none_if_dash(extras[0]), _none_if_dash(extras[5])

    headers = {
        name: value
        for name, value in (
            ("x-forwarded-for", forwarded_for),
            ("user-agent", user_agent),
            ("x-request-id", request_id),
        )
        if value is not None
    }
    upstream_service_time = to_float(numbers[3]) if numbers else None
    if numbers and numbers[3] != "-":
        headers["x-envoy-upstream-service-time"] = numbers[3]
    time = parse_timestamp(start.group(1))
    return EnvoyAccessRecord(
        lineno=lineno,
        raw=raw,
        time=time if time is not None else prefix_time,
        method=method,
        path=path,
        protocol=protocol,
        status=to_int(status_text),
        response_flags=_flags(bare[flag_index]) if flag_index is not None else (),
        duration_ms=to_float(numbers[2]) if numbers else None,
        upstream_service_time_ms=upstream_service_time,
        request_id=request_id,
        authority=authority,
        upstream_host=upstream_host,
        upstream_cluster=upstream_cluster,
        route_name=route_name,
        grpc_status=_none_if_dash(grpc_status),
        headers=headers,
        response_code_details=_none_if_dash(details),
        bytes_received=to_int(numbers[0]) if numbers else None,
        bytes_sent=to_int(numbers[1]) if numbers else None,
        forwarded_for=forwarded_for,
        user_agent=user_agent,
        extra_fields=tuple(extras) if len(extras) != _ISTIO_EXTRA_COUNT else (),
    )


def _normalise_key(key: str) -> str:
    return key.strip().lstrip(":").lower().replace("-", "_")


def _parse_json(lineno: int, raw: str, body: str, prefix_time: datetime | None) -> EnvoyAccessRecord | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    values: dict[str, str] = {}
    headers: dict[str, str] = {}
    original: dict[str, Any] = document
    for key, value in original.items():
        if value is None or not isinstance(key, str):
            continue
        text = stringify(value)
        if text in ("-", ""):
            continue
        normalised = _normalise_key(key)
        values.setdefault(normalised, text)
        if normalised not in _NOT_HEADERS:
            headers.setdefault(normalised.replace("_", "-"), text)

    def pick(name: str) -> str | None:
        return next((values[key] for key in _JSON_KEYS[name] if key in values), None)

    if not any(pick(name) is not None for name in ("status", "method", "path", "response_flags")):
        return None
    request_id = pick("request_id")
    if request_id is not None:
        headers.setdefault("x-request-id", request_id)
    time_text = pick("time")
    time = None
    if time_text is not None:
        time = parse_timestamp(time_text)
        if time is None:
            time = parse_epoch(time_text)
    return EnvoyAccessRecord(
        lineno=lineno,
        raw=raw,
        time=time if time is not None else prefix_time,
        method=pick("method"),
        path=pick("path"),
        protocol=pick("protocol"),
        status=to_int(pick("status")),
        response_flags=_flags(pick("response_flags")),
        duration_ms=to_float(pick("duration")),
        upstream_service_time_ms=to_float(pick("upstream_service_time")),
        request_id=request_id,
        authority=pick("authority"),
        upstream_host=pick("upstream_host"),
        upstream_cluster=pick("upstream_cluster"),
        route_name=pick("route_name"),
        grpc_status=pick("grpc_status"),
        headers=headers,
        response_code_details=pick("response_code_details"),
        bytes_received=to_int(pick("bytes_received")),
        bytes_sent=to_int(pick("bytes_sent")),
        forwarded_for=pick("forwarded_for"),
        user_agent=pick("user_agent"),
    )


def parse_line(lineno: int, line: str) -> EnvoyAccessRecord | None:
    """The record for an access log line, None for anything else. Never raises."""
    raw = strip_line_end(line)
    prefix_time, body = split_kubectl_timestamp(raw)
    body = body.strip()
    if body.startswith("{"):
        return _parse_json(lineno, raw, body, prefix_time)
    if body.startswith("["):
        return _parse_text(lineno, raw, body, prefix_time)
    return None


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[EnvoyAccessRecord]:
    """Access records for `(lineno, line)` pairs, lazily; other lines are skipped."""
    for lineno, line in lines:
        record = parse_line(lineno, line)
        if record is not None:
            yield record
