"""Command-line options shared by `doctor`, `smoke` and `alerts`: where Prometheus is and how to log in, the query
window, and the service-level thresholds. Typer reads these `Annotated` aliases from the CLI module's signatures, so
every command spells the options, their environment variables and their help the same way.

Secrets can come from the environment (`MLOPS_TRACE_PROMETHEUS_TOKEN`, `..._PASSWORD`) so they stay out of shell
history and process listings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mlops_trace.errors import UsageError

if TYPE_CHECKING:
    from mlops_trace.prometheus.client import PrometheusConfig

PrometheusUrl = Annotated[
    Optional[str],
    typer.Option("--prometheus", envvar="MLOPS_TRACE_PROMETHEUS_URL",
                 help="Prometheus base URL: evaluates MT401-MT403 from its metrics."),
]
PrometheusToken = Annotated[
    Optional[str],
    typer.Option("--prometheus-token", envvar="MLOPS_TRACE_PROMETHEUS_TOKEN", show_default=False,
                 help="Bearer token for Prometheus (or $MLOPS_TRACE_PROMETHEUS_TOKEN)."),
]
PrometheusUser = Annotated[
    Optional[str], typer.Option("--prometheus-user", envvar="MLOPS_TRACE_PROMETHEUS_USER", help="Basic-auth user.")
]
PrometheusPassword = Annotated[
    Optional[str],
    typer.Option("--prometheus-password", envvar="MLOPS_TRACE_PROMETHEUS_PASSWORD", show_default=False,
                 help="Basic-auth password (or $MLOPS_TRACE_PROMETHEUS_PASSWORD)."),
]
PrometheusCacert = Annotated[
    Optional[Path], typer.Option("--prometheus-cacert", help="CA bundle to verify Prometheus' TLS certificate.")
]
PrometheusInsecure = Annotated[
    bool, typer.Option("--prometheus-insecure", help="Do not verify Prometheus' TLS certificate.")
]
Window = Annotated[str, typer.Option("--window", help="Prometheus window for rates and counts (e.g. 5m, 1h).")]
MaxP95 = Annotated[
    Optional[float], typer.Option("--max-p95", help="Latency objective: P95 in ms (MT401 default 50).")
]
MinSuccess = Annotated[
    Optional[float], typer.Option("--min-success", help="Success-rate objective, 0-1 (MT402 default 0.99).")
]
SplitAlpha = Annotated[
    Optional[float],
    typer.Option(
        "--split-alpha",
        help="MT403: p-value below which a split is not chance (0.01); smoke: also the sequential test's α.",
    ),
]


def prometheus_config(
    url: str | None,
    token: str | None,
    user: str | None,
    password: str | None,
    cacert: Path | None,
    insecure: bool,
    timeout: float = 10.0,
) -> PrometheusConfig | None:
    """The connection the flags describe, or None without `--prometheus` (UsageError on a bad combination)."""
    if not url:
        if token or user or password or cacert is not None or insecure:
            raise UsageError("the --prometheus-* options need --prometheus URL")
        return None
    from mlops_trace.prometheus.client import PrometheusConfig

    return PrometheusConfig(
        url=url,
        token=token or None,
        username=user or None,
        password=password or None,
        cacert=cacert,
        insecure=insecure,
        timeout=timeout,
    )
