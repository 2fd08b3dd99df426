"""The collectors against a scriptable API server: 403/404 recorded, logs queried as asked, Envoy admin over a real
websocket port-forward, the pod-proxy fallback, --envoy-admin URLs, pagination, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_trace.collect.bundle_writer import collect_bundle, collect_to_dir
from mlops_trace.collect.envoy import AdminUrl, EnvoyPod, assign_urls, parse_admin_urls
from mlops_trace.kinds import COLLECTED_KINDS
from mlops_trace.collect.logs import parse_since
from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.snapshot.bundle import load_bundle_dir, open_bundle
from tests.collect.fake_apiserver import FakeApi, serving, write_kubeconfig

NS = "serving"
ENVOY = "seldon-envoy-7b9c-abcde"
ENVOY_BASE = f"/api/v1/namespaces/{NS}/pods/{ENVOY}"
CONFIG_DUMP = {
    "configs": [
        {
            "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "dynamic_route_configs": [{"route_config": {"name": "listener_0", "virtual_hosts": []}}],
            # Long enough for the fake to send it in several chunks.
            "padding": ["x" * 100] * 40,
        }
    ]
}
STATS = "http.seldon_http.no_route: 0\ncluster.iris_1_http.upstream_rq_total: 7\n"
FORBIDDEN_NETPOL = (
    'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:mlops-trace:mlops-trace" cannot '
    'list resource "networkpolicies" in API group "networking.k8s.io" in the namespace "serving"'
)


def _pod(
    name: str, labels: dict[str, str], containers: list[str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": c} for c in containers]},
        "status": {"phase": "Running"},
    }


def base_api() -> FakeApi:
    api = FakeApi()
    api.json("/version", {"major": "1", "minor": "31", "gitVersion": "v1.31.2"})
    api.json(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": NS}})
    for spec in COLLECTED_KINDS:
        if spec.crd and spec.group == "metallb.io":
            continue  # MetalLB is not installed: its path answers 404
        for namespace in spec.list_scopes([NS], all_namespaces=False):
            api.items(spec.list_path(namespace), spec.kind, [])
    scheduler = _pod("seldon-scheduler-0", {"app.kubernetes.io/name": "seldon-scheduler"}, ["scheduler"])
    scheduler["spec"]["containers"][0]["env"] = [{"name": "SELDON_TOKEN", "value": "tok-planted-1234"}]
    pods = [
        scheduler,
        _pod(ENVOY, {"app.kubernetes.io/name": "seldon-envoy"}, ["envoy"]),
        _pod("mlserver-0", {"seldon-server-name": "mlserver"}, ["rclone", "agent", "mlserver"]),
        _pod(
            "seldon-v2-controller-manager-5d-xyz",
            {},
            ["manager"],
            annotations={"mlops-trace.io/synthesized": "true"},
        ),
    ]
    api.items(f"/api/v1/namespaces/{NS}/pods", "Pod", pods)
    api.status(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies", 403, FORBIDDEN_NETPOL)
    api.items(
        f"/apis/mlops.seldon.io/v1alpha1/namespaces/{NS}/models",
        "Model",
        [{"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Model", "metadata": {"name": "iris", "namespace": NS}}],
    )
    api.text(
        f"/api/v1/namespaces/{NS}/pods/seldon-scheduler-0/log",
        'level=info msg="x"\nAuthorization: Bearer planted-bearer-5678\n',
    )
    api.text(f"/api/v1/namespaces/{NS}/pods/mlserver-0/log", "Subscribed to scheduler\n")
    api.text(f"/api/v1/namespaces/{NS}/pods/seldon-v2-controller-manager-5d-xyz/log", "Connected to scheduler\n")
    api.text(f"{ENVOY_BASE}/log", "[info] all dependencies initialized. starting workers\n")
    api.admin = {"/config_dump": json.dumps(CONFIG_DUMP).encode(), "/stats": STATS.encode()}
    return api


def _collect(tmp_path: Path, api: FakeApi, **options: Any) -> tuple[Path, dict[str, Any]]:
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, token=options.pop("token", None))
        target = LiveTarget(
            namespaces=options.pop("namespaces", (NS,)),
            kubeconfig=str(kubeconfig),
            request_timeout=options.pop("request_timeout", 5.0),
            **options,
        )
        root = tmp_path / "bundle"
        root.mkdir()
        collect_to_dir(target, root)
    return root, yaml.safe_load((root / "bundle.yaml").read_text(encoding="utf-8"))


def test_forbidden_and_absent_kinds_are_recorded_and_the_rest_is_collected(tmp_path: Path) -> None:
    api = base_api()
    root, meta = _collect(tmp_path, api)
    assert meta["forbidden"] == [
        {
            "permission": "list networkpolicies in namespace serving (networking.k8s.io)",
            "verb": "list",
            "resource": "networkpolicies",
            "group": "networking.k8s.io",
            "namespace": NS,
            "kind": "NetworkPolicy",
            "message": FORBIDDEN_NETPOL,
        }
    ]
    assert "NetworkPolicy" not in meta["kinds"]
    assert {"Namespace", "Pod", "Service", "Model", "IngressClass"} <= set(meta["kinds"])
    assert meta["absent_kinds"] == [
        {
            "kind": "IPAddressPool",
            "apiVersion": "metallb.io/v1beta1",
            "reason": "CRD not installed",
            "path": "/apis/metallb.io/v1beta1/ipaddresspools",
        }
    ]
    assert meta["namespaces"] == [NS] and meta["server_version"] == "v1.31.2" and meta["context"] == "fake"
    snap = load_bundle_dir(root)
    assert {o.name for o in snap.objects_of("Pod")} == {"seldon-scheduler-0", ENVOY, "mlserver-0"}
    assert snap.get("Model", NS, "iris") is not None
    assert snap.get("Namespace", None, NS) is not None
    pods = yaml.safe_load((root / "kube/pods.yaml").read_text(encoding="utf-8"))
    assert pods["kind"] == "List" and all(p["apiVersion"] == "v1" and p["kind"] == "Pod" for p in pods["items"])
    assert all(method == "GET" for method, _ in api.requests)


def test_synthesized_objects_are_left_out_but_their_logs_are_kept(tmp_path: Path) -> None:
    root, meta = _collect(tmp_path, base_api())
    assert "seldon-v2-controller-manager-5d-xyz" not in (root / "kube/pods.yaml").read_text(encoding="utf-8")
    assert meta["synthesized_skipped"] == [f"Pod/{NS}/seldon-v2-controller-manager-5d-xyz"]
    log = root / f"logs/{NS}/seldon-v2-controller-manager-5d-xyz/manager.log"
    assert log.read_text(encoding="utf-8") == "Connected to scheduler\n"


def test_logs_of_seldon_pods_with_tail_and_since(tmp_path: Path) -> None:
    api = base_api()
    root, meta = _collect(tmp_path, api, since="1h30m", tail=50)
    written = sorted(p.relative_to(root).as_posix() for p in (root / "logs").rglob("*.log"))
    assert written == [
        f"logs/{NS}/mlserver-0/agent.log",
        f"logs/{NS}/mlserver-0/mlserver.log",
        f"logs/{NS}/mlserver-0/rclone.log",  # every container of a Seldon pod
        f"logs/{NS}/{ENVOY}/envoy.log",
        f"logs/{NS}/seldon-scheduler-0/scheduler.log",
        f"logs/{NS}/seldon-v2-controller-manager-5d-xyz/manager.log",
    ]
    log_paths = [path for _, path in api.requests if path.split("?")[0].endswith("/log")]
    assert f"{ENVOY_BASE}/log?container=envoy&tailLines=50&sinceSeconds=5400" in log_paths
    assert f"/api/v1/namespaces/{NS}/pods/mlserver-0/log?container=rclone&tailLines=50&sinceSeconds=5400" in log_paths
    assert not any("previous=" in p for p in log_paths)  # nothing restarted
    scheduler_log = (root / f"logs/{NS}/seldon-scheduler-0/scheduler.log").read_text(encoding="utf-8")
    assert "planted-bearer-5678" not in scheduler_log and "***REDACTED***" in scheduler_log
    assert meta["logs"] == {"tail_lines": 50, "since_seconds": 5400}


def test_default_tail_is_10000_lines(tmp_path: Path) -> None:
    api = base_api()
    _collect(tmp_path, api)
    assert any(path.endswith("/log?container=scheduler&tailLines=10000") for _, path in api.requests)


def test_envoy_admin_over_a_websocket_port_forward(tmp_path: Path) -> None:
    api = base_api()
    root, meta = _collect(tmp_path, api)
    folder = root / f"envoy/{NS}/{ENVOY}"
    assert json.loads((folder / "config_dump.json").read_text(encoding="utf-8")) == CONFIG_DUMP
    assert (folder / "stats.txt").read_text(encoding="utf-8") == STATS
    assert meta["envoy_sources"] == {
        f"{NS}/{ENVOY}": {"config_dump": "port-forward :9901", "stats": "port-forward :9901"}
    }
    assert meta["envoy_errors"] == []
    assert ("GET", f"{ENVOY_BASE}/portforward?ports=9901") in api.requests
    assert not any("/proxy/" in path for _, path in api.requests)
    snap = load_bundle_dir(root)
    assert snap.envoy_configs(NS) and snap.envoys[0].stats is not None


def test_refused_port_forward_falls_back_to_the_pod_proxy(tmp_path: Path) -> None:
    api = base_api()
    api.portforward_status = 403
    api.json(f"{ENVOY_BASE}:9901/proxy/config_dump", CONFIG_DUMP)
    api.status(f"{ENVOY_BASE}:9901/proxy/stats", 503, "dial tcp 10.0.0.7:9901: connect: connection refused")
    api.text(f"{ENVOY_BASE}:9003/proxy/stats", STATS)
    root, meta = _collect(tmp_path, api)
    assert meta["envoy_sources"][f"{NS}/{ENVOY}"] == {"config_dump": "pods/proxy :9901", "stats": "pods/proxy :9003"}
    assert [f["resource"] for f in meta["forbidden"]] == ["networkpolicies", "pods/portforward"]
    assert meta["forbidden"][1]["permission"] == f"get and create pods/portforward in namespace {NS} (core)"
    assert (root / f"envoy/{NS}/{ENVOY}/stats.txt").read_text(encoding="utf-8") == STATS
    assert meta["envoy_errors"] == []


def test_unreadable_envoy_admin_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    api = base_api()
    api.portforward_status = 404
    root, meta = _collect(tmp_path, api)
    assert not (root / "envoy").exists()
    errors = {e["what"]: e["error"] for e in meta["envoy_errors"]}
    assert set(errors) == {"config_dump", "stats"}
    assert errors["config_dump"].startswith("port-forward: websocket upgrade refused: HTTP 404")
    assert "pods/proxy :9901: HTTP 404" in errors["config_dump"]
    assert "pods/proxy :9003: HTTP 404" in errors["stats"]
    assert (root / "kube/pods.yaml").is_file()


def test_envoy_admin_url_is_read_directly(tmp_path: Path) -> None:
    admin = FakeApi()
    admin.json("/config_dump", CONFIG_DUMP)
    admin.text("/stats", STATS)
    api = base_api()
    with serving(admin) as admin_url:
        root, meta = _collect(tmp_path, api, envoy_admin=(admin_url,))
    assert meta["envoy_sources"][f"{NS}/{ENVOY}"] == {"config_dump": admin_url, "stats": admin_url}
    assert json.loads((root / f"envoy/{NS}/{ENVOY}/config_dump.json").read_text(encoding="utf-8")) == CONFIG_DUMP
    assert not any("portforward" in path for _, path in api.requests)


def test_admin_url_assignment() -> None:
    one, two = EnvoyPod("a", "seldon-envoy-1"), EnvoyPod("b", "seldon-envoy-2")
    assert parse_admin_urls(["http://127.0.0.1:9901/", "b/seldon-envoy-2=https://e.example:9901"]) == [
        AdminUrl("http://127.0.0.1:9901"),
        AdminUrl("https://e.example:9901", "b", "seldon-envoy-2"),
    ]
    assert assign_urls(parse_admin_urls(["http://h:1"]), [one]) == {one: "http://h:1"}
    assert assign_urls(parse_admin_urls(["http://h:1", "b/seldon-envoy-2=http://h:2"]), [one, two]) == {
        one: "http://h:1",
        two: "http://h:2",
    }
    with pytest.raises(UsageError, match="NAMESPACE/POD=URL"):
        assign_urls(parse_admin_urls(["http://h:1"]), [one, two])
    with pytest.raises(UsageError, match="http:// or https://"):
        parse_admin_urls(["127.0.0.1:9901"])


def test_lists_follow_continue_tokens(tmp_path: Path) -> None:
    api = base_api()
    services = [{"metadata": {"name": f"svc-{i}", "namespace": NS}} for i in range(5)]
    api.pages[f"/api/v1/namespaces/{NS}/services"] = [services[:2], services[2:4], services[4:]]
    root, _ = _collect(tmp_path, api)
    listed = yaml.safe_load((root / "kube/services.yaml").read_text(encoding="utf-8"))["items"]
    assert [s["metadata"]["name"] for s in listed] == [f"svc-{i}" for i in range(5)]
    assert all(s["kind"] == "Service" and s["apiVersion"] == "v1" for s in listed)


def test_secret_objects_are_never_written(tmp_path: Path) -> None:
    api = base_api()
    api.items(
        f"/api/v1/namespaces/{NS}/services",
        "Service",
        [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS}, "data": {"x": "c2VjcmV0"}}],
    )
    root, _ = _collect(tmp_path, api)
    assert not (root / "kube/services.yaml").exists()
    assert "c2VjcmV0" not in "".join(p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file())


def test_bearer_token_from_the_kubeconfig_is_sent(tmp_path: Path) -> None:
    api = base_api()
    _collect(tmp_path, api, token="kubeconfig-token-abc")
    assert api.authorizations and set(api.authorizations) == {"Bearer kubeconfig-token-abc"}


def test_all_namespaces_lists_cluster_wide(tmp_path: Path) -> None:
    api = FakeApi()
    api.json("/version", {"gitVersion": "v1.31.2"})
    for spec in COLLECTED_KINDS:
        api.items(spec.list_path(None), spec.kind, [])
    api.items("/api/v1/namespaces", "Namespace", [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}])
    root, meta = _collect(tmp_path, api, namespaces=(), all_namespaces=True)
    assert meta["namespaces"] == "all"
    assert not any("/namespaces/" in path for _, path in api.requests)
    assert [n["metadata"]["name"] for n in yaml.safe_load((root / "kube/namespaces.yaml").read_text())["items"]] == [
        "a",
        "b",
    ]


def test_unknown_namespace_is_a_usage_error(tmp_path: Path) -> None:
    api = base_api()
    with pytest.raises(UsageError, match="namespace typo not found"):
        _collect(tmp_path, api, namespaces=(NS, "typo"))


def test_rejected_credentials_are_a_cluster_error(tmp_path: Path) -> None:
    api = FakeApi()
    api.status("/version", 401, "Unauthorized")
    with pytest.raises(ClusterError, match=r"rejected our credentials \(401 Unauthorized\)"):
        _collect(tmp_path, api)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namespaces": ()}, "say what to read"),
        ({"namespaces": ("a",), "all_namespaces": True}, "do not go together"),
        ({"since": "10"}, "needs a unit"),
        ({"since": "soon"}, "duration"),
        ({"request_timeout": 0.0}, "--request-timeout"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _collect(tmp_path, base_api(), **options)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("500ms", 1)]
)
def test_since_durations(text: str, seconds: int) -> None:
    assert parse_since(text) == seconds


def test_tarball_output_reads_back_as_a_bundle(tmp_path: Path) -> None:
    api = base_api()
    out = tmp_path / "out.tar.gz"
    with serving(api) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        result = collect_bundle(LiveTarget(namespaces=(NS,), kubeconfig=str(kubeconfig)), out)
    assert result.objects == 5 and result.logs == 6 and result.envoys == 1  # rclone too
    with open_bundle(out) as snap:
        assert snap.metadata.namespaces == (NS,)
        assert "Pod" in snap.metadata.kinds
        assert {log.container for log in snap.logs} == {"agent", "mlserver", "rclone", "envoy", "scheduler", "manager"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mlops-trace")] == []


def test_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not an empty directory"):
        collect_bundle(LiveTarget(namespaces=(NS,)), out)
