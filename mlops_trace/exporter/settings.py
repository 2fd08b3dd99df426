"""What the exporter watches and how often: one `ClusterTarget` per kubeconfig context (or the cluster it runs in),
the schedule, the listen address. Built from the CLI's flags; every bad value is a UsageError naming the flag."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlops_trace.collect.target import LiveTarget
from mlops_trace.doctor import ServiceLevel
from mlops_trace.errors import UsageError
from mlops_trace.exporter.probe import ProbeSettings
from mlops_trace.limits import DEFAULT_LIMITS, InputLimits

DEFAULT_ADDRESS = "127.0.0.1"  # the in-cluster manifests ask for 0.0.0.0
DEFAULT_PORT = 9807
DEFAULT_INTERVAL = 300.0
IN_CLUSTER_NAME = "in-cluster"


@dataclass(frozen=True)
class ClusterTarget:
    """One cluster to examine: the `cluster` label of its series and the live read of it."""

    name: str
    live: LiveTarget


@dataclass(frozen=True)
class ExporterSettings:
    clusters: tuple[ClusterTarget, ...]
    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT
    interval: float = DEFAULT_INTERVAL  # seconds from the start of one round to the start of the next
    run_timeout: float = 120.0  # one cluster's run (collection and checks) ends by then or counts as failed
    limits: InputLimits = DEFAULT_LIMITS
    service_level: ServiceLevel = field(default_factory=ServiceLevel)
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    once: bool = False  # one round, then exit (a smoke test of the configuration)
    parallel: int = 4  # clusters read at once within a round
    probe: ProbeSettings | None = None  # a synthetic request burst after each round (`--probe-experiment`)

    def __post_init__(self) -> None:
        if not self.clusters:
            raise UsageError("the exporter needs at least one cluster")
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise UsageError(f"two clusters carry the same name: {', '.join(sorted(names))}")
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise UsageError(f"--address must be an IP address such as 127.0.0.1 or 0.0.0.0 (got {self.address!r})")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535 (got {self.port})")
        if not self.interval > 0:
            raise UsageError(f"--interval must be a positive number of seconds (got {self.interval:g})")
        if not self.run_timeout > 0:
            raise UsageError(f"--timeout must be a positive number of seconds (got {self.run_timeout:g})")
        from mlops_trace.fleet import check_parallel

        check_parallel(self.parallel)
        if self.probe is not None and len(self.clusters) > 1:
            raise UsageError("--probe-experiment sends requests into one cluster: give one --context with it")


def cluster_targets(
    base: LiveTarget, contexts: Sequence[str], cluster_name: str | None, all_contexts: bool = False
) -> tuple[ClusterTarget, ...]:
    """One target per `--context` or, with `--all-contexts`, per context of the kubeconfig (labelled with the
    context's name); else the kubeconfig's current context, or the cluster the exporter runs in (labelled
    `--cluster-name`, default `in-cluster`). Each context keeps its own default namespace when neither -n nor -A is
    given, as kubectl would."""
    from mlops_trace.collect.target import with_default_namespace
    from mlops_trace.fleet import fleet_contexts

    if contexts or all_contexts:
        if not _kubeconfig_exists(base.kubeconfig):
            raise UsageError("--context needs a kubeconfig; none was found (--kubeconfig, $KUBECONFIG, ~/.kube/config)")
        if cluster_name is not None:
            raise UsageError("--cluster-name names the one cluster of a run without --context; with --context the "
                             "context names are the cluster labels")
        if len(set(contexts)) != len(contexts):
            raise UsageError("--context: each context once")
        contexts = fleet_contexts(base.kubeconfig, contexts, all_contexts)
        return tuple(
            ClusterTarget(context, with_default_namespace(replace(base, context=context))[0]) for context in contexts
        )
    name = cluster_name or _current_context_name(base.kubeconfig)
    return (ClusterTarget(name, with_default_namespace(base)[0]),)


def _kubeconfig_exists(kubeconfig: str | None) -> bool:
    """Whether the client would load a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) rather than the
    in-cluster configuration (`collect.client.connect` decides the same way)."""
    paths = [kubeconfig] if kubeconfig else [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return any(Path(p).expanduser().is_file() for p in paths or ["~/.kube/config"])


def _current_context_name(kubeconfig: str | None) -> str:
    """The kubeconfig's current context, or `in-cluster` inside a pod without a kubeconfig."""
    if not _kubeconfig_exists(kubeconfig):
        return IN_CLUSTER_NAME
    from typing import Any

    from kubernetes import config as kube_config
    from yaml import YAMLError

    config: Any = kube_config
    try:
        _, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, ValueError, KeyError, TypeError, YAMLError):
        return IN_CLUSTER_NAME if os.environ.get("KUBERNETES_SERVICE_HOST") else "default"
    name = current.get("name") if isinstance(current, dict) else None
    return str(name) if name else "default"
