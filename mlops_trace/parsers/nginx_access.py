"""ingress-nginx access log lines in the controller's default `upstreaminfo` format, one `NginxAccessRecord` each.

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
    $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
    $upstream_response_length $upstream_response_time $upstream_status $req_id

`-` means absent. The four upstream fields list one value per attempt: `, ` between retries within an upstream group,
` : ` between groups after an internal redirect; both are read as one flat list. The controller's own klog lines, its
nginx error-log lines (see `nginx_error`) and blank lines give None. A `kubectl logs --timestamps` prefix is removed
and gives the time when `$time_local` cannot be read; leading blanks (an indented paste), colour codes and a
`kubectl logs --prefix`, stern or kubetail source prefix are removed too (the source is in `source`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mlops_trace.parsers._common import (
    parse_nginx_time,
    split_http_request,
    split_kubectl_timestamp,
    split_source_prefix,
    strip_ansi,
    strip_line_end,
    tailer_prefix_splits,
    to_float,
    to_int,
)

__all__ = ["NginxAccessRecord", "iter_records", "parse_line"]


def _quoted(name: str) -> str:
    """A double-quoted field; nginx escapes quotes inside it as \\x22, the backslash case is only defensive."""
    return rf'"(?P<{name}>(?:[^"\\]|\\.)*)"'


_ACCESS_LINE = re.compile(
    r"(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]*)\] "
    + _quoted("request")
    + r" (?P<status>\d{3}) (?P<body_bytes_sent>\S+) "
    + _quoted("referer")
    + " "
    + _quoted("user_agent")
    + r" (?P<request_length>\S+) (?P<request_time>\S+) "
    + r"\[(?P<proxy_upstream_name>[^\]]*)\] \[(?P<proxy_alternative_upstream_name>[^\]]*)\]"
    r"(?: +(?P<tail>.*))?"
)


@dataclass(frozen=True)
class NginxAccessRecord:
    """One access log line; upstream tuples hold one entry per attempt, in order."""

    lineno: int
    raw: str
    remote_addr: str
    remote_user: str | None
    time: datetime | None
    method: str | None
    path: str | None
    protocol: str | None
    status: int
    body_bytes_sent: int | None
    referer: str | None
    user_agent: str | None
    request_length: int | None
    request_time: float | None
    proxy_upstream_name: str | None
    proxy_alternative_upstream_name: str | None
    upstream_addrs: tuple[str, ...]
    upstream_response_lengths: tuple[int | None, ...]
    upstream_response_times: tuple[float | None, ...]
    upstream_statuses: tuple[int | None, ...]
    request_id: str | None
    source: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def upstream_status(self) -> int | None:
        """The status of the last attempt, the one whose answer nginx passed on."""
        return self.upstream_statuses[-1] if self.upstream_statuses else None

    @property
    def upstream_response_time(self) -> float | None:
        """Seconds spent in upstreams over all attempts; None when no attempt reported a time."""
        times = [value for value in self.upstream_response_times if value is not None]
        # nginx prints millisecond resolution; rounding hides float noise such as 0.006000000000000001.
        return round(sum(times), 6) if times else None


def _dash_to_none(text: str) -> str | None:
    return None if text in ("-", "") else text


def _split_upstream_fields(tail: str) -> list[list[str]]:
    """Group the whitespace-separated tail into fields, joining `a, b` and `a : b` lists into one field each."""
    fields: list[list[str]] = []
    continues = False
    for token in tail.split():
        if token in (":", ","):
            continues = bool(fields)
            continue
        item = token.rstrip(",")
        if continues:
            fields[-1].append(item)
        else:
            fields.append([item])
        continues = token.endswith(",")
    return fields


def _values(field_items: list[str]) -> list[str]:
    """Items of one upstream field; a field that is only `-` has none."""
    return [] if field_items == ["-"] else field_items


def parse_line(lineno: int, line: str) -> NginxAccessRecord | None:
    """The record for an access line, None for anything else (controller klog lines, blank lines)."""
    raw = strip_line_end(line)
    source, body = split_source_prefix(raw.lstrip())
    prefix_time, body = split_kubectl_timestamp(body)
    if not source and body.startswith("[pod/"):
        source, body = split_source_prefix(body)
    body = strip_ansi(body).lstrip()
    match = _ACCESS_LINE.fullmatch(body)
    if match is None and not source:
        for tailer_source, rest in tailer_prefix_splits(body):
            rest_time, rest = split_kubectl_timestamp(rest)
            match = _ACCESS_LINE.fullmatch(rest)
            if match is not None:
                source = tailer_source
                prefix_time = rest_time if rest_time is not None else prefix_time
                break
    if match is None:
        return None
    method, path, protocol = split_http_request(match.group("request"))
    upstream = _split_upstream_fields(match.group("tail") or "")
    upstream += [[] for _ in range(5 - len(upstream))]
    addrs, lengths, times, statuses = (_values(items) for items in upstream[:4])
    request_id = _dash_to_none(upstream[4][0]) if upstream[4] else None
    when = parse_nginx_time(match.group("time_local"))
    return NginxAccessRecord(
        lineno=lineno,
        raw=raw,
        remote_addr=match.group("remote_addr"),
        remote_user=_dash_to_none(match.group("remote_user")),
        time=when if when is not None else prefix_time,
        method=method,
        path=path,
        protocol=protocol,
        status=int(match.group("status")),
        body_bytes_sent=to_int(match.group("body_bytes_sent")),
        referer=_dash_to_none(match.group("referer")),
        user_agent=_dash_to_none(match.group("user_agent")),
        request_length=to_int(match.group("request_length")),
        request_time=to_float(match.group("request_time")),
        proxy_upstream_name=_dash_to_none(match.group("proxy_upstream_name")),
        proxy_alternative_upstream_name=_dash_to_none(match.group("proxy_alternative_upstream_name")),
        upstream_addrs=tuple(addrs),
        upstream_response_lengths=tuple(to_int(item) for item in lengths),
        upstream_response_times=tuple(to_float(item) for item in times),
        upstream_statuses=tuple(to_int(item) for item in statuses),
        request_id=request_id,
        source=source,
    )


def iter_records(lines: Iterable[tuple[int, str]]) -> Iterator[NginxAccessRecord]:
    """Access records for `(lineno, line)` pairs, lazily; lines that are not access lines are skipped."""
    for lineno, line in lines:
        record = parse_line(lineno, line)
        if record is not None:
            yield record
