"""The Kubernetes objects of a bundle, as `kubectl get -o yaml` lists under `kube/`: the Namespaces, the controller
manager, and per Seldon namespace its pods, Services, Endpoints, StatefulSets, Seldon resources (SeldonRuntime,
Server, Experiments, Models: some left unschedulable) and NetworkPolicies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.generate.layout import (
    CONTROL_NAMESPACE,
    CONTROLLER_POD,
    START,
    Namespace,
    envoy_pod,
    kube_time,
    namespace_index,
    pod_network,
)


def _dump(path: Path, objects: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects}
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle, Dumper=dumper, sort_keys=False)


def _meta(name: str, namespace: str | None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = kube_time(START)
    meta.update(extra)
    return meta


def _ready(reason: str = "ModelAvailable") -> list[dict[str, str]]:
    stamp = kube_time(START + timedelta(minutes=5))
    return [
        {"lastTransitionTime": stamp, "reason": reason, "status": "True", "type": "ModelReady"},
        {"lastTransitionTime": stamp, "status": "True", "type": "Ready"},
    ]


def _model(space: Namespace, name: str) -> dict[str, Any]:
    status: dict[str, Any] = {"availableReplicas": 1, "replicas": 1, "selector": "server=mlserver"}
    if name in space.unschedulable:
        stamp = kube_time(START + timedelta(minutes=5))
        status = {
            "availableReplicas": 0,
            "conditions": [
                {
                    "lastTransitionTime": stamp,
                    "reason": "ScheduleFailed",
                    "message": "Failed to schedule model as no matching servers are available",
                    "status": "False",
                    "type": "ModelReady",
                },
                {"lastTransitionTime": stamp, "status": "False", "type": "Ready"},
            ],
        }
    else:
        status["conditions"] = _ready()
    requirements = ["gpu-a100"] if name in space.unschedulable else ["sklearn"]
    return {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": _meta(name, space.name, generation=1, finalizers=["seldon.model.finalizer"]),
        "spec": {"requirements": requirements, "storageUri": f"s3://models/{space.name}/{name}/2025-11-01"},
        "status": status,
    }


def _experiment(space: Namespace, name: str, baseline: str, candidate: str) -> dict[str, Any]:
    stamp = kube_time(START + timedelta(minutes=9))
    return {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Experiment",
        "metadata": _meta(name, space.name, generation=1),
        "spec": {
            "default": baseline,
            "candidates": [{"name": baseline, "weight": 70}, {"name": candidate, "weight": 30}],
        },
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": stamp,
                    "message": "Candidates ready",
                    "status": "True",
                    "type": "CandidatesReady",
                },
                {"lastTransitionTime": stamp, "status": "True", "type": "Ready"},
            ]
        },
    }


def _container(
    name: str,
    image: str,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    ports: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if args:
        container["args"] = args
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if ports:
        container["ports"] = [{"containerPort": p, "name": n, "protocol": "TCP"} for n, p in ports]
    return container


def _server_pod_spec(namespace: str) -> dict[str, Any]:
    return {
        "containers": [
            _container("rclone", "docker.io/seldonio/seldon-rclone:2.10.1", ports=[("rclone", 5572)]),
            _container(
                "agent",
                "docker.io/seldonio/seldon-agent:2.10.1",
                env={
                    "SELDON_SERVER_CAPABILITIES": "mlserver,alibi-detect,lightgbm,mlflow,python,sklearn,xgboost",
                    "SELDON_SCHEDULER_HOST": "seldon-scheduler",
                    "SELDON_SCHEDULER_PORT": "9005",
                    "POD_NAMESPACE": namespace,
                },
                ports=[("agent-http", 9001), ("agent-grpc", 9501)],
            ),
            _container("mlserver", "docker.io/seldonio/mlserver:1.7.1", ports=[("http", 9000), ("grpc", 9500)]),
        ]
    }


def _pod(name: str, namespace: str, labels: dict[str, str], spec: dict[str, Any], ip: str) -> dict[str, Any]:
    stamp = kube_time(START)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, namespace, labels=labels),
        "spec": spec,
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": stamp}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": True,
                    "restartCount": 0,
                    "image": c["image"],
                    "state": {"running": {"startedAt": stamp}},
                }
                for c in spec["containers"]
            ],
        },
    }


def _service(
    name: str, namespace: str, selector: dict[str, str], ports: list[tuple[str, int, int]], ip: str, lb: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer" if lb else "ClusterIP",
        "clusterIP": ip,
        "selector": selector,
        "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, p, t in ports],
    }
    status: dict[str, Any] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]} if lb else {}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace), "spec": spec, "status": status}


def _endpoints(name: str, namespace: str, ips: list[str], ports: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _meta(name, namespace),
        "subsets": [
            {
                "addresses": [{"ip": ip} for ip in ips],
                "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
            }
        ],
    }


def write_namespace(root: Path, space: Namespace) -> None:
    """One Seldon namespace: its pods, Services, Endpoints, StatefulSets, Seldon resources, NetworkPolicies, Models."""
    ns = space.name
    index = namespace_index(ns)
    net = pod_network(ns)
    kube = root / "kube" / ns
    envoy_pod_name = envoy_pod(ns)
    server_labels = {"app.kubernetes.io/name": "seldon-server", "seldon-server-name": "mlserver"}
    pods = [
        _pod(
            f"mlserver-{i}",
            ns,
            {**server_labels, "statefulset.kubernetes.io/pod-name": f"mlserver-{i}"},
            _server_pod_spec(ns),
            f"{net}.{10 + i}",
        )
        for i in range(space.replicas)
    ]
    pods.append(
        _pod(
            "seldon-scheduler-0",
            ns,
            {"app.kubernetes.io/name": "seldon-scheduler"},
            {
                "containers": [
                    _container(
                        "scheduler",
                        "docker.io/seldonio/seldon-scheduler:2.10.1",
                        ports=[("xds", 9002), ("scheduler", 9004), ("agent", 9005)],
                    )
                ]
            },
            f"{net}.2",
        )
    )
    pods.append(
        _pod(
            envoy_pod_name,
            ns,
            {"app.kubernetes.io/name": "seldon-envoy"},
            {
                "containers": [
                    _container(
                        "envoy", "docker.io/seldonio/seldon-envoy:2.10.1", ports=[("http", 9000), ("admin", 9901)]
                    )
                ]
            },
            f"{net}.3",
        )
    )
    _dump(kube / "pods.yaml", pods)
    services = [
        _service(
            "seldon-mesh",
            ns,
            {"app.kubernetes.io/name": "seldon-envoy"},
            [("data", 80, 9000)],
            f"10.96.{index % 250}.10",
        ),
        _service(
            "seldon-scheduler",
            ns,
            {"app.kubernetes.io/name": "seldon-scheduler"},
            [("xds", 9002, 9002), ("scheduler", 9004, 9004), ("agent", 9005, 9005)],
            f"10.96.{index % 250}.11",
        ),
    ]
    _dump(kube / "services.yaml", services)
    _dump(
        kube / "endpoints.yaml",
        [
            _endpoints("seldon-mesh", ns, [f"{net}.3"], [("data", 9000)]),
            _endpoints("seldon-scheduler", ns, [f"{net}.2"], [("xds", 9002), ("scheduler", 9004), ("agent", 9005)]),
        ],
    )
    workloads = [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta("mlserver", ns, labels=server_labels),
            "spec": {
                "replicas": space.replicas,
                "selector": {"matchLabels": {"seldon-server-name": "mlserver"}},
                "template": {"metadata": {"labels": server_labels}, "spec": _server_pod_spec(ns)},
            },
            "status": {"replicas": space.replicas, "readyReplicas": space.replicas},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta("seldon-scheduler", ns, labels={"app.kubernetes.io/name": "seldon-scheduler"}),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "seldon-scheduler"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "seldon-scheduler"}},
                    "spec": {"containers": [_container("scheduler", "docker.io/seldonio/seldon-scheduler:2.10.1")]},
                },
            },
            "status": {"replicas": 1, "readyReplicas": 1},
        },
    ]
    _dump(kube / "statefulsets.yaml", workloads)
    _dump(
        kube / "seldon.yaml",
        [
            {
                "apiVersion": "mlops.seldon.io/v1alpha1",
                "kind": "SeldonRuntime",
                "metadata": _meta("seldon", ns),
                "spec": {"seldonConfig": "default", "overrides": [{"name": "seldon-scheduler", "replicas": 1}]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
            {
                "apiVersion": "mlops.seldon.io/v1alpha1",
                "kind": "Server",
                "metadata": _meta("mlserver", ns),
                "spec": {"replicas": space.replicas, "serverConfig": "mlserver"},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "replicas": space.replicas,
                    "loadedModels": len(space.models),
                },
            },
            *(_experiment(space, *exp) for exp in space.experiments),
        ],
    )
    _dump(
        kube / "networkpolicies.yaml",
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("default-deny", ns),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("allow-same-namespace", ns),
                "spec": {
                    "podSelector": {},
                    "ingress": [{"from": [{"podSelector": {}}]}],
                    "egress": [{"to": [{"podSelector": {}}]}],
                    "policyTypes": ["Ingress", "Egress"],
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("allow-dns", ns),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                            "to": [
                                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
                            ],
                        }
                    ],
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("allow-ingress-nginx", ns),
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
                            ],
                            "ports": [{"port": 9000, "protocol": "TCP"}],
                        }
                    ],
                },
            },
        ],
    )
    _dump(kube / "models.yaml", [_model(space, name) for name in space.models])


def write_control_plane(root: Path, spaces: list[Namespace]) -> None:
    """The Namespace list and the clusterwide controller manager (its Deployment and pod)."""
    names = [CONTROL_NAMESPACE, "ingress-nginx", "kube-system"] + [s.name for s in spaces]
    _dump(
        root / "kube" / "namespaces.yaml",
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": _meta(n, None, labels={"kubernetes.io/metadata.name": n}),
            }
            for n in names
        ],
    )
    labels = {"app.kubernetes.io/name": "seldon-v2-controller-manager", "control-plane": "seldon-controller-manager"}
    spec = {
        "containers": [
            _container(
                "manager",
                "docker.io/seldonio/seldonv2-controller:2.10.1",
                args=[
                    "--health-probe-bind-address=:8081",
                    "--metrics-bind-address=:8080",
                    "--leader-elect",
                    "--namespace=$(POD_NAMESPACE)",
                    "--clusterwide=true",
                ],
                env={"CLUSTERWIDE": "true", "POD_NAMESPACE": CONTROL_NAMESPACE},
            )
        ]
    }
    _dump(
        root / "kube" / CONTROL_NAMESPACE / "controller.yaml",
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": _meta("seldon-v2-controller-manager", CONTROL_NAMESPACE, labels=labels),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": spec},
                },
                "status": {"replicas": 1, "readyReplicas": 1},
            },
            _pod(CONTROLLER_POD, CONTROL_NAMESPACE, labels, spec, "10.44.0.5"),
        ],
    )
