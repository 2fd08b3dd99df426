"""The kinds a collection reads, with their REST paths and the words for a missing permission."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """How a kind is listed under `-n`: per namespace, or cluster-wide whatever the namespaces."""

    NAMESPACED = "namespaced"
    CLUSTER = "cluster"  # cluster-scoped kinds (IngressClass)
    INFRA = "infra"  # namespaced, but lives in an infrastructure namespace (MetalLB pools): always listed cluster-wide


@dataclass(frozen=True)
class KindSpec:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    scope: Scope
    crd: bool = False  # served by a CustomResourceDefinition: a 404 means "not installed"
    # Only the objects of these names are listed (`fieldSelector=metadata.name=…`, which RBAC `resourceNames` can
    # authorize): never every ConfigMap of a namespace, only the Seldon ones the checks read.
    names: tuple[str, ...] = ()
    # At most this many objects per namespace are kept, the newest first (Events: a busy cluster has hundreds of
    # thousands); None keeps every object.
    keep_newest: int | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def file_name(self) -> str:
        """Where the List goes in the bundle: `kube/<plural>.yaml`."""
        return f"kube/{self.plural}.yaml"

    def list_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is None or self.scope is not Scope.NAMESPACED:
            return f"{base}/{self.plural}"
        return f"{base}/namespaces/{namespace}/{self.plural}"

    def list_queries(self) -> list[list[tuple[str, str | int]]]:
        """The extra query of each list call: one per name for a kind listed by name, else one without."""
        if not self.names:
            return [[]]
        return [[("fieldSelector", f"metadata.name={name}")] for name in self.names]

    def permission(self, namespace: str | None, verb: str = "list") -> str:
        """`list networkpolicies in namespace x (networking.k8s.io)`: what RBAC must allow, in words."""
        where = f"in namespace {namespace}" if namespace is not None else "cluster-wide"
        named = f" named {', '.join(self.names)}" if self.names else ""
        return f"{verb} {self.plural}{named} {where} ({self.group or 'core'})"


SELDON = "mlops.seldon.io"

# The ConfigMap a SeldonRuntime's controller writes with the Kafka client settings (key `kafka.json`, from
# SeldonConfig `kafkaConfig`; seldon-core operator's ConfigMap reconciler) that gateways and the dataflow engine read.
SELDON_KAFKA_CONFIGMAP = "seldon-kafka"
EVENTS_PER_NAMESPACE = 2000

KINDS: tuple[KindSpec, ...] = (
    KindSpec("Pod", "", "v1", "pods", Scope.NAMESPACED),
    KindSpec("Service", "", "v1", "services", Scope.NAMESPACED),
    KindSpec("Endpoints", "", "v1", "endpoints", Scope.NAMESPACED),
    KindSpec("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", Scope.NAMESPACED),
    KindSpec("Deployment", "apps", "v1", "deployments", Scope.NAMESPACED),
    KindSpec("StatefulSet", "apps", "v1", "statefulsets", Scope.NAMESPACED),
    KindSpec("Ingress", "networking.k8s.io", "v1", "ingresses", Scope.NAMESPACED),
    KindSpec("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", Scope.NAMESPACED),
    KindSpec("IngressClass", "networking.k8s.io", "v1", "ingressclasses", Scope.CLUSTER),
    KindSpec("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", Scope.NAMESPACED),
    KindSpec("ConfigMap", "", "v1", "configmaps", Scope.NAMESPACED, names=(SELDON_KAFKA_CONFIGMAP,)),
    KindSpec("Event", "", "v1", "events", Scope.NAMESPACED, keep_newest=EVENTS_PER_NAMESPACE),
    KindSpec("Model", SELDON, "v1alpha1", "models", Scope.NAMESPACED, crd=True),
    KindSpec("Server", SELDON, "v1alpha1", "servers", Scope.NAMESPACED, crd=True),
    KindSpec("Experiment", SELDON, "v1alpha1", "experiments", Scope.NAMESPACED, crd=True),
    KindSpec("Pipeline", SELDON, "v1alpha1", "pipelines", Scope.NAMESPACED, crd=True),
    KindSpec("SeldonRuntime", SELDON, "v1alpha1", "seldonruntimes", Scope.NAMESPACED, crd=True),
    KindSpec("SeldonConfig", SELDON, "v1alpha1", "seldonconfigs", Scope.NAMESPACED, crd=True),
    KindSpec("ServerConfig", SELDON, "v1alpha1", "serverconfigs", Scope.NAMESPACED, crd=True),
    KindSpec("IPAddressPool", "metallb.io", "v1beta1", "ipaddresspools", Scope.INFRA, crd=True),
)

NAMESPACE_KIND = KindSpec("Namespace", "", "v1", "namespaces", Scope.CLUSTER)

# Never collected, whatever a List or a misbehaving server returns.
NEVER_COLLECTED = frozenset({"Secret"})

SYNTHESIZED_ANNOTATION = "mlops-trace.io/synthesized"
