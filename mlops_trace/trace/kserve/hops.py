"""The hops of a KServe request, as data: which hops a path has depends on the deployment mode and on whether the
InferenceService has a transformer, so each path lists its hops and numbers them in order.

Knative (Serverless): client → LoadBalancer → Istio ingress gateway (Gateway + KServe's VirtualService) →
Knative route (the local gateway and net-istio's VirtualService, which picks the revision) → activator (when on the
path) → queue-proxy → [transformer → predictor] → kserve-container → model. Standard (RawDeployment): client →
LoadBalancer → Ingress / HTTPRoute → Service → [transformer → predictor] → predictor pod → model.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class Hop(StrEnum):
    """A hop's key; its value is the name the hop table prints (at most 18 characters)."""

    EXTERNAL_IP = "external IP"
    GATEWAY = "Istio gateway"
    INGRESS = "Ingress route"
    KNATIVE_ROUTE = "Knative route"
    SERVICE = "Kubernetes Service"
    ACTIVATOR = "activator"
    QUEUE_PROXY = "queue-proxy"
    TRANSFORMER = "transformer"
    PREDICTOR_ROUTE = "→ predictor"
    SERVER = "kserve-container"
    POD = "predictor pod"
    MODEL = "model"


def plan(*, knative: bool, transformer: bool) -> tuple[Hop, ...]:
    """The hops of a path, in order."""
    middle: Sequence[Hop] = (Hop.TRANSFORMER, Hop.PREDICTOR_ROUTE) if transformer else ()
    if knative:
        return (
            Hop.EXTERNAL_IP,
            Hop.GATEWAY,
            Hop.KNATIVE_ROUTE,
            Hop.ACTIVATOR,
            Hop.QUEUE_PROXY,
            *middle,
            Hop.SERVER,
            Hop.MODEL,
        )
    return (Hop.EXTERNAL_IP, Hop.INGRESS, Hop.SERVICE, *middle, Hop.POD, Hop.MODEL)


def number(hops: Sequence[Hop], key: Hop) -> int:
    """The 1-based number of `key` in `hops`; the server hop of the other mode maps to this mode's."""
    if key not in hops:
        key = {
            Hop.SERVER: Hop.POD,
            Hop.POD: Hop.SERVER,
            Hop.GATEWAY: Hop.INGRESS,
            Hop.INGRESS: Hop.GATEWAY,
            Hop.KNATIVE_ROUTE: Hop.SERVICE,
            Hop.QUEUE_PROXY: Hop.POD,
            Hop.ACTIVATOR: Hop.SERVICE,
            Hop.PREDICTOR_ROUTE: Hop.SERVER,
            Hop.TRANSFORMER: Hop.SERVER,
        }.get(key, key)
        if key not in hops:
            key = {Hop.POD: Hop.SERVER, Hop.SERVICE: Hop.KNATIVE_ROUTE}.get(key, key)
    return hops.index(key) + 1 if key in hops else len(hops)
