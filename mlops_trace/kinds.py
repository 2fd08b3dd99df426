"""The one registry of Kubernetes kinds: what each is (group, version, plural, short names, scope, CRD or not), what
`collect` does with it and whether `bundle serve` serves it.

`collect` lists `COLLECTED_KINDS` in their order (after the namespaces themselves, `NAMESPACE_KIND`); `bundle serve`
serves `SERVED_KINDS` (plus whatever other kind a bundle holds, see `serve/resources.py`); the bundle reader knows a
kind by the name of the file it is in (`kube/<plural>.yaml`, `netpol.yaml`) through `kind_for_file_stem`. Secrets are
never collected and never served. This module imports nothing of the package: collect, serve and snapshot all read it.

A kind is known by its key: its name, or, for a name two API groups use (Knative's Service beside the core Service,
Knative's Ingress beside networking.k8s.io's, Istio's Gateway beside the Gateway API's), `<Kind>.<group>` as kubectl
spells a resource (`Service.serving.knative.dev`). `kind_key` gives an object's key from its `kind` and `apiVersion`;
the Snapshot files objects, and checks name their inputs (`kube:<key>`), by it. A qualified kind's bundle file is
`kube/<plural>.<group>.yaml`, so the two never share a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Collection(StrEnum):
    """What `collect` does with a kind."""

    NEVER = "never"  # never collected, whatever a List or a misbehaving server returns (Secrets); never served either
    NOT_COLLECTED = "not-collected"  # no check reads it: not listed, but served when a bundle holds it
    NAMESPACES = "namespaces"  # the Namespaces themselves, first: got one by one under `-n`, listed under `-A`
    PER_NAMESPACE = "per-namespace"  # listed in each namespace of `-n`, cluster-wide under `-A`
    CLUSTER = "cluster"  # a cluster-scoped kind (IngressClass): listed cluster-wide
    INFRA = "infra"  # namespaced, but lives in an infrastructure namespace (MetalLB pools): always listed cluster-wide


# Whether a kind collected that way is namespaced; NEVER and NOT_COLLECTED say nothing about it.
_NAMESPACED_WHEN = {
    Collection.NAMESPACES: False,
    Collection.PER_NAMESPACE: True,
    Collection.CLUSTER: False,
    Collection.INFRA: True,
}
_LISTED = (Collection.PER_NAMESPACE, Collection.CLUSTER, Collection.INFRA)  # what `collect` lists after the namespaces


@dataclass(frozen=True)
class KindSpec:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    crd: bool = False  # served by a CustomResourceDefinition: a 404 means "not installed"
    collect: Collection = Collection.NOT_COLLECTED
    # Only the objects of these names are listed (`fieldSelector=metadata.name=…`, which RBAC `resourceNames` can
    # authorize): never every ConfigMap of a namespace, only the Seldon ones the checks read.
    names: tuple[str, ...] = ()
    # At most this many objects per namespace are kept, the newest first (Events: a busy cluster has hundreds of
    # thousands); None keeps every object.
    keep_newest: int | None = None
    served: bool = True  # `bundle serve` serves it
    # Its objects make a namespace a Seldon namespace (models and their servers live there; SeldonConfig and
    # ServerConfig live with the operator, wherever that is).
    marks_seldon_namespace: bool = False
    # Its name is another group's kind too: keyed and filed `<Kind>.<group>` (see the module's docstring).
    qualified: bool = False
    # Under `-n`, the named objects are also listed in these namespaces, where their control planes keep them
    # (KServe's and Knative's ConfigMaps in `kserve` and `knative-serving`), whichever namespaces were named.
    home_namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if _NAMESPACED_WHEN.get(self.collect, self.namespaced) is not self.namespaced:
            raise ValueError(f"{self.kind}: collected {self.collect} but namespaced={self.namespaced}")
        if self.collect is Collection.NEVER and self.served:
            raise ValueError(f"{self.kind}: never collected, so never served")
        if (self.names or self.keep_newest is not None) and not self.collected:
            raise ValueError(f"{self.kind}: names and keep_newest only bound a collected kind")
        if self.home_namespaces and not (self.names and self.listed_per_namespace):
            raise ValueError(f"{self.kind}: home namespaces are where named objects are also listed under -n")
        if self.qualified and not self.group:
            raise ValueError(f"{self.kind}: the core group's kinds keep their bare name")

    @property
    def key(self) -> str:
        """What the Snapshot and the checks call the kind: `Pod`, or `Service.serving.knative.dev` for a name that
        two groups use."""
        return f"{self.kind}.{self.group}" if self.qualified else self.kind

    @property
    def collected(self) -> bool:
        """Whether `collect` reads it (the Namespaces included)."""
        return self.collect in _NAMESPACED_WHEN

    @property
    def listed_per_namespace(self) -> bool:
        """Whether `collect -n` lists it in each namespace named (else once, cluster-wide)."""
        return self.collect is Collection.PER_NAMESPACE

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        """The discovery documents' word for `api_version`."""
        return self.api_version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        """kubectl's word for the resource: `pods`, or `services.serving.knative.dev` for a qualified kind."""
        return f"{self.plural}.{self.group}" if self.qualified else self.plural

    @property
    def file_name(self) -> str:
        """Where the List goes in the bundle: `kube/<plural>.yaml` (`kube/<plural>.<group>.yaml` when qualified)."""
        return f"kube/{self.resource}.yaml"

    def file_words(self) -> tuple[str, ...]:
        """The words a file name's stem may use for the kind: plural, singular, short names, and kubectl's
        `<plural>.<group>` (`virtualservices.networking.istio.io`); a qualified kind's plural and singular only with
        their group (`services.serving.knative.dev`), its short names (`ksvc`) bare."""
        grouped = (f"{self.plural}.{self.group}", f"{self.singular}.{self.group}") if self.group else ()
        bare = () if self.qualified else (self.plural, self.singular)
        return (*bare, *grouped, *self.short_names)

    def list_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is None or not self.namespaced or self.collect is Collection.INFRA:
            return f"{base}/{self.plural}"
        return f"{base}/namespaces/{namespace}/{self.plural}"

    def list_queries(self) -> list[list[tuple[str, str | int]]]:
        """The extra query of each list call: one per name for a kind listed by name, else one without."""
        if not self.names:
            return [[]]
        return [[("fieldSelector", f"metadata.name={name}")] for name in self.names]

    def list_scopes(self, namespaces: tuple[str, ...] | list[str], all_namespaces: bool) -> list[str | None]:
        """Where `collect` lists the kind: once cluster-wide (None), or in each namespace named and its home ones."""
        if all_namespaces or not self.listed_per_namespace:
            return [None]
        return list(dict.fromkeys([*namespaces, *self.home_namespaces]))

    def permission(self, namespace: str | None, verb: str = "list", name: str | None = None) -> str:
        """`list networkpolicies in namespace x (networking.k8s.io)`: what RBAC must allow, in words; for a kind listed
        by name, the `name` asked for (each is authorized on its own), else all its names."""
        where = f"in namespace {namespace}" if namespace is not None else "cluster-wide"
        names = (name,) if name is not None else self.names
        named = f" named {', '.join(names)}" if names else ""
        return f"{verb} {self.plural}{named} {where} ({self.group or 'core'})"


SELDON = "mlops.seldon.io"
METALLB = "metallb.io"
KSERVE = "serving.kserve.io"
KNATIVE = "serving.knative.dev"
KNATIVE_NETWORKING = "networking.internal.knative.dev"
KNATIVE_AUTOSCALING = "autoscaling.internal.knative.dev"
ISTIO = "networking.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"

# The ConfigMap a SeldonRuntime's controller writes with the Kafka client settings (key `kafka.json`, from
# SeldonConfig `kafkaConfig`; seldon-core operator's ConfigMap reconciler) that gateways and the dataflow engine read.
SELDON_KAFKA_CONFIGMAP = "seldon-kafka"
EVENTS_PER_NAMESPACE = 2000
# The ConfigMaps KServe's controller (`inferenceservice-config`, in `kserve`: kserve/kserve
# config/configmap/inferenceservice.yaml) and Knative Serving and net-istio (in `knative-serving`: knative/serving
# config/core/configmaps/, knative/net-istio config/400-config-istio.yaml) read their routing and scaling settings from.
KSERVE_CONFIGMAPS = ("inferenceservice-config",)
KNATIVE_CONFIGMAPS = ("config-istio", "config-network", "config-domain", "config-defaults", "config-autoscaler")
KSERVE_NAMESPACE = "kserve"
KNATIVE_NAMESPACE = "knative-serving"

# Marks an object `bundle serve` made up (a stand-in Pod for a pod that only has logs, a Namespace the bundle implies);
# `collect` leaves such objects out of a bundle it reads from a served one.
SYNTHESIZED_ANNOTATION = "mlops-trace.io/synthesized"

_PER_NS = Collection.PER_NAMESPACE
_UNREAD = Collection.NOT_COLLECTED

# Collected kinds are in the order `collect` lists them; `bundle serve` lists its resources in this order too.
ALL_KINDS: tuple[KindSpec, ...] = (
    KindSpec("Namespace", "", "v1", "namespaces", False, ("ns",), collect=Collection.NAMESPACES),
    KindSpec("Node", "", "v1", "nodes", False, ("no",), collect=_UNREAD),
    KindSpec("Pod", "", "v1", "pods", True, ("po",), collect=_PER_NS),
    KindSpec("Service", "", "v1", "services", True, ("svc",), collect=_PER_NS),
    KindSpec("Endpoints", "", "v1", "endpoints", True, ("ep",), collect=_PER_NS),
    KindSpec("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", True, collect=_PER_NS),
    KindSpec("Deployment", "apps", "v1", "deployments", True, ("deploy",), collect=_PER_NS),
    KindSpec("StatefulSet", "apps", "v1", "statefulsets", True, ("sts",), collect=_PER_NS),
    KindSpec("DaemonSet", "apps", "v1", "daemonsets", True, ("ds",), collect=_UNREAD),
    KindSpec("ReplicaSet", "apps", "v1", "replicasets", True, ("rs",), collect=_UNREAD),
    KindSpec("Ingress", "networking.k8s.io", "v1", "ingresses", True, ("ing",), collect=_PER_NS),
    KindSpec("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True, ("netpol",), collect=_PER_NS),
    KindSpec("IngressClass", "networking.k8s.io", "v1", "ingressclasses", False, collect=Collection.CLUSTER),
    KindSpec("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True, ("hpa",),
             collect=_PER_NS),
    KindSpec("ConfigMap", "", "v1", "configmaps", True, ("cm",), collect=_PER_NS,
             names=(SELDON_KAFKA_CONFIGMAP, *KSERVE_CONFIGMAPS, *KNATIVE_CONFIGMAPS),
             home_namespaces=(KSERVE_NAMESPACE, KNATIVE_NAMESPACE)),
    KindSpec("ServiceAccount", "", "v1", "serviceaccounts", True, ("sa",), collect=_UNREAD),
    KindSpec("Event", "", "v1", "events", True, ("ev",), collect=_PER_NS, keep_newest=EVENTS_PER_NAMESPACE),
    # A bundle must not carry Secrets, and a served bundle must not look like it does.
    KindSpec("Secret", "", "v1", "secrets", True, collect=Collection.NEVER, served=False),
    KindSpec("Model", SELDON, "v1alpha1", "models", True, ("mlm",), crd=True, collect=_PER_NS,
             marks_seldon_namespace=True),
    KindSpec("Server", SELDON, "v1alpha1", "servers", True, ("mls",), crd=True, collect=_PER_NS,
             marks_seldon_namespace=True),
    KindSpec("Experiment", SELDON, "v1alpha1", "experiments", True, ("mlx",), crd=True, collect=_PER_NS,
             marks_seldon_namespace=True),
    KindSpec("Pipeline", SELDON, "v1alpha1", "pipelines", True, ("mlp",), crd=True, collect=_PER_NS,
             marks_seldon_namespace=True),
    KindSpec("SeldonRuntime", SELDON, "v1alpha1", "seldonruntimes", True, crd=True, collect=_PER_NS,
             marks_seldon_namespace=True),
    KindSpec("SeldonConfig", SELDON, "v1alpha1", "seldonconfigs", True, crd=True, collect=_PER_NS),
    KindSpec("ServerConfig", SELDON, "v1alpha1", "serverconfigs", True, ("mlc",), crd=True, collect=_PER_NS),
    KindSpec("IPAddressPool", METALLB, "v1beta1", "ipaddresspools", True, crd=True, collect=Collection.INFRA),
    KindSpec("L2Advertisement", METALLB, "v1beta1", "l2advertisements", True, crd=True, collect=_UNREAD),
    # KServe (kserve/kserve config/crd/full/serving.kserve.io_*.yaml at aaac4e2, after v0.20.0).
    KindSpec("InferenceService", KSERVE, "v1beta1", "inferenceservices", True, ("isvc",), crd=True, collect=_PER_NS),
    KindSpec("ServingRuntime", KSERVE, "v1alpha1", "servingruntimes", True, crd=True, collect=_PER_NS),
    KindSpec("ClusterServingRuntime", KSERVE, "v1alpha1", "clusterservingruntimes", False, crd=True,
             collect=Collection.CLUSTER),
    KindSpec("InferenceGraph", KSERVE, "v1alpha1", "inferencegraphs", True, ("ig",), crd=True, collect=_PER_NS),
    # Knative Serving (knative/serving config/core/300-resources/*.yaml at knative-v1.23.0, and its vendored
    # knative.dev/networking config/ingress.yaml).
    KindSpec("Service", KNATIVE, "v1", "services", True, ("kservice", "ksvc"), crd=True, collect=_PER_NS,
             qualified=True),
    KindSpec("Configuration", KNATIVE, "v1", "configurations", True, ("config", "cfg"), crd=True, collect=_PER_NS),
    KindSpec("Revision", KNATIVE, "v1", "revisions", True, ("rev",), crd=True, collect=_PER_NS),
    KindSpec("Route", KNATIVE, "v1", "routes", True, ("rt",), crd=True, collect=_PER_NS),
    KindSpec("Ingress", KNATIVE_NETWORKING, "v1alpha1", "ingresses", True, ("kingress", "king"), crd=True,
             collect=_PER_NS, qualified=True),
    KindSpec("PodAutoscaler", KNATIVE_AUTOSCALING, "v1alpha1", "podautoscalers", True, ("kpa", "pa"), crd=True,
             collect=_PER_NS),
    # Istio (istio/istio manifests/charts/base/files/crd-all.gen.yaml at 86c9f01, 1.31): v1beta1 is served from
    # Istio 1.x's early releases through 1.31, v1 only from 1.22. Gateways live with the mesh's ingress (KServe's
    # `knative-serving/knative-ingress-gateway`), wherever that is: listed cluster-wide.
    KindSpec("Gateway", ISTIO, "v1beta1", "gateways", True, ("gw",), crd=True, collect=Collection.INFRA,
             qualified=True),
    KindSpec("VirtualService", ISTIO, "v1beta1", "virtualservices", True, ("vs",), crd=True, collect=_PER_NS),
    KindSpec("DestinationRule", ISTIO, "v1beta1", "destinationrules", True, ("dr",), crd=True, collect=_PER_NS),
    # Gateway API (standard channel CRDs, v1.6.0 as istio/istio tests/integration/pilot/testdata/gateway-api-crd.yaml
    # vendors them): KServe's Standard mode with `enableGatewayApi`; its Gateway is `kserve/kserve-ingress-gateway`.
    KindSpec("HTTPRoute", GATEWAY_API, "v1", "httproutes", True, crd=True, collect=_PER_NS),
    KindSpec("Gateway", GATEWAY_API, "v1", "gateways", True, ("gtw",), crd=True, collect=Collection.INFRA,
             qualified=True),
)

_BY_KEY = {spec.key: spec for spec in ALL_KINDS}
# The qualified kinds by (kind, group): an object of one of them is filed under its qualified key.
_QUALIFIED = {(spec.kind, spec.group): spec.key for spec in ALL_KINDS if spec.qualified}
(NAMESPACE_KIND,) = (spec for spec in ALL_KINDS if spec.collect is Collection.NAMESPACES)
# What `collect` lists after the namespaces, in this order.
COLLECTED_KINDS: tuple[KindSpec, ...] = tuple(spec for spec in ALL_KINDS if spec.collect in _LISTED)
SERVED_KINDS: tuple[KindSpec, ...] = tuple(spec for spec in ALL_KINDS if spec.served)
NEVER_COLLECTED = frozenset(spec.key for spec in ALL_KINDS if spec.collect is Collection.NEVER)
NEVER_SERVED = frozenset(spec.key for spec in ALL_KINDS if not spec.served)
# The kinds whose objects make a namespace a Seldon one: Model, Server, Experiment, Pipeline, SeldonRuntime.
SELDON_NAMESPACE_KINDS: tuple[str, ...] = tuple(spec.kind for spec in ALL_KINDS if spec.marks_seldon_namespace)

# A served kind by each word a file name may use for it: plural, singular or short name (`pods`, `pod`, `po`).
_SERVED_BY_WORD = {word: spec for spec in SERVED_KINDS for word in spec.file_words()}


def spec_of(key: str) -> KindSpec | None:
    """The registry's entry for a kind key (`Pod`, `Service.serving.knative.dev`), None for a kind it does not know
    (a custom resource a user saved)."""
    return _BY_KEY.get(key)


def kind_key(kind: str, api_version: str | None) -> str:
    """The key an object of `kind` and `apiVersion` is filed under: `Service.serving.knative.dev` for Knative's
    Service, `Service` for the core one. Only a qualified kind of the registry gets a group; any other object keeps
    its bare kind, whatever its group (hand-written bundles, custom resources)."""
    group = api_version.rpartition("/")[0] if api_version else ""
    return _QUALIFIED.get((kind, group), kind)


def kind_for_file_stem(stem: str) -> KindSpec | None:
    """The served kind a file name's stem names (`netpol`, `NetworkPolicies`, `network_policy`), or None: how a
    bundle written with `kubectl get <plural> -o yaml > kube/<plural>.yaml` says which kind a file holds."""
    return _SERVED_BY_WORD.get(stem.lower().replace("-", "").replace("_", ""))
