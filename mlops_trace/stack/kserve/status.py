"""`stack status --profile kserve` and `stack logs --profile kserve`: what runs where, read from the KServe stack's
`state.json` and the processes themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_trace.errors import UsageError
from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.state import read_state
from mlops_trace.stack.kserve.topology import (
    ISVC,
    ISVC_HOST,
    MODEL,
    NAMESPACE,
    PREDICTOR,
    TRANSFORMER,
    KPlan,
    parse_kfaults,
    revision,
)
from mlops_trace.stack.kubeview import refresh_admin
from mlops_trace.stack.procs import alive

# What each process is, for people reading `stack status` (the queue-proxy is ours, not Knative's Go binary).
ROLES = {
    "kserve-container": "KServe model server (kserve 0.21.0)",
    "queue-proxy": "queue-proxy stand-in (ours: Knative's timeouts, errors and request log)",
    "istio-ingressgateway": "Envoy 1.40 as istio-ingressgateway / knative-local-gateway",
    "kubeview": "Kubernetes API over the bundle (bundle serve)",
}


def _role(name: str) -> str:
    return ROLES.get(name.rsplit("/", 1)[-1], name)


def _logs(paths: KServePaths, plan: KPlan) -> dict[str, str]:
    logs = {"storage_initializer": str(paths.container_log(revision(PREDICTOR, 1), "storage-initializer"))}
    for index, rev in enumerate(plan.predictor_revisions):
        prefix = "predictor" if index == 0 else "canary"
        logs[prefix] = str(paths.container_log(rev, "kserve-container"))
        logs[f"{prefix}_queue_proxy"] = str(paths.container_log(rev, "queue-proxy"))
        if index > 0:
            logs[f"{prefix}_storage_initializer"] = str(paths.container_log(rev, "storage-initializer"))
    logs["transformer"] = str(paths.container_log(revision(TRANSFORMER, 1), "kserve-container"))
    logs["transformer_queue_proxy"] = str(paths.container_log(revision(TRANSFORMER, 1), "queue-proxy"))
    logs["gateway"] = str(paths.gateway_log)
    return logs


def status(state_dir: Path | None, *, refresh: bool = True) -> dict[str, Any]:
    """The status document (`stack status --profile kserve -o json`)."""
    paths = KServePaths.resolve(state_dir)
    state = read_state(paths.state_file)
    if state is None:
        return {"profile": "kserve", "running": False, "state_dir": str(paths.root), "faults": [], "processes": {}}
    processes = {p.name: {"pid": p.pid, "alive": alive(p), "log": p.log, "role": _role(p.name)}
                 for p in state.processes}
    running = bool(processes) and all(p["alive"] for p in processes.values())
    ports = state.ports.as_dict()
    if refresh and processes.get("istio-ingressgateway", {}).get("alive"):
        refresh_admin(f"http://127.0.0.1:{ports['gateway_admin']}", paths.envoy_admin_dir)
    plan = KPlan(parse_kfaults(state.faults))
    gateway = f"http://127.0.0.1:{ports['gateway_http']}"
    entry = {"gateway": gateway, "local_gateway": f"http://127.0.0.1:{ports['local_gateway']}",
             "transformer_queue_proxy": f"http://127.0.0.1:{ports['transformer_queue']}",
             "transformer": f"http://127.0.0.1:{ports['transformer_http']}",
             "transformer_grpc": f"127.0.0.1:{ports['transformer_grpc']}"}
    if plan.predictor_runs:
        entry["predictor_queue_proxy"] = f"http://127.0.0.1:{ports['predictor_queue']}"
        entry["predictor"] = f"http://127.0.0.1:{ports['predictor_http']}"
        entry["predictor_grpc"] = f"127.0.0.1:{ports['predictor_grpc']}"
    if plan.canary:
        entry["canary_queue_proxy"] = f"http://127.0.0.1:{ports['canary_queue']}"
        entry["canary"] = f"http://127.0.0.1:{ports['canary_http']}"
        entry["canary_grpc"] = f"127.0.0.1:{ports['canary_grpc']}"
    return {
        "profile": "kserve",
        "running": running,
        "partly_running": not running and any(p["alive"] for p in processes.values()),
        "state_dir": state.state_dir,
        "started_at": state.started_at,
        "ready_seconds": state.ready_seconds,
        "gateway_url": gateway,
        "host": ISVC_HOST,
        "predictor_host": f"{PREDICTOR}.{NAMESPACE}.example.com",
        "inferenceservice": {"name": ISVC, "namespace": NAMESPACE, "model": MODEL, "url": f"http://{ISVC_HOST}"},
        "v1_path": f"/v1/models/{MODEL}:predict",
        "v2_path": f"/v2/models/{MODEL}/infer",
        "envoy_admin_url": f"http://127.0.0.1:{ports['gateway_admin']}",
        "kubeconfig": str(paths.kubeconfig),
        "kube_api_url": f"http://127.0.0.1:{ports['kube_api']}",
        "bundle": str(paths.bundle),
        "request_file": str(paths.request_file),
        "faults": list(state.faults),
        "storage_initializers": [i.as_dict() for i in state.inits],
        "entry_points": entry,
        "ports": ports,
        "processes": processes,
        "logs": _logs(paths, plan),
    }


def log_path(state_dir: Path | None, component: str) -> Path:
    info = status(state_dir, refresh=False)
    logs: dict[str, str] = info.get("logs") or {}
    key = component.replace("-", "_")
    if key not in logs:
        if not logs:
            raise UsageError(f"no KServe stack state in {info['state_dir']}: run "
                             "`mlops-trace stack up --profile kserve` first")
        raise UsageError(f"unknown component {component!r} (one of: {', '.join(k.replace('_', '-') for k in logs)})")
    return Path(logs[key])


def format_status(info: dict[str, Any]) -> str:
    lines = ["profile:      kserve", f"running:      {str(info.get('running')).lower()}"]
    if "gateway_url" in info:
        lines += [
            f"gateway:      {info['gateway_url']}  (Host: {info['host']})",
            f"envoy admin:  {info['envoy_admin_url']}",
            f"kubeconfig:   {info['kubeconfig']}",
            f"bundle:       {info['bundle']}",
            f"faults:       {', '.join(info['faults']) or 'none'}",
        ]
        lines += [f"process:      {name:<44} pid {p['pid']:<8} {'up' if p['alive'] else 'DOWN':<5} {p['role']}"
                  for name, p in info["processes"].items()]
        lines.append(f"try:          curl -s -D - -H 'Host: {info['host']}' -H 'Content-Type: application/json' "
                     f"-d @{info['request_file']} {info['gateway_url']}{info['v1_path']}")
    return "\n".join(lines) + "\n"
