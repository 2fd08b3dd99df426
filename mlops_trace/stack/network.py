"""The cluster network as the stack's own control-plane processes see it: DNS by Service objects, Endpoints, and
NetworkPolicies judged by mlops_trace.analysis.netpol, over the objects the stack wrote.

A process of the stack (agent, controller, Envoy's xDS client) that dials `seldon-scheduler` gets what a pod would:
`no such host` when the namespace has no such Service, `connection refused` when the Service has no endpoints, an
`i/o timeout` when a policy drops the packets, or else the real 127.0.0.1 address of the scheduler process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from mlops_trace.analysis.netpol import endpoint_from_pod, evaluate
from mlops_trace.stack.kube_objects import HOST_PORTS_ANNOTATION

CLUSTER_DNS = "10.43.0.10:53"


class Outcome(StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"
    REFUSED = "refused"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Dial:
    """What dialling `target` from a pod gives: a host address to really connect to, or the error a pod would see."""

    source: str  # namespace/pod
    target: str  # host:port as the component dials it
    outcome: Outcome
    address: str | None  # 127.0.0.1:<port> when the outcome is ok
    error: str  # Go's net error text for the failures, empty when ok
    explanation: str
    resolved: str = ""  # the Service's cluster address (ip:port) the name resolved to, when it did

    def refused_error(self) -> str:
        """The error text when the resolved address really refuses the connection."""
        return f"dial tcp {self.resolved or self.target}: connect: connection refused"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dial:
        return cls(
            source=str(data["source"]),
            target=str(data["target"]),
            outcome=Outcome(str(data["outcome"])),
            address=str(data["address"]) if data.get("address") else None,
            error=str(data.get("error") or ""),
            explanation=str(data.get("explanation") or ""),
            resolved=str(data.get("resolved") or ""),
        )


def _find(objects: Sequence[Mapping[str, Any]], kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == kind and meta.get("namespace") == namespace and meta.get("name") == name:
            return obj
    return None


def _namespace_labels(objects: Sequence[Mapping[str, Any]], namespace: str) -> dict[str, str]:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Namespace" and meta.get("name") == namespace:
            return {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return {"kubernetes.io/metadata.name": namespace}


def dial(objects: Sequence[Mapping[str, Any]], source_ns: str, source_pod: str, host: str, port: int) -> Dial:
    """Resolve `host` (short or `svc.ns` name) as the pod `source_ns/source_pod` would, then judge the connection."""
    parts = host.split(".")
    svc_name, svc_ns = parts[0], parts[1] if len(parts) > 1 else source_ns
    target = f"{host}:{port}"
    source = f"{source_ns}/{source_pod}"
    service = _find(objects, "Service", svc_ns, svc_name)
    if service is None:
        return Dial(source, target, Outcome.NXDOMAIN, None,
                    f"dial tcp: lookup {host} on {CLUSTER_DNS}: no such host",
                    f"no Service {svc_name} in namespace {svc_ns}")
    cluster_ip = str((service.get("spec") or {}).get("clusterIP") or "")
    endpoints = _find(objects, "Endpoints", svc_ns, svc_name)
    pods = [
        str((address.get("targetRef") or {}).get("name"))
        for subset in (endpoints or {}).get("subsets") or []
        for address in subset.get("addresses") or []
    ]
    dst_pod = _find(objects, "Pod", svc_ns, pods[0]) if pods else None
    if dst_pod is None:
        return Dial(source, target, Outcome.REFUSED, None, f"dial tcp {cluster_ip}:{port}: connect: connection refused",
                    f"Service {svc_ns}/{svc_name} has no ready endpoints", f"{cluster_ip}:{port}")
    src_pod = _find(objects, "Pod", source_ns, source_pod)
    if src_pod is None:
        raise ValueError(f"no Pod {source} among the stack's objects")
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    verdict = evaluate(
        policies,
        endpoint_from_pod(src_pod, _namespace_labels(objects, source_ns)),
        endpoint_from_pod(dst_pod, _namespace_labels(objects, svc_ns)),
        port,
    )
    if not verdict.allowed:
        return Dial(source, target, Outcome.TIMEOUT, None, f"dial tcp {cluster_ip}:{port}: i/o timeout",
                    verdict.explanation, f"{cluster_ip}:{port}")
    host_ports = json.loads(((dst_pod.get("metadata") or {}).get("annotations") or {}).get(HOST_PORTS_ANNOTATION, "{}"))
    address = host_ports.get(str(port))
    if address is None:
        return Dial(source, target, Outcome.REFUSED, None, f"dial tcp {cluster_ip}:{port}: connect: connection refused",
                    f"nothing of the stack listens for {svc_ns}/{pods[0]}:{port}", f"{cluster_ip}:{port}")
    return Dial(source, target, Outcome.OK, str(address), "", verdict.explanation, f"{cluster_ip}:{port}")


def grpc_error(dial_result: Dial, error: str | None = None) -> str:
    """The error a Go gRPC client logs for a failed dial (`error`: the net error, default the dial's own)."""
    return (
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
        f'{error if error is not None else dial_result.error}"'
    )
