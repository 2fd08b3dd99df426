"""Where and how to export spans: the `--otlp`/`--otlp-sample` flags over the OpenTelemetry exporter environment.

The environment is read as opentelemetry-specification (protocol/exporter.md, configuration/common.md, resource/sdk.md)
lays it out: every `OTEL_EXPORTER_OTLP_X` has a `OTEL_EXPORTER_OTLP_TRACES_X` that replaces it, and a flag beats both.

- Endpoint: `--otlp URL` (`/v1/traces` appended unless the URL ends with it); else
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as it is (`/` when it has no path); else `OTEL_EXPORTER_OTLP_ENDPOINT`
  as a base URL with `v1/traces` appended. Export is on with `--otlp`, or when one of the two endpoint variables is
  set and `OTEL_TRACES_EXPORTER` (when set) names `otlp` and `OTEL_SDK_DISABLED` is not `true`.
- Headers: `k=v,k2=v2` (W3C baggage list, percent-decoded, no `;` properties). Their values are secrets: no message
  names them.
- Compression `gzip`|`none`; timeout in milliseconds (0: none); protocol `http/protobuf` (default), `http/json` or
  `grpc`; `CERTIFICATE` (CA file that verifies the collector; verification is never turned off), `CLIENT_CERTIFICATE`
  and `CLIENT_KEY` (mTLS). With `grpc` the endpoint is the collector's gRPC address, used as it is (`http://` plaintext,
  `https://` TLS, `host:port` TLS unless `OTEL_EXPORTER_OTLP_INSECURE=true`).
- Resource: `OTEL_RESOURCE_ATTRIBUTES` (`k=v,…`, percent-decoded), `OTEL_SERVICE_NAME` over its `service.name`.
- Sampling: `--otlp-sample`, else `OTEL_TRACES_SAMPLER`(`_ARG`) (see `sampling`). Batch size:
  `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans per request (512).

A bad environment value is ignored with a warning, as the specification asks (the request runs and exports with
the default); a bad flag is a UsageError (exit 2).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from mlops_trace import __version__
from mlops_trace.errors import UsageError
from mlops_trace.trace.otlp.sampling import parse_ratio, ratio_from_sampler_env

PREFIX = "OTEL_EXPORTER_OTLP_"
TRACES_PREFIX = "OTEL_EXPORTER_OTLP_TRACES_"
DEFAULT_SERVICE_NAME = "mlops-trace"
DEFAULT_TIMEOUT_S = 10.0
NO_LIMIT_TIMEOUT_S = 2**31 / 1000.0  # the specification's "no limit" (timeout 0) as a very long time
DEFAULT_BATCH_SPANS = 512
E = TypeVar("E", bound=StrEnum)
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class OtlpProtocol(StrEnum):
    HTTP_PROTOBUF = "http/protobuf"
    HTTP_JSON = "http/json"
    GRPC = "grpc"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"


@dataclass(frozen=True)
class OtlpConfig:
    """A resolved exporter: `url` is the full OTLP/HTTP traces URL the batches are posted to, or the gRPC address."""

    url: str
    endpoint_from: str  # "--otlp" or the variable that gave the URL
    protocol: OtlpProtocol = OtlpProtocol.HTTP_PROTOBUF
    headers: tuple[tuple[str, str], ...] = ()
    compression: Compression = Compression.NONE
    timeout_s: float = DEFAULT_TIMEOUT_S
    certificate: Path | None = None
    client_certificate: Path | None = None
    client_key: Path | None = None
    resource: tuple[tuple[str, str], ...] = (("service.name", DEFAULT_SERVICE_NAME),)
    sample_ratio: float = 1.0
    batch_spans: int = DEFAULT_BATCH_SPANS
    insecure: bool = False  # gRPC to a `host:port` without a scheme: plaintext

    @property
    def display_url(self) -> str:
        """The URL without user info, query or fragment: safe to print."""
        return display_url(self.url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The header values, to scrub from anything printed."""
        return tuple(value for _, value in self.headers if value)


@dataclass(frozen=True)
class Resolved:
    config: OtlpConfig | None  # None: export is off
    warnings: tuple[str, ...] = field(default_factory=tuple)


def display_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) if parts.scheme else url.split("@")[-1]


def flag_traces_url(endpoint: str) -> str:
    """`--otlp http://collector:4318` → `http://collector:4318/v1/traces` (a full `/v1/traces` URL is kept)."""
    trimmed = endpoint.rstrip("/")
    return trimmed if trimmed.endswith("/v1/traces") else f"{trimmed}/v1/traces"


def base_traces_url(base: str) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` → its traces URL: `v1/traces` relative to the base, with one slash between."""
    return (base if base.endswith("/") else base + "/") + "v1/traces"


def signal_traces_url(url: str) -> str:
    """`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as it is, but an empty path is the root path."""
    parts = urlsplit(url)
    return url if parts.path else urlunsplit((parts.scheme, parts.netloc, "/", parts.query, parts.fragment))


def _valid_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def parse_key_values(value: str, variable: str) -> tuple[list[tuple[str, str]], str | None]:
    """A W3C-baggage-style `k=v,k2=v2` list, percent-decoded. (pairs, None) or ([], why) — the why names the entry by
    position, never its value."""
    pairs: list[tuple[str, str]] = []
    for position, member in enumerate(value.split(","), start=1):
        member = member.strip()
        if not member:
            continue
        key, sep, item = member.partition("=")
        key = unquote(key.strip())
        if not sep or not key:
            return [], f"{variable}: entry {position} is not key=value; the variable is ignored"
        if ";" in item:
            return [], f"{variable}: entry {position} has ';' properties, which OTLP does not take; ignored"
        pairs.append((key, unquote(item.strip())))
    return pairs, None


def _pick(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(variable, value) of the traces variable, else of the general one; None when neither is set (or empty)."""
    for variable in (TRACES_PREFIX + name, PREFIX + name):
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _valid_grpc_target(target: str) -> bool:
    if "://" in target:
        return _valid_http_url(target)
    host, sep, port = target.rpartition(":")
    return bool(sep and host and port.isdigit())


def _endpoint(flag: str | None, environ: Mapping[str, str], grpc: bool) -> tuple[str, str] | None:
    if flag:
        if grpc:
            if not _valid_grpc_target(flag):
                raise UsageError(
                    f"--otlp {display_url(flag)}: expected the collector's gRPC address (http://host:4317)"
                )
            return flag, "--otlp"
        if not _valid_http_url(flag):
            raise UsageError(f"--otlp {display_url(flag)}: expected an http:// or https:// URL of a collector")
        return flag_traces_url(flag), "--otlp"
    signal = environ.get(TRACES_PREFIX + "ENDPOINT", "").strip()
    if signal:
        return (signal if grpc else signal_traces_url(signal)), TRACES_PREFIX + "ENDPOINT"
    base = environ.get(PREFIX + "ENDPOINT", "").strip()
    if base:
        return (base if grpc else base_traces_url(base)), PREFIX + "ENDPOINT"
    return None


def _enabled_by_env(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return not exporters or "otlp" in {name.strip() for name in exporters.split(",")}


def _timeout(environ: Mapping[str, str], warnings: list[str]) -> float:
    picked = _pick(environ, "TIMEOUT")
    if picked is None:
        return DEFAULT_TIMEOUT_S
    variable, value = picked
    try:
        millis = int(value)
    except ValueError:
        millis = -1
    if millis < 0:
        warnings.append(f"{variable}={value!r} is not a timeout in milliseconds; using {DEFAULT_TIMEOUT_S:g} s")
        return DEFAULT_TIMEOUT_S
    return NO_LIMIT_TIMEOUT_S if millis == 0 else millis / 1000.0


def _choice(environ: Mapping[str, str], name: str, kind: type[E], default: E, warnings: list[str]) -> E:
    picked = _pick(environ, name)
    if picked is None:
        return default
    variable, value = picked
    try:
        return kind(value.lower())
    except ValueError:
        known = ", ".join(member.value for member in kind)
        warnings.append(f"{variable}={value!r} is not one of {known}; using {default.value}")
        return default


def _file(environ: Mapping[str, str], name: str) -> tuple[str, Path] | None:
    picked = _pick(environ, name)
    return (picked[0], Path(picked[1]).expanduser()) if picked is not None else None


def _headers(environ: Mapping[str, str], warnings: list[str]) -> tuple[tuple[str, str], ...]:
    picked = _pick(environ, "HEADERS")
    if picked is None:
        return ()
    variable, value = picked
    pairs, why = parse_key_values(value, variable)
    if why is not None:
        warnings.append(why)
        return ()
    for key, _ in pairs:
        if not set(key) <= _TOKEN_CHARS:
            warnings.append(f"{variable}: {key!r} is not an HTTP header name; the variable is ignored")
            return ()
    return tuple((key.lower(), item) for key, item in pairs)


def _resource(environ: Mapping[str, str], warnings: list[str]) -> tuple[tuple[str, str], ...]:
    attributes: dict[str, str] = {}
    raw = environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip()
    if raw:
        pairs, why = parse_key_values(raw, "OTEL_RESOURCE_ATTRIBUTES")
        if why is not None:
            warnings.append(why)
        attributes.update(pairs)
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        attributes["service.name"] = service
    attributes.setdefault("service.name", DEFAULT_SERVICE_NAME)
    attributes.setdefault("service.version", __version__)
    return tuple(attributes.items())


def _batch_spans(environ: Mapping[str, str], warnings: list[str]) -> int:
    value = environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip()
    if not value:
        return DEFAULT_BATCH_SPANS
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        warnings.append(f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={value!r} is not a positive integer; using 512")
        return DEFAULT_BATCH_SPANS
    return size


def _sample_ratio(flag: str | None, environ: Mapping[str, str], warnings: list[str]) -> float:
    if flag is not None:
        ratio = parse_ratio(flag)
        if ratio is None:
            raise UsageError(f"--otlp-sample {flag!r}: expected a ratio between 0 and 1 (0.1) or 1/N (1/10)")
        return ratio
    ratio, why = ratio_from_sampler_env(environ)
    if why:
        warnings.append(why)
    return ratio


def resolve(flag_url: str | None, flag_sample: str | None, environ: Mapping[str, str] | None = None) -> Resolved:
    """The exporter the flags and the environment describe, or none; warnings name ignored variables."""
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    protocol = _choice(env, "PROTOCOL", OtlpProtocol, OtlpProtocol.HTTP_PROTOBUF, warnings)
    if not flag_url and not _enabled_by_env(env):
        if flag_sample is not None:
            raise UsageError("--otlp-sample limits the OTLP export: give --otlp URL (or OTEL_EXPORTER_OTLP_ENDPOINT)")
        return Resolved(None)
    grpc = protocol is OtlpProtocol.GRPC
    endpoint = _endpoint(flag_url, env, grpc)
    if endpoint is None:
        if flag_sample is not None:
            raise UsageError("--otlp-sample limits the OTLP export: give --otlp URL (or OTEL_EXPORTER_OTLP_ENDPOINT)")
        return Resolved(None)
    url, where = endpoint
    if not (_valid_grpc_target(url) if grpc else _valid_http_url(url)):
        expected = "a gRPC address (http://host:4317 or host:4317)" if grpc else "an http:// or https:// URL"
        warnings.append(f"{where}={display_url(url)!r} is not {expected}; OTLP export is off")
        return Resolved(None, tuple(warnings))
    config = OtlpConfig(
        url=url,
        endpoint_from=where,
        protocol=protocol,
        headers=_headers(env, warnings),
        compression=_choice(env, "COMPRESSION", Compression, Compression.NONE, warnings),
        timeout_s=_timeout(env, warnings),
        resource=_resource(env, warnings),
        sample_ratio=_sample_ratio(flag_sample, env, warnings),
        batch_spans=_batch_spans(env, warnings),
        insecure=(_pick(env, "INSECURE") or ("", ""))[1].lower() == "true",
    )
    files: dict[str, Path] = {}
    for name in ("CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"):
        picked = _file(env, name)
        if picked is None:
            continue
        variable, path = picked
        if not path.is_file():
            # Exporting without the CA the user named would either fail or trust the wrong roots: export nothing.
            warnings.append(f"{variable}={path}: no such file; OTLP export is off")
            return Resolved(None, tuple(warnings))
        files[name] = path
    if ("CLIENT_CERTIFICATE" in files) != ("CLIENT_KEY" in files):
        warnings.append(f"{PREFIX}CLIENT_CERTIFICATE and {PREFIX}CLIENT_KEY go together; mTLS is off")
        files.pop("CLIENT_CERTIFICATE", None)
        files.pop("CLIENT_KEY", None)
    config = dataclasses.replace(
        config,
        certificate=files.get("CERTIFICATE"),
        client_certificate=files.get("CLIENT_CERTIFICATE"),
        client_key=files.get("CLIENT_KEY"),
    )
    return Resolved(config, tuple(warnings))
