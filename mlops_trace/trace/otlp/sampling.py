"""Which traced requests are exported: a ratio decided by the trace id alone, so the same request is kept or
dropped whoever decides (our exporter, an SDK downstream, a tail sampler reading the same ids).

The rule is OpenTelemetry's consistent probability sampling (opentelemetry-specification trace/sdk.md,
`ProbabilitySampler`, the successor of `TraceIdRatioBased`): the randomness R is the trace id's 56 rightmost bits, the
threshold T is (1 - ratio) * 2^56, and a trace is kept when R >= T. Our trace ids are random in all 128 bits, so a
ratio keeps that share of the requests, and a smaller ratio keeps a subset of what a larger one keeps.

`--otlp-sample` takes `0.1` or `1/10`; without it, `OTEL_TRACES_SAMPLER` `always_on`/`always_off`/`traceidratio`/
`parentbased_*` with `OTEL_TRACES_SAMPLER_ARG` gives the ratio (our requests are roots: parent-based is the same).
"""

from __future__ import annotations

from collections.abc import Mapping

RANDOMNESS_BITS = 56
_RANDOMNESS_MASK = (1 << RANDOMNESS_BITS) - 1


def parse_ratio(text: str) -> float | None:
    """`0.25`, `1`, `0`, `1/4` → the ratio; None when it is not a number between 0 and 1."""
    value = text.strip()
    try:
        if "/" in value:
            numerator, denominator = (float(part) for part in value.split("/", 1))
            ratio = numerator / denominator
        else:
            ratio = float(value)
    except (ValueError, ZeroDivisionError):
        return None
    return ratio if 0.0 <= ratio <= 1.0 else None


def threshold(ratio: float) -> int:
    """The rejection threshold T of a ratio: R >= T keeps the trace (T = 0 keeps all, 2^56 none)."""
    return round((1.0 - ratio) * (1 << RANDOMNESS_BITS))


def sampled(trace_id: str, rejection_threshold: int) -> bool:
    """Whether the trace with this 32-hex-digit id is kept at this threshold."""
    return (int(trace_id, 16) & _RANDOMNESS_MASK) >= rejection_threshold


def ratio_from_sampler_env(environ: Mapping[str, str]) -> tuple[float, str | None]:
    """The ratio `OTEL_TRACES_SAMPLER` and its argument describe (1.0 when unset), and a warning when ignored."""
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler in ("", "always_on", "parentbased_always_on"):
        return 1.0, None
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0, None
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        argument = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        if not argument:
            return 1.0, None
        ratio = parse_ratio(argument)
        if ratio is None:
            return 1.0, f"OTEL_TRACES_SAMPLER_ARG={argument!r} is not a ratio between 0 and 1; exporting every request"
        return ratio, None
    return 1.0, f"OTEL_TRACES_SAMPLER={sampler!r} is not a sampler mlops-trace applies; exporting every request"
