"""MT112 component-version-skew: Envoy rejects (or never receives) the xDS config its scheduler sends, and the Seldon
components of the namespace run different releases (or an unpinned `latest`), the usual reason they disagree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import make_check
from mlops_trace.analysis.controller_scope import controller_scope
from mlops_trace.analysis.images import ImageRef, parse_image, seldon_component
from mlops_trace.analysis.seldon import controller_workloads, pod_running
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT112",
    slug="component-version-skew",
    title="Envoy rejects the scheduler's xDS config; Seldon components run different releases",
    severity=Severity.CRITICAL,
    requires=("envoy:stats|envoy:access",),
    reads=("kube:Deployment", "kube:Pod", "kube:StatefulSet"),
    playbook="component-versions",
    fix="Run every Seldon component of one release (same image tag for scheduler, envoy, agent, rclone, gateways, "
    "dataflow engine and controller, never `latest`), then restart Envoy so it fetches the config again.",
)

# Envoy's warning when it refuses an xDS update. GrpcSubscriptionImpl::onConfigUpdateFailed logs `gRPC config for
# <type> rejected: <why>` for every transport; the delta (Seldon's DELTA_GRPC/ADS) and state-of-the-world muxes log
# `delta config …` / `gRPC state-of-the-world config …` first, older Envoys `incremental config …`.
_REJECTED = re.compile(
    r"(?:grpc state-of-the-world|grpc|delta|incremental) config for (type\.googleapis\.com/\S+) rejected:.*",
    re.IGNORECASE,
)
# Envoy's subscription stats (`update_rejected`) for LDS, CDS and each RDS route config, and the ADS stream's gauge.
_REJECT_STAT = re.compile(r"^(?:listener_manager\.lds|cluster_manager\.cds|http\.[^ ]+\.rds\.[^ ]+)\.update_rejected$")
_CONNECTED = "control_plane.connected_state"
# Evidence names Envoy, the scheduler that feeds it and the controller that feeds the scheduler before the rest.
_XDS_ORDER = {"envoy": 0, "scheduler": 1, "controller": 2, "agent": 3}


@dataclass(frozen=True)
class _Seen:
    component: str
    image: ImageRef
    where: str


def run(snap: Snapshot) -> Iterator[Finding]:
    namespaces = sorted({log.namespace for log in snap.logs_of(Role.ENVOY)} | {e.namespace for e in snap.envoys})
    for namespace in namespaces:
        rejected, disconnected, envoy_pod = _envoy_trouble(snap, namespace)
        if not rejected and not disconnected:
            continue
        seen = _component_images(snap, namespace)
        versions: dict[str, list[_Seen]] = {}
        for item in seen:
            if item.image.version is not None:
                versions.setdefault(item.image.version, []).append(item)
        unpinned = [item for item in seen if item.image.unpinned]
        skewed = len(versions) > 1 or bool(unpinned)
        if not rejected and not skewed:
            continue  # a lost xDS stream alone is the scheduler's reachability (MT105/MT103), not a version matter
        yield _finding(namespace, envoy_pod, rejected, disconnected, versions, unpinned, seen)


def _finding(
    namespace: str,
    envoy_pod: str,
    rejected: list[Evidence],
    disconnected: list[Evidence],
    versions: dict[str, list[_Seen]],
    unpinned: list[_Seen],
    seen: list[_Seen],
) -> Finding:
    trouble = "rejects the xDS config the scheduler sends" if rejected else "is not connected to its xDS server"
    message = f"Envoy {envoy_pod} in {namespace} {trouble}"
    if len(versions) > 1 or unpinned:
        groups = [f"{', '.join(_components(items))} at {version}" for version, items in sorted(versions.items())]
        groups += [f"{item.component} on unpinned {item.image.text}" for item in unpinned]
        message += (
            ", and the Seldon components it depends on run different releases (" + "; ".join(groups) + "): Envoy, "
            "its scheduler and the rest of the control plane only agree on the xDS resources within one release."
        )
    elif versions:
        version = next(iter(versions))
        message += (
            f"; the Seldon components collected all run {version} ({', '.join(_components(seen))}), so look for a "
            "custom Envoy image or bootstrap rather than a release mismatch."
        )
    else:
        message += "; no Seldon component images were collected for this namespace to compare releases."
    evidence = rejected[:3] + disconnected[:2]
    for version, items in sorted(versions.items()):
        for item in _first_per_component(items)[:3]:
            evidence.append(Evidence(item.where, f"{item.component}: {item.image.text} ({version})"))
    for item in unpinned[:3]:
        evidence.append(Evidence(item.where, f"{item.component}: {item.image.text} (unpinned)"))
    return CHECK.finding(namespace=namespace, object=f"Pod/{envoy_pod}", message=message, evidence=evidence)


def _components(items: list[_Seen]) -> list[str]:
    return list(dict.fromkeys(item.component for item in items))


def _first_per_component(items: list[_Seen]) -> list[_Seen]:
    """One sighting per component, the ones xDS involves first."""
    firsts: dict[str, _Seen] = {}
    for item in items:
        firsts.setdefault(item.component, item)
    return sorted(firsts.values(), key=lambda item: _XDS_ORDER.get(item.component, len(_XDS_ORDER)))


# --- Envoy -----------------------------------------------------------------------------------------------------------


def _envoy_trouble(snap: Snapshot, namespace: str) -> tuple[list[Evidence], list[Evidence], str]:
    """(rejection evidence, disconnection evidence, the first Envoy pod with either) of a namespace."""
    rejected: list[Evidence] = []
    disconnected: list[Evidence] = []
    pods: list[str] = []
    for log in snap.logs_of(Role.ENVOY, namespace):
        last: tuple[int, str] | None = None
        for lineno, line in log.lines_mentioning(["rejected"]):
            match = _REJECTED.search(line)
            if match is not None:
                last = (lineno, match.group(0))
        if last is not None:
            rejected.append(Evidence(log.where(last[0]), evidence_line(last[1])))
            pods.append(log.pod)
    for envoy in snap.envoys:
        if envoy.namespace != namespace or envoy.stats is None:
            continue
        stats, display = envoy.stats, envoy.stats_display or f"envoy/{namespace}/{envoy.pod}/stats.txt"
        for name, value in sorted(stats.counters.items()):
            if value > 0 and _REJECT_STAT.match(name):
                rejected.append(Evidence(f"{display} {name}", f"{name}: {value}"))
                pods.append(envoy.pod)
        if stats.counters.get(_CONNECTED) == 0:
            disconnected.append(Evidence(f"{display} {_CONNECTED}", f"{_CONNECTED}: 0"))
            pods.append(envoy.pod)
    return rejected, disconnected, (pods[0] if pods else "")


# --- images ----------------------------------------------------------------------------------------------------------


def _component_images(snap: Snapshot, namespace: str) -> list[_Seen]:
    """Seldon component images that serve the namespace: its workloads and running Pods, and the controllers that
    watch it (wherever they run)."""
    seen: list[_Seen] = []
    for kind in ("Deployment", "StatefulSet"):
        for workload in snap.objects_of(kind, namespace):
            seen.extend(_images_of(workload, ".spec.template.spec", _template(workload)))
    for pod in snap.objects_of("Pod", namespace):
        if pod_running(pod):
            seen.extend(_images_of(pod, ".spec", pod.spec))
    for controller in controller_workloads(snap):
        if controller.namespace != namespace and controller_scope(controller).watches(namespace):
            seen.extend(_images_of(controller, ".spec.template.spec", _template(controller)))
    return seen


def _template(workload: KubeObject) -> dict[str, object]:
    return dict(as_mapping(as_mapping(workload.spec.get("template")).get("spec")))


def _images_of(obj: KubeObject, prefix: str, pod_spec: object) -> Iterator[_Seen]:
    spec = as_mapping(pod_spec)
    for key in ("containers", "initContainers"):
        for index, item in enumerate(as_list(spec.get(key))):
            text = as_mapping(item).get("image")
            image = parse_image(text) if isinstance(text, str) else None
            component = seldon_component(image) if image is not None else None
            if image is not None and component is not None:
                yield _Seen(component, image, obj.field_where(f"{prefix}.{key}[{index}].image"))
