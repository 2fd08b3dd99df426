"""`request --isvc NAME` behind the CLI: from the flags (and the KServe reference stack's defaults when it is up and
the flags leave a gap) to a `KServeRun`. The flags are `request`'s own; `--isvc-protocol v1|v2` picks KServe's
inference API, `--protocol rest|grpc` the transport (gRPC is V2 only), `-n NS` the InferenceService's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_trace.errors import InputError, MlopsTraceError, UsageError
from mlops_trace.trace.kserve.runner import KServeRun
from mlops_trace.trace.kserve.target import APIS
from mlops_trace.trace.record import Protocol
from mlops_trace.trace.rest import TlsOptions
from mlops_trace.trace.sources import ClusterSource


@dataclass(frozen=True)
class KServeStack:
    """What `stack status --profile kserve` says, as far as `request --isvc` uses it."""

    gateway_url: str
    host: str | None
    isvc: str | None
    namespace: str | None
    bundle: Path | None
    example: Path | None
    metrics_url: str | None = None  # the predictor's /metrics


def kserve_stack_from(info: Mapping[str, Any]) -> KServeStack | None:
    if not info.get("running") or not info.get("gateway_url"):
        return None
    isvc = info.get("inferenceservice") if isinstance(info.get("inferenceservice"), Mapping) else {}
    entries = info.get("entry_points") if isinstance(info.get("entry_points"), Mapping) else {}
    assert isinstance(isvc, Mapping) and isinstance(entries, Mapping)
    return KServeStack(
        gateway_url=str(info["gateway_url"]),
        host=str(info["host"]) if info.get("host") else None,
        isvc=str(isvc["name"]) if isvc.get("name") else None,
        namespace=str(isvc["namespace"]) if isvc.get("namespace") else None,
        bundle=Path(str(info["bundle"])) if info.get("bundle") else None,
        example=Path(str(info["request_file"])) if info.get("request_file") else None,
        metrics_url=f"{str(entries['predictor']).rstrip('/')}/metrics" if entries.get("predictor") else None,
    )


def kserve_stack(state_dir: Path | None) -> KServeStack | None:
    """The running KServe reference stack, or None (not installed, not running, unreadable state)."""
    try:
        from mlops_trace.stack.kserve.status import status
    except ImportError:
        return None
    try:
        info = status(state_dir, refresh=False)
    except (MlopsTraceError, OSError, ValueError, KeyError):
        return None
    return kserve_stack_from(info)


def kserve_run(args: Any) -> KServeRun:
    """A KServeRun from `RequestArgs` (typed loosely to keep this module below `trace.command`)."""
    isvc: str = args.isvc
    if args.output not in ("table", "json"):
        raise UsageError(f"--output must be one of table, json (got {args.output!r})")
    if args.experiment is not None:
        raise UsageError("--isvc calls an InferenceService; --experiment is Seldon's")
    if args.until_decided:
        raise UsageError("--until-decided tests a Seldon Experiment's split; with --isvc use --count")
    if args.isvc_protocol is not None and args.isvc_protocol not in APIS:
        raise UsageError(f"--isvc-protocol must be v1 or v2 (got {args.isvc_protocol!r})")
    try:
        protocol = Protocol(args.protocol)
    except ValueError:
        raise UsageError(f"--protocol must be rest or grpc (got {args.protocol!r})") from None
    if args.count < 0 or args.concurrency < 1:
        raise UsageError("--count must be >= 1 and --concurrency >= 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be above 0 seconds")
    if args.bundle is not None and (args.kubeconfig or args.context):
        raise UsageError("--bundle reads an offline bundle; it does not go with --kubeconfig/--context")
    if args.cacert is not None and not args.cacert.is_file():
        raise InputError(f"--cacert {args.cacert}: no such file")
    if len(args.namespaces) > 1:
        raise UsageError("--isvc takes one namespace (-n NS)")
    namespace = args.namespaces[0] if args.namespaces else None
    stack = None if args.no_stack else kserve_stack(args.state_dir)
    url = args.url
    if url is None:
        if stack is None:
            raise UsageError(
                "give --url (the Istio ingress gateway's address), or start the KServe reference stack "
                "(`mlops-trace stack up --profile kserve`)"
            )
        url = stack.gateway_url
    elif stack is not None and urlsplit(url).netloc != urlsplit(stack.gateway_url).netloc:
        stack = None  # the stack is up, but this request goes elsewhere
    if stack is not None and stack.isvc != isvc:
        stack = None
    source = ClusterSource(
        bundle=args.bundle, kubeconfig=args.kubeconfig, context=args.context, namespaces=tuple(args.namespaces)
    )
    notes: list[str] = []
    if stack is not None:
        namespace = namespace or stack.namespace
        if not source.any and stack.bundle is not None:
            source = ClusterSource(bundle=stack.bundle)
    if args.as_is:
        notes.append("--as-is: the KServe path adds no routing header of its own; only the ids are added")
    return KServeRun(
        url=url,
        isvc=isvc,
        namespace=namespace,
        api=args.isvc_protocol,
        protocol=protocol,
        model=args.model,
        host=args.host,
        headers=tuple(args.headers),
        data=args.data,
        example=stack.example if stack is not None else None,
        http2=args.http2,
        timeout=args.timeout,
        tls=TlsOptions(insecure=args.insecure, cacert=args.cacert),
        count=args.count,
        concurrency=args.concurrency,
        rate=args.rate,
        split_alpha=args.split_alpha if args.split_alpha is not None else KServeRun.split_alpha,
        split_tolerance=args.split_tolerance,
        log_wait_s=args.log_wait,
        metrics_url=args.metrics_url or (stack.metrics_url if stack is not None else None),
        source=source,
        notes=tuple(notes),
    )
