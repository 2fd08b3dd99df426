"""`stack status` and `stack logs`: what is running where, read from `state.json` and the processes themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_trace.errors import UsageError
from mlops_trace.stack.faults import parse_faults
from mlops_trace.stack.kubeview import refresh_admin
from mlops_trace.stack.paths import StackPaths
from mlops_trace.stack.procs import alive
from mlops_trace.stack.state import read_state
from mlops_trace.stack.topology import (
    DEFAULT_MODEL,
    EXPERIMENT,
    EXPERIMENT_ROUTE,
    HOST,
    MODELS,
    NAMESPACE,
    Plan,
    experiment_weights,
)


def _entry_points(ports: dict[str, int]) -> dict[str, str]:
    """Each hop's entry point, so differential probes can hit one hop at a time."""
    return {
        "ingress": f"http://127.0.0.1:{ports['ingress_http']}",
        "ingress_grpc": f"127.0.0.1:{ports['ingress_grpc']}",
        "envoy": f"http://127.0.0.1:{ports['envoy_http']}",
        "agent": f"http://127.0.0.1:{ports['agent_http']}",
        "agent_grpc": f"127.0.0.1:{ports['agent_grpc']}",
        "mlserver": f"http://127.0.0.1:{ports['mlserver_http']}",
        "mlserver_grpc": f"127.0.0.1:{ports['mlserver_grpc']}",
        "mlserver_metrics": f"http://127.0.0.1:{ports['mlserver_metrics']}/metrics",
    }


def status(state_dir: Path | None, *, refresh: bool = True) -> dict[str, Any]:
    """The status document (`stack status -o json`); `running` is false when nothing of the stack is alive."""
    paths = StackPaths.resolve(state_dir)
    state = read_state(paths.state_file)
    if state is None:
        return {"running": False, "state_dir": str(paths.root), "faults": [], "processes": {}}
    processes = {p.name: {"pid": p.pid, "alive": alive(p), "log": p.log} for p in state.processes}
    running = all(p["alive"] for p in processes.values()) and bool(processes)
    ports = state.ports.as_dict()
    if refresh and processes.get("envoy", {}).get("alive"):
        refresh_admin(f"http://127.0.0.1:{ports['envoy_admin']}", paths.envoy_admin_dir)
    plan = Plan.for_faults(parse_faults(state.faults))
    return {
        "running": running,
        "partly_running": not running and any(p["alive"] for p in processes.values()),
        "state_dir": state.state_dir,
        "started_at": state.started_at,
        "ready_seconds": state.ready_seconds,
        "ingress_url": f"http://127.0.0.1:{ports['ingress_http']}",
        "ingress_grpc": f"127.0.0.1:{ports['ingress_grpc']}",
        "host": HOST,
        "namespace": NAMESPACE,
        "envoy_admin_url": f"http://127.0.0.1:{ports['envoy_admin']}",
        "kubeconfig": str(paths.kubeconfig),
        "kube_api_url": f"http://127.0.0.1:{ports['kube_api']}",
        "bundle": str(paths.bundle),
        "request_file": str(paths.request_file),
        "experiment": {
            "name": EXPERIMENT,
            "namespace": NAMESPACE,
            "route": EXPERIMENT_ROUTE,
            "header": {"seldon-model": EXPERIMENT_ROUTE},
            "default": DEFAULT_MODEL,
            "weights": experiment_weights(),
            "envoy_weights": plan.envoy_weights() if plan.experiment_route else {},
        },
        "models": [{"name": m.name, "version": "1", "internal": m.internal, "namespace": NAMESPACE} for m in MODELS],
        # Models a fault adds outside the experiment (model-load-fail, runtime-deps, replicas-exceed-server).
        "fault_models": [{"name": m.name, "version": "1", "internal": m.internal, "namespace": NAMESPACE,
                          "replicas": m.replicas} for m in plan.extra_models],
        "prometheus_url": f"http://127.0.0.1:{ports['prometheus']}" if state.prometheus else None,
        "prometheus": "on" if state.prometheus else "off (no prometheus binary; apt-get install prometheus)",
        "faults": list(state.faults),
        "entry_points": _entry_points(ports),
        "ports": ports,
        "processes": processes,
        "logs": {
            "scheduler": str(paths.scheduler_log),
            "central_scheduler": str(paths.central_scheduler_log),
            "controller": str(paths.controller_log),
            "agent": str(paths.agent_log),
            "rclone": str(paths.rclone_log),
            "mlserver": str(paths.mlserver_log),
            "envoy": str(paths.envoy_log),
            "ingress": str(paths.ingress_log),
            "agent_proxy_access": str(paths.run / "agent" / "access.log"),
        },
    }


COMPONENT_LOGS = ("scheduler", "central_scheduler", "controller", "agent", "rclone", "mlserver", "envoy", "ingress",
                  "agent_proxy_access")


def log_path(state_dir: Path | None, component: str) -> Path:
    info = status(state_dir, refresh=False)
    logs: dict[str, str] = info.get("logs") or {}
    key = component.replace("-", "_")
    if key not in logs:
        if not logs:
            raise UsageError(f"no stack state in {info['state_dir']}: run `mlops-trace stack up` first")
        raise UsageError(f"unknown component {component!r} (one of: {', '.join(k.replace('_', '-') for k in logs)})")
    return Path(logs[key])


def read_tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = text.splitlines()[-lines:] if lines > 0 else text.splitlines()
    return "".join(line + "\n" for line in kept)


def format_status(info: dict[str, Any]) -> str:
    """The status document as a few aligned lines, with a curl command to try."""
    lines = [f"running:      {str(info.get('running')).lower()}"]
    if "ingress_url" in info:
        experiment = info["experiment"]
        lines += [
            f"ingress:      {info['ingress_url']}  (Host: {info['host']})",
            f"ingress gRPC: {info['ingress_grpc']}",
            f"envoy admin:  {info['envoy_admin_url']}",
            f"kubeconfig:   {info['kubeconfig']}",
            f"bundle:       {info['bundle']}",
            f"experiment:   {experiment['name']} (seldon-model: {experiment['route']})",
            f"prometheus:   {info['prometheus_url'] or info['prometheus']}",
            f"faults:       {', '.join(info['faults']) or 'none'}",
            (f"try:          curl -s -D - -H 'Host: {info['host']}' -H 'seldon-model: {experiment['route']}' "
            f"-H 'Content-Type: application/json' -d @{info['request_file']} "
            f"{info['ingress_url']}/v2/models/{experiment['name']}/infer"),
        ]
    return "\n".join(lines) + "\n"
