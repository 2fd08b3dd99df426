"""Ingress helpers: backend resolution through ExternalName hops, ingress-nginx path simulation, controller lookup."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from mlops_trace.analysis.ingress import (
    PortRef,
    Stop,
    controllers_for,
    envoy_namespace,
    ingress_backends,
    is_envoy_data_port,
    is_nginx_ingress,
    literal_prefix,
    parse_external_name,
    reaches_seldon_route,
    ready_endpoints,
    regex_hosts,
    resolve_backend,
    sample_client_path,
    seldon_backends,
    simulate_path,
    substitute_captures,
    target_port,
)
from mlops_trace.analysis.pod_endpoints import container_port, namespace_labels_unknown, pod_endpoints, workload_members
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.snapshot import BundleMetadata, Snapshot


def kube(text: str) -> list[KubeObject]:
    objects = []
    for index, doc in enumerate(d for d in yaml.safe_load_all(text) if d):
        meta = doc["metadata"]
        objects.append(KubeObject(doc["kind"], meta.get("namespace"), meta["name"], doc, f"kube/test.yaml#{index}"))
    return objects


def snapshot(text: str, metadata: BundleMetadata | None = None) -> Snapshot:
    snap = Snapshot(source="test", metadata=metadata or BundleMetadata())
    snap.add_objects(kube(text))
    return snap


def service(name: str, namespace: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    )


MESH_PORTS = [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "admin", "port": 9003, "targetPort": 9003}]
ENVOY_SELECTOR = {"app.kubernetes.io/name": "seldon-envoy"}


# --- path simulation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "regex", "expected"),
    [
        ("/seldon-system/(.*)", True, "/seldon-system/"),
        ("/ml(/|$)(.*)", True, "/ml"),
        ("/seldon/?(.*)", True, "/seldon"),  # the slash made optional by `?` is dropped
        (r"/api\.v1/(.*)", True, "/api.v1/"),
        ("/x{0,1}/(.*)", True, "/"),
        ("/exact.path", False, "/exact.path"),
        ("/", True, "/"),
    ],
)
def test_literal_prefix(path: str, regex: bool, expected: str) -> None:
    assert literal_prefix(path, regex) == expected


@pytest.mark.parametrize(
    ("literal", "grpc", "expected"),
    [
        ("/", False, "/v2/models/model/infer"),
        ("", False, "/v2/models/model/infer"),
        ("/seldon-system/", False, "/seldon-system/v2/models/model/infer"),
        ("/seldon", False, "/seldon/v2/models/model/infer"),
        ("/v2", False, "/v2/models/model/infer"),
        ("/v2/", False, "/v2/models/model/infer"),
        ("/team/v2/", False, "/team/v2/models/model/infer"),
        ("/x/v2/models/iris", False, "/x/v2/models/iris/infer"),
        ("/api/v", False, "/api/v/v2/models/model/infer"),  # "/v" is not a whole segment of /v2
        ("/", True, "/inference.GRPCInferenceService/ModelInfer"),
        ("/grpc", True, "/grpc/inference.GRPCInferenceService/ModelInfer"),
    ],
)
def test_sample_client_path(literal: str, grpc: bool, expected: str) -> None:
    assert sample_client_path(literal, grpc) == expected


@pytest.mark.parametrize(
    ("path", "path_type", "regex", "rewrite", "upstream", "ok"),
    [
        ("/", "Prefix", False, None, "/v2/models/model/infer", True),
        ("/v2", "Prefix", False, None, "/v2/models/model/infer", True),
        ("/v2/", "Prefix", False, None, "/v2/models/model/infer", True),
        ("/seldon-system", "Prefix", False, None, "/seldon-system/v2/models/model/infer", False),
        ("/seldon-system/(.*)", "ImplementationSpecific", True, "/$1", "/v2/models/model/infer", True),
        ("/v2/(.*)", "ImplementationSpecific", True, "/$1", "/models/model/infer", False),
        ("/ml(/|$)(.*)", "ImplementationSpecific", True, "/$2", "/v2/models/model/infer", True),
        ("/ml(/|$)(.*)", "ImplementationSpecific", True, "/$1", "//", False),
        ("/seldon(/.*)", "Prefix", True, "/$1", "//v2/models/model/infer", False),
        ("/seldon", "Prefix", True, "/", "/", False),
        ("/team/(?<rest>.*)", "Prefix", True, "/${rest}", "/v2/models/model/infer", True),
        ("/(.*)", "Prefix", True, "/$1", "/v2/models/model/infer", True),
    ],
)
def test_simulate_rest_paths(
    path: str, path_type: str, regex: bool, rewrite: str | None, upstream: str, ok: bool
) -> None:
    client = sample_client_path(literal_prefix(path, regex), grpc=False)
    result = simulate_path(path, path_type, client, regex=regex, rewrite=rewrite)
    assert result.matched
    assert result.upstream_path == upstream
    assert reaches_seldon_route(upstream, grpc=False) is ok


def test_regex_location_is_anchored_and_case_insensitive() -> None:
    matched = simulate_path("/Seldon/(.*)", "Prefix", "/seldon/v2/models/m/infer", regex=True, rewrite="/$1")
    assert matched.location == '~* "^/Seldon/(.*)"'
    assert matched.upstream_path == "/v2/models/m/infer"
    assert matched.groups == ("v2/models/m/infer",)
    not_at_start = simulate_path("/seldon/(.*)", "Prefix", "/x/seldon/v2/models/m/infer", regex=True, rewrite="/$1")
    assert not not_at_start.matched and not_at_start.upstream_path is None


def test_rewrite_equal_to_path_is_no_rewrite() -> None:
    result = simulate_path("/v2/(.*)", "Prefix", "/v2/models/m/infer", regex=True, rewrite="/v2/(.*)")
    assert result.rewrite is None and result.upstream_path == "/v2/models/m/infer"


def test_exact_and_prefix_without_regex() -> None:
    exact = simulate_path("/v2/models/iris/infer", "Exact", "/v2/models/iris/infer", regex=False, rewrite=None)
    assert exact.matched and exact.location == "= /v2/models/iris/infer"
    assert not simulate_path("/v2/models/iris", "Exact", "/v2/models/iris/infer", regex=False, rewrite=None).matched
    # Prefix matches whole path elements only.
    assert not simulate_path("/seldon", "Prefix", "/seldonx/v2/models/m/infer", regex=False, rewrite=None).matched
    assert simulate_path("/seldon/", "Prefix", "/seldon/v2/models/m/infer", regex=False, rewrite=None).matched


def test_grpc_sample_through_rewrite() -> None:
    client = sample_client_path(literal_prefix("/grpc(/|$)(.*)", True), grpc=True)
    result = simulate_path("/grpc(/|$)(.*)", "ImplementationSpecific", client, regex=True, rewrite="/$2")
    assert result.upstream_path == "/inference.GRPCInferenceService/ModelInfer"
    assert reaches_seldon_route(result.upstream_path, grpc=True)
    assert not reaches_seldon_route("/v2/models/m/infer", grpc=True)


def test_invalid_regex_is_reported_not_raised() -> None:
    result = simulate_path("/broken(", "Prefix", "/broken(/v2/models/m/infer", regex=True, rewrite="/$1")
    assert result.error is not None and not result.matched


def test_substitute_captures() -> None:
    match = re.match(r"^/a/(b)/(c)?(?P<tail>.*)", "/a/b/rest")
    assert match is not None
    assert substitute_captures("/$1/$2/$3", match) == "/b//rest"
    assert substitute_captures("/$10", match) == "/b0"  # nginx reads one digit
    assert substitute_captures("/${tail}$is_args$args", match) == "/rest"
    assert substitute_captures("/$9", match) == "/"
    assert substitute_captures("/$host/$1?x=1", match) == "/$host/b"


# --- Ingress objects -------------------------------------------------------------------------------------------------

INGRESSES = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: edge
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  ingressClassName: nginx
  defaultBackend:
    service: {name: fallback, port: {number: 8080}}
  rules:
  - host: a.example
    http:
      paths:
      - path: /m(/|$)(.*)
        pathType: ImplementationSpecific
        backend: {service: {name: models, port: {name: http}}}
      - backend: {service: {name: other, port: {number: 81}}}
        pathType: Prefix
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: legacy, namespace: edge}
spec:
  rules:
  - host: a.example
    http:
      paths:
      - path: /old
        backend: {serviceName: oldsvc, servicePort: web}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other-host, namespace: edge}
spec:
  ingressClassName: traefik
  rules:
  - host: b.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: x, port: {number: 80}}}
"""


def test_ingress_backends_cover_v1_default_and_v1beta1() -> None:
    snap = snapshot(INGRESSES)
    api = snap.get("Ingress", "edge", "api")
    legacy = snap.get("Ingress", "edge", "legacy")
    assert api is not None and legacy is not None
    found = [(b.service, str(b.port), b.path, b.path_type, b.field) for b in ingress_backends(api)]
    assert found == [
        ("models", "http", "/m(/|$)(.*)", "ImplementationSpecific", ".spec.rules[0].http.paths[0].backend.service"),
        ("other", "81", "/", "Prefix", ".spec.rules[0].http.paths[1].backend.service"),
        ("fallback", "8080", None, "", ".spec.defaultBackend.service"),
    ]
    (old,) = ingress_backends(legacy)
    assert (old.service, old.port, old.path_type) == ("oldsvc", PortRef(name="web"), "ImplementationSpecific")


def test_regex_applies_to_every_path_of_the_host() -> None:
    snap = snapshot(INGRESSES)
    # `api` asks for regex on a.example, so `legacy` on the same host is regex too; b.example is another controller.
    assert regex_hosts(snap) == {"a.example"}


def test_ingress_class_decides_nginx() -> None:
    snap = snapshot(
        INGRESSES
        + "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: internal}\n"
        + "spec: {controller: example.com/other}\n"
    )
    api, other = snap.get("Ingress", "edge", "api"), snap.get("Ingress", "edge", "other-host")
    assert api is not None and other is not None
    assert is_nginx_ingress(snap, api)
    assert not is_nginx_ingress(snap, other)  # traefik by name
    internal = kube(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: edge}\n"
        "spec: {ingressClassName: internal}\n"
    )[0]
    assert not is_nginx_ingress(snap, internal)


# --- resolution ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("seldon-mesh.prod.svc.cluster.local", ("seldon-mesh", "prod", True)),
        ("seldon-mesh.prod.svc.corp.internal.", ("seldon-mesh", "prod", True)),
        ("seldon-mesh.prod.svc", ("seldon-mesh", "prod", True)),
        ("seldon-mesh.unknown-ns", ("seldon-mesh", "unknown-ns", False)),
        ("api.known", ("api", "known", False)),
        ("example.com", (None, None, False)),
        ("10.1.2.3", (None, None, False)),
        ("single", (None, None, False)),
    ],
)
def test_parse_external_name(host: str, expected: tuple[str | None, str | None, bool]) -> None:
    target = parse_external_name(host, ["known"])
    assert (target.service, target.namespace, target.certain) == expected


def test_direct_backend_to_seldon_mesh() -> None:
    snap = snapshot(service("seldon-mesh", "serving", type="ClusterIP", selector=ENVOY_SELECTOR, ports=MESH_PORTS))
    res = resolve_backend(snap, "serving", "seldon-mesh", PortRef(number=80))
    assert res.stop is Stop.SERVICE
    assert envoy_namespace(snap, res) == "serving"
    assert target_port(res) == "http"
    assert is_envoy_data_port(res)
    stats = resolve_backend(snap, "serving", "seldon-mesh", PortRef(name="admin"))
    assert target_port(stats) == 9003 and not is_envoy_data_port(stats)


def test_external_name_hops_to_envoy_service() -> None:
    snap = snapshot(
        service(
            "alias",
            "edge",
            type="ExternalName",
            externalName="second.edge.svc.cluster.local",
            ports=[{"name": "web", "port": 80, "targetPort": 8080}],
        )
        + "---\n"
        + service("second", "edge", type="ExternalName", externalName="envoy-front.serving.svc")
        + "---\n"
        + service("envoy-front", "serving", selector=ENVOY_SELECTOR, ports=[{"port": 8080, "targetPort": 9000}])
    )
    res = resolve_backend(snap, "edge", "alias", PortRef(name="web"))
    assert res.stop is Stop.SERVICE
    assert [(h.namespace, h.name, str(h.port)) for h in res.hops] == [
        ("edge", "alias", "web"),
        ("edge", "second", "8080"),  # the first ExternalName turns the name into its targetPort
        ("serving", "envoy-front", "8080"),  # later hops are plain DNS aliases: the port travels unchanged
    ]
    assert envoy_namespace(snap, res) == "serving"
    assert target_port(res) == 9000
    assert "ExternalName second.edge.svc.cluster.local" in res.chain()


def test_external_name_to_uncollected_namespace_still_leads_to_seldon() -> None:
    snap = snapshot(service("alias", "edge", type="ExternalName", externalName="seldon-mesh.models.svc.cluster.local"))
    res = resolve_backend(snap, "edge", "alias", PortRef(number=80))
    assert res.stop is Stop.NOT_COLLECTED
    assert res.final.port == PortRef(number=80)  # no ports on the ExternalName: the backend port passes through
    assert envoy_namespace(snap, res) == "models"


def test_missing_service_only_counts_where_covered() -> None:
    covered = snapshot(service("other", "serving", selector={"a": "b"}, ports=[{"port": 1}]))
    assert resolve_backend(covered, "serving", "seldon-mesh", PortRef(number=80)).stop is Stop.SERVICE_MISSING
    assert resolve_backend(covered, "elsewhere", "seldon-mesh", PortRef(number=80)).stop is Stop.NOT_COLLECTED
    told = snapshot(
        service("other", "serving", selector={"a": "b"}, ports=[{"port": 1}]),
        BundleMetadata(namespaces=("serving", "elsewhere"), kinds=("Service",)),
    )
    assert resolve_backend(told, "elsewhere", "seldon-mesh", PortRef(number=80)).stop is Stop.SERVICE_MISSING


def test_port_problems() -> None:
    snap = snapshot(
        service("seldon-mesh", "serving", selector=ENVOY_SELECTOR, ports=MESH_PORTS)
        + "---\n"
        + service("alias", "edge", type="ExternalName", externalName="seldon-mesh.serving.svc", ports=[{"port": 80}])
    )
    assert resolve_backend(snap, "serving", "seldon-mesh", PortRef(number=8000)).stop is Stop.PORT_MISSING
    # ingress-nginx also matches a backend port against the targetPort and the port name.
    assert resolve_backend(snap, "serving", "seldon-mesh", PortRef(name="http")).stop is Stop.SERVICE
    named = resolve_backend(snap, "edge", "alias", PortRef(name="web"))
    assert named.stop is Stop.PORT_MISSING and "port name 'web'" in named.detail
    through = resolve_backend(snap, "edge", "alias", PortRef(number=80))
    assert through.stop is Stop.SERVICE and through.final.name == "seldon-mesh"


def test_external_name_loop_and_outside_host() -> None:
    snap = snapshot(
        service("a", "x", type="ExternalName", externalName="b.x.svc.cluster.local")
        + "---\n"
        + service("b", "x", type="ExternalName", externalName="a.x.svc.cluster.local")
        + "---\n"
        + service("out", "x", type="ExternalName", externalName="api.example.com")
    )
    assert resolve_backend(snap, "x", "a", PortRef(number=80)).stop is Stop.LOOP
    outside = resolve_backend(snap, "x", "out", PortRef(number=443))
    assert outside.stop is Stop.EXTERNAL and envoy_namespace(snap, outside) is None


def test_seldon_backends_skip_other_controllers() -> None:
    snap = snapshot(
        INGRESSES.replace("name: models", "name: seldon-mesh").replace("name: x, port", "name: seldon-mesh, port")
        + "---\n"
        + service("seldon-mesh", "edge", selector=ENVOY_SELECTOR, ports=MESH_PORTS)
    )
    routed = seldon_backends(snap)
    assert [(sb.backend.ingress.name, sb.namespace) for sb in routed] == [("api", "edge")]
    assert len(seldon_backends(snap, nginx_only=False)) == 2


def test_ready_endpoints_from_endpoints_and_slices() -> None:
    snap = snapshot(
        """
apiVersion: v1
kind: Endpoints
metadata: {name: svc, namespace: ns}
subsets:
- notReadyAddresses: [{ip: 10.0.0.1}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-abc, namespace: ns, labels: {kubernetes.io/service-name: svc}}
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: false}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: up-abc, namespace: ns, labels: {kubernetes.io/service-name: up}}
endpoints:
- addresses: [10.0.0.2]
"""
    )
    state = ready_endpoints(snap, "ns", "svc")
    assert state is not None and state[0] is False
    assert any("0 ready address(es), 1 not ready" in what for _, what in state[1])
    up = ready_endpoints(snap, "ns", "up")
    assert up is not None and up[0] is True  # a missing ready condition means ready
    assert ready_endpoints(snap, "ns", "absent") is None


# --- controllers and endpoints ---------------------------------------------------------------------------------------

CONTROLLERS = """
apiVersion: v1
kind: Pod
metadata:
  name: public-controller-abc
  namespace: ingress-public
  labels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
spec:
  containers:
  - name: controller
    args: [/nginx-ingress-controller, --ingress-class=public]
    ports: [{name: http, containerPort: 80}]
status: {phase: Running, podIP: 10.1.0.5}
---
apiVersion: v1
kind: Pod
metadata:
  name: internal-controller-def
  namespace: ingress-internal
  labels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
spec:
  containers:
  - name: controller
    args: [/nginx-ingress-controller, --ingress-class=internal]
status: {phase: Running, podIP: 10.1.0.6}
---
apiVersion: v1
kind: Pod
metadata:
  name: ingress-nginx-admission-create-x1
  namespace: ingress-public
  labels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: admission-webhook}
spec: {containers: [{name: create}]}
status: {phase: Succeeded}
"""


def test_controllers_for_follow_the_ingress_class() -> None:
    from mlops_trace.analysis.ingress import controller_pods

    snap = snapshot(CONTROLLERS)
    pods = controller_pods(snap)
    assert sorted(p.name for p in pods) == ["internal-controller-def", "public-controller-abc"]
    ingress = kube(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: app}\n"
        "spec: {ingressClassName: internal}\n"
    )[0]
    assert [c.name for c in controllers_for(snap, ingress, pods)] == ["internal-controller-def"]
    unknown = kube(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: j, namespace: app}\n"
        "spec: {ingressClassName: nginx}\n"
    )[0]
    # Nobody claims class nginx: every controller stays a candidate rather than none.
    assert len(controllers_for(snap, unknown, pods)) == 2


WORKLOADS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: seldon-scheduler, namespace: ml}
spec:
  replicas: 1
  template:
    metadata: {labels: {app.kubernetes.io/name: seldon-scheduler}}
    spec:
      containers:
      - name: scheduler
        ports: [{name: agent, containerPort: 19005}, {name: xds, containerPort: 9002}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: seldon-envoy, namespace: ml}
spec:
  replicas: 0
  template:
    metadata: {labels: {app.kubernetes.io/name: seldon-envoy}}
    spec: {containers: [{name: envoy}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: mlserver-0
  namespace: ml
  labels: {app.kubernetes.io/name: seldon-server, seldon-server-name: mlserver}
spec:
  containers:
  - name: agent
    ports: [{name: http, containerPort: 9001}, {name: grpc, containerPort: 9501}]
  - name: mlserver
    ports: [{name: http-alt, containerPort: 9000}]
status: {phase: Running, podIP: not-an-ip}
"""


def test_workload_members_fall_back_to_templates() -> None:
    from mlops_trace.snapshot.roles import Role, pod_role

    snap = snapshot(WORKLOADS)

    def role(wanted: Role) -> Any:
        return lambda obj, labels: pod_role(obj.name, labels) is wanted

    schedulers = workload_members(snap, "ml", role(Role.SCHEDULER))
    assert [o.ref for o in schedulers] == ["StatefulSet/seldon-scheduler"]
    assert workload_members(snap, "ml", role(Role.ENVOY)) == []  # scaled to 0
    (scheduler,) = pod_endpoints(snap, schedulers)
    assert scheduler.from_template and scheduler.endpoint.ip is None
    assert scheduler.endpoint.labels == {"app.kubernetes.io/name": "seldon-scheduler"}
    assert container_port(scheduler.source, None, ("agent",), 9005) == 19005
    assert container_port(scheduler.source, None, ("missing",), 9005) == 9005
    (server,) = pod_endpoints(snap, workload_members(snap, "ml", role(Role.AGENT)))
    assert server.label == "mlserver-0" and server.endpoint.ip is None  # a bad podIP is dropped, not fatal
    assert container_port(server.source, "agent", ("http",), 1) == 9001
    assert container_port(server.source, "mlserver", ("http",), 1) == 1


def test_namespace_labels_unknown() -> None:
    policy = kube(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: ml}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {purpose: ingress}}}]
"""
    )
    by_name_only = kube(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: q, namespace: ml}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
"""
    )
    empty = snapshot("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n")
    assert namespace_labels_unknown(empty, policy, "ingress", "ingress-nginx")
    assert not namespace_labels_unknown(empty, by_name_only, "ingress", "ingress-nginx")
    assert not namespace_labels_unknown(empty, policy, "egress", "ingress-nginx")
    known = snapshot("apiVersion: v1\nkind: Namespace\nmetadata: {name: ingress-nginx, labels: {purpose: web}}\n")
    assert not namespace_labels_unknown(known, policy, "ingress", "ingress-nginx")
