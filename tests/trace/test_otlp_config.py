"""The OTLP exporter's configuration as opentelemetry-specification lays it out (protocol/exporter.md): endpoint
rules, signal-specific variables over general ones, the flag over both, headers, timeout, compression, resource,
and the sampling rule (trace/sdk.md ProbabilitySampler: 56 random bits against a threshold)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_trace.errors import UsageError
from mlops_trace.trace.otlp.config import Compression, OtlpProtocol, display_url, resolve
from mlops_trace.trace.otlp.sampling import parse_ratio, ratio_from_sampler_env, sampled, threshold
from mlops_trace.trace.otlp.transport import scrub

BASE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SIGNAL = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


@pytest.mark.parametrize(
    ("flag", "env", "url"),
    [
        ("http://c:4318", {}, "http://c:4318/v1/traces"),
        ("http://c:4318/v1/traces/", {}, "http://c:4318/v1/traces"),
        (None, {BASE: "http://collector:4318"}, "http://collector:4318/v1/traces"),
        (None, {BASE: "http://collector:4318/mycollector/"}, "http://collector:4318/mycollector/v1/traces"),
        (None, {BASE: "http://collector:4318/mycollector"}, "http://collector:4318/mycollector/v1/traces"),
        (None, {SIGNAL: "http://collector:4318"}, "http://collector:4318/"),  # as-is, root path when none
        (None, {SIGNAL: "https://c.example.com/v1/traces/"}, "https://c.example.com/v1/traces/"),
        (None, {BASE: "http://base:4318", SIGNAL: "http://signal:4318/x"}, "http://signal:4318/x"),
        ("http://flag:4318", {BASE: "http://base:4318", SIGNAL: "http://signal:4318/x"}, "http://flag:4318/v1/traces"),
    ],
)
def test_endpoint_rules(flag: str | None, env: dict[str, str], url: str) -> None:
    config = resolve(flag, None, env).config
    assert config is not None and config.url == url


def test_export_is_off_without_an_endpoint_or_when_the_environment_turns_it_off() -> None:
    assert resolve(None, None, {}).config is None
    assert resolve(None, None, {BASE: "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}).config is None
    assert resolve(None, None, {BASE: "http://c:4318", "OTEL_SDK_DISABLED": "true"}).config is None
    assert resolve(None, None, {BASE: "http://c:4318", "OTEL_TRACES_EXPORTER": "console,otlp"}).config is not None
    assert resolve("http://c:4318", None, {"OTEL_TRACES_EXPORTER": "none"}).config is not None  # the flag asks


def test_headers_are_percent_decoded_and_signal_specific_replaces_general() -> None:
    env = {
        BASE: "http://c:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=general",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "Authorization=Basic%20dXNlcjpwYXNz , x-scope=a%3Db%2Cc,,",
    }
    config = resolve(None, None, env).config
    assert config is not None
    assert config.headers == (("authorization", "Basic dXNlcjpwYXNz"), ("x-scope", "a=b,c"))
    assert config.secrets == ("Basic dXNlcjpwYXNz", "a=b,c")


@pytest.mark.parametrize("value", ["novalue", "=v", "k=v;prop=1", "bad key=v"])
def test_a_malformed_header_list_is_ignored_with_a_warning_that_never_shows_values(value: str) -> None:
    resolved = resolve(None, None, {BASE: "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": f"ok=s3cr3tvalue,{value}"})
    assert resolved.config is not None and resolved.config.headers == ()
    (warning,) = resolved.warnings
    assert warning.startswith("OTEL_EXPORTER_OTLP_HEADERS") and "s3cr3tvalue" not in warning


def test_timeout_compression_protocol_and_batch_size() -> None:
    env = {
        BASE: "http://c:4318",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "GZIP",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
    }
    resolved = resolve(None, None, env)
    config = resolved.config
    assert config is not None and resolved.warnings == ()
    assert config.timeout_s == 2.5 and config.compression is Compression.GZIP
    assert config.protocol is OtlpProtocol.HTTP_JSON and config.batch_spans == 64
    zero = resolve(None, None, {BASE: "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "0"}).config
    assert zero is not None and zero.timeout_s > 1_000_000  # 0 is no limit


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
    ],
)
def test_invalid_environment_values_are_ignored_with_one_warning(variable: str, value: str) -> None:
    resolved = resolve(None, None, {BASE: "http://c:4318", variable: value})
    assert resolved.config is not None
    assert resolved.config.timeout_s == 10.0 and resolved.config.compression is Compression.NONE
    assert resolved.config.protocol is OtlpProtocol.HTTP_PROTOBUF and resolved.config.batch_spans == 512
    (warning,) = resolved.warnings
    assert warning.startswith(f"{variable}={value!r}")


def test_resource_from_the_environment() -> None:
    config = resolve(
        None,
        None,
        {BASE: "http://c:4318", "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,k8s.namespace.name=ml%20serving"},
    ).config
    assert config is not None and dict(config.resource)["service.name"] == "a"
    assert dict(config.resource)["k8s.namespace.name"] == "ml serving"
    named = resolve(
        None, None, {BASE: "http://c:4318", "OTEL_SERVICE_NAME": "b", "OTEL_RESOURCE_ATTRIBUTES": "service.name=a"}
    )
    assert named.config is not None and dict(named.config.resource)["service.name"] == "b"
    default = resolve("http://c:4318", None, {}).config
    assert default is not None and dict(default.resource)["service.name"] == "mlops-trace"


def test_tls_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until export\n")
    config = resolve(None, None, {BASE: "https://c:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca)}).config
    assert config is not None and config.certificate == ca
    missing = resolve(None, None, {BASE: "https://c:4318", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/nope/ca.pem"})
    assert missing.config is None and missing.warnings == (
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=/nope/ca.pem: no such file; OTLP export is off",
    )


def test_bad_flags_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--otlp-sample '1.5'"):
        resolve("http://c:4318", "1.5", {})
    with pytest.raises(UsageError, match="give --otlp URL"):
        resolve(None, "0.5", {})
    with pytest.raises(UsageError, match="--otlp c:4318: expected an http"):
        resolve("c:4318", None, {})
    with pytest.raises(UsageError, match="--otlp c: expected the collector's gRPC address"):
        resolve("c", None, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})


@pytest.mark.parametrize(
    ("flag", "env", "target", "secure"),
    [
        (None, {BASE: "http://collector:4317"}, "collector:4317", False),  # no /v1/traces for gRPC
        (None, {BASE: "https://collector"}, "collector:443", True),
        (None, {SIGNAL: "collector:4317"}, "collector:4317", True),
        (None, {SIGNAL: "collector:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, "collector:4317", False),
        ("http://flag:4317", {BASE: "https://base:4317"}, "flag:4317", False),
    ],
)
def test_grpc_addresses(flag: str | None, env: dict[str, str], target: str, secure: bool) -> None:
    from mlops_trace.trace.otlp.grpc_transport import channel_target

    config = resolve(flag, None, {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).config
    assert config is not None and config.protocol is OtlpProtocol.GRPC
    assert channel_target(config) == (target, secure)


def test_urls_print_without_credentials() -> None:
    assert display_url("https://user:pw@c.example.com:4318/v1/traces?token=x") == "https://c.example.com:4318/v1/traces"
    masked = scrub("401 for authorization Bearer abcdefgh12345678 and key tenant-key-99", ("tenant-key-99",))
    assert "abcdefgh12345678" not in masked and "tenant-key-99" not in masked


def test_sampling_ratio_forms_and_threshold() -> None:
    assert parse_ratio("0.25") == 0.25 and parse_ratio("1/10") == 0.1 and parse_ratio("0") == 0.0
    assert parse_ratio("2") is None and parse_ratio("1/0") is None and parse_ratio("half") is None
    assert threshold(1.0) == 0 and threshold(0.0) == 2**56
    low_randomness = "f" * 18 + "00000000000001"  # the 56 rightmost bits are 1
    high_randomness = "0" * 18 + "ffffffffffffff"
    assert sampled(low_randomness, threshold(1.0)) and not sampled(low_randomness, threshold(0.5))
    assert sampled(high_randomness, threshold(0.01)) and not sampled(high_randomness, threshold(0.0))


def test_a_smaller_ratio_keeps_a_subset_of_a_larger_one() -> None:
    import os

    ids = [os.urandom(16).hex() for _ in range(4000)]
    tenth = {trace_id for trace_id in ids if sampled(trace_id, threshold(0.1))}
    half = {trace_id for trace_id in ids if sampled(trace_id, threshold(0.5))}
    assert tenth <= half
    assert 300 <= len(tenth) <= 500 and 1800 <= len(half) <= 2200


def test_sampler_environment() -> None:
    assert ratio_from_sampler_env({}) == (1.0, None)
    assert ratio_from_sampler_env({"OTEL_TRACES_SAMPLER": "always_off"}) == (0.0, None)
    assert ratio_from_sampler_env(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.2"}
    ) == (0.2, None)
    ratio, warning = ratio_from_sampler_env({"OTEL_TRACES_SAMPLER": "jaeger_remote"})
    assert ratio == 1.0 and warning is not None and "jaeger_remote" in warning
    flag = resolve("http://c:4318", "0.5", {"OTEL_TRACES_SAMPLER": "always_off"}).config
    assert flag is not None and flag.sample_ratio == 0.5
