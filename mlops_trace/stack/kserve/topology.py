"""What the KServe stack is: the InferenceService's names and hosts (KSERVE-FACTS §2), its processes' ports, its
faults and the plan they make (which hosts Envoy routes, where the model is stored, which timeout the revision has)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from enum import StrEnum

from mlops_trace.errors import UsageError

NAMESPACE = "kserve-test"
ISVC = "sklearn-iris"
MODEL = ISVC  # the transformer and the predictor serve the InferenceService's name
DOMAIN = "example.com"
ISVC_HOST = f"{ISVC}.{NAMESPACE}.{DOMAIN}"
ISVC_INTERNAL_HOST = f"{ISVC}.{NAMESPACE}.svc.cluster.local"
PREDICTOR = f"{ISVC}-predictor"
TRANSFORMER = f"{ISVC}-transformer"
# Standard mode's domainTemplate `{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}` (KSERVE-FACTS §2.3): the host a
# VirtualService carries when it was rendered from inferenceservice-config rather than from Knative's domain.
MISMATCHED_HOST = f"{ISVC}-{NAMESPACE}.{DOMAIN}"
# The predictor's name before kserve v0.11 (#2508), gone since v0.16 (#4178): a stale --predictor_host.
STALE_PREDICTOR_HOST = f"{ISVC}-predictor-default.{NAMESPACE}"
ISTIO_NAMESPACE = "istio-system"
KNATIVE_NAMESPACE = "knative-serving"
KSERVE_NAMESPACE = "kserve"
LOCAL_GATEWAY_SERVICE = f"knative-local-gateway.{ISTIO_NAMESPACE}.svc.cluster.local"
INGRESS_GATEWAY_SERVICE = f"istio-ingressgateway.{ISTIO_NAMESPACE}.svc.cluster.local"
GATEWAY_POD = "istio-ingressgateway-6d8b7f9c54-x7k2q"
CANARY_PERCENT = 20
REVISION_TIMEOUT_SECONDS = 1
SLOW_MODEL_MS = 2500
DEFAULT_TIMEOUT_SECONDS = 300  # config-defaults revision-timeout-seconds


def revision(component: str, number: int) -> str:
    return f"{component}-{number:05d}"


_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated name suffixes


def _suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def pod_name(rev: str) -> str:
    """The revision's Deployment pod (`<rev>-deployment-<pod-template-hash>-<suffix>`), stable per revision."""
    return f"{rev}-deployment-{_suffix(rev, 10)}-{_suffix(rev + '/pod', 5)}"


def cluster_name(host: str, port: int = 80) -> str:
    """Istio's cluster name for a Service port (`outbound|<port>|<subset>|<fqdn>`, istio model/service.go)."""
    return f"outbound|{port}||{host}"


def revision_host(rev: str) -> str:
    return f"{rev}.{NAMESPACE}.svc.cluster.local"


class KFault(StrEnum):
    HOST_MISMATCH = "host-mismatch"
    STORAGE_INIT_FAIL = "storage-init-fail"
    TRANSFORMER_UNREACHABLE = "transformer-unreachable"
    REVISION_TIMEOUT = "revision-timeout"
    GATEWAY_MISSING = "gateway-missing"
    CANARY_STALE = "canary-stale"


DESCRIPTIONS: dict[KFault, str] = {
    KFault.HOST_MISMATCH: f"the InferenceService's VirtualService names {MISMATCHED_HOST}, not the URL's host "
    f"{ISVC_HOST}: the gateway answers its own empty 404 (NR)",
    KFault.STORAGE_INIT_FAIL: "storageUri points at a local path where nothing is: the storage initializer fails "
    "(`Storage initialization failed: Local path … does not exist.`), the predictor never starts, no VirtualService",
    KFault.TRANSFORMER_UNREACHABLE: f"the transformer's --predictor_host is {STALE_PREDICTOR_HOST} (the pre-0.11 "
    "name): its call to the predictor fails to connect and it answers 500",
    KFault.REVISION_TIMEOUT: f"the predictor's timeout is {REVISION_TIMEOUT_SECONDS}s and the model takes "
    f"{SLOW_MODEL_MS / 1000:g}s: queue-proxy answers 504 `request timeout`",
    KFault.GATEWAY_MISSING: "the knative-local-gateway Gateway is missing: the ingress gateway routes to it and gets "
    "connection refused (503 UF/URX)",
    KFault.CANARY_STALE: f"canaryTrafficPercent {CANARY_PERCENT} on revision 00002, but the Knative Route still "
    "sends 100% to 00001, and so does the gateway",
}

_CONFLICTS = ((KFault.STORAGE_INIT_FAIL, KFault.CANARY_STALE), (KFault.STORAGE_INIT_FAIL, KFault.REVISION_TIMEOUT))


def parse_kfaults(values: Iterable[str]) -> tuple[KFault, ...]:
    """`--fault a --fault b,c` for the KServe profile; UsageError naming the bad one."""
    found: list[KFault] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            try:
                fault = KFault(name)
            except ValueError:
                known = ", ".join(f.value for f in KFault)
                raise UsageError(f"unknown kserve fault {name!r} (one of: {known})") from None
            if fault not in found:
                found.append(fault)
    for a, b in _CONFLICTS:
        if a in found and b in found:
            raise UsageError(f"faults {a.value} and {b.value} cannot be combined (no predictor runs under {a.value})")
    return tuple(sorted(found, key=list(KFault).index))


@dataclass(frozen=True)
class KPorts:
    gateway_http: int  # istio-ingressgateway 8080 (Service port 80)
    local_gateway: int  # knative-local-gateway 8081, the same Envoy
    gateway_admin: int
    predictor_http: int  # kserve-container 8080 of revision 00001
    predictor_queue: int  # its queue-proxy 8012
    canary_http: int
    canary_queue: int
    transformer_http: int
    transformer_queue: int
    kube_api: int
    # The model servers' gRPC ports (kserve's --grpc_port, 8081 in a pod), bound to 127.0.0.1 (payload/loopback.py).
    predictor_grpc: int = 0
    canary_grpc: int = 0
    transformer_grpc: int = 0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.names(), astuple(self), strict=True))


@dataclass(frozen=True)
class KPlan:
    faults: tuple[KFault, ...]

    def has(self, fault: KFault) -> bool:
        return fault in self.faults

    @property
    def vs_host(self) -> str:
        return MISMATCHED_HOST if self.has(KFault.HOST_MISMATCH) else ISVC_HOST

    @property
    def predictor_runs(self) -> bool:
        return not self.has(KFault.STORAGE_INIT_FAIL)

    @property
    def canary(self) -> bool:
        return self.has(KFault.CANARY_STALE)

    @property
    def local_gateway(self) -> bool:
        return not self.has(KFault.GATEWAY_MISSING)

    @property
    def predictor_timeout(self) -> int:
        return REVISION_TIMEOUT_SECONDS if self.has(KFault.REVISION_TIMEOUT) else DEFAULT_TIMEOUT_SECONDS

    @property
    def model_delay_ms(self) -> int:
        return SLOW_MODEL_MS if self.has(KFault.REVISION_TIMEOUT) else 0

    @property
    def predictor_host(self) -> str:
        """The transformer's --predictor_host, as KServe's controller sets it (`I-predictor.N`, no port)."""
        return STALE_PREDICTOR_HOST if self.has(KFault.TRANSFORMER_UNREACHABLE) else f"{PREDICTOR}.{NAMESPACE}"

    @property
    def predictor_revisions(self) -> tuple[str, ...]:
        if not self.predictor_runs:
            return ()
        return (revision(PREDICTOR, 1), revision(PREDICTOR, 2)) if self.canary else (revision(PREDICTOR, 1),)

    @property
    def route_traffic(self) -> dict[str, int]:
        """The Knative Route's split of the predictor (canary-stale: still all on the old revision)."""
        return {revision(PREDICTOR, 1): 100} if self.predictor_runs else {}

    @property
    def isvc_traffic(self) -> dict[str, int]:
        """What the InferenceService asks for (canaryTrafficPercent on the latest revision)."""
        if self.canary:
            return {revision(PREDICTOR, 2): CANARY_PERCENT, revision(PREDICTOR, 1): 100 - CANARY_PERCENT}
        return self.route_traffic


_HOST_RE = re.compile(r"[.]")


def authority_regex(host: str) -> str:
    """KServe's authority match for a host (`^<escaped host>(?::\\d{1,5})?$`, KSERVE-FACTS §2.2)."""
    return "^" + _HOST_RE.sub(r"\\.", host) + r"(?::\d{1,5})?$"
