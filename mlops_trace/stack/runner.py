"""`stack up` and `stack down`: set up the files, start every process of the stack on 127.0.0.1 with bounded waits,
record them, and stop them again by PID (process group), leaving no listener behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mlops_trace.stack import agent_proxy, nginx, prometheus, xds
from mlops_trace.stack.faults import FaultSet
from mlops_trace.stack.kube_objects import KubeInputs, build_objects
from mlops_trace.stack.kubeview import refresh_admin
from mlops_trace.stack.network import Dial, Outcome, dial
from mlops_trace.stack.paths import StackPaths
from mlops_trace.stack.ports import StackError, free_ports, port_open, still_listening, wait_for
from mlops_trace.stack.procs import ProcessRecord, alive, start, stop
from mlops_trace.stack.state import StackState, read_state, write_state
from mlops_trace.stack.topology import (
    CONTROLLER_POD,
    ENVOY_POD,
    EXPERIMENT_ROUTE,
    INPUT_NAME,
    INPUT_SHAPE,
    MODELS,
    NAMESPACE,
    SCHEDULER,
    SCHEDULER_POD,
    SERVER,
    SERVER_POD,
    SERVER_REPLICAS,
    SYSTEM_NAMESPACE,
    Plan,
    Ports,
    Storage,
)
from mlops_trace.stack.venv import PAYLOAD, Binaries, Say, ensure_environment, ensure_models

WAIT_MLSERVER = 90.0
WAIT_ENVOY = 20.0
WAIT_ROUTES = 30.0
WAIT_SMALL = 15.0
WAIT_PROMETHEUS = 20.0
WAIT_WORKER = 60.0
SPLIT_BRAIN_RESYNC = 1.5
HIDE_UVLOOP = PAYLOAD / "hide_uvloop"


@dataclass(frozen=True)
class DownResult:
    stopped: tuple[str, ...]
    killed: tuple[str, ...]
    still_listening: tuple[int, ...]
    was_running: bool


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def _json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def example_request() -> dict[str, Any]:
    """A V2 inference request like the write-ups' (FP32 [1, 10, 35]), for curl's `-d @file`."""
    values = [round(0.01 * ((i * 37) % 100) - 0.5, 2) for i in range(INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2])]
    return {"inputs": [{"name": INPUT_NAME, "shape": list(INPUT_SHAPE), "datatype": "FP32", "data": values}]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Starter:
    """Starts processes and remembers them, so a failed start-up can stop what it already started."""

    def __init__(self) -> None:
        self.records: list[ProcessRecord] = []

    def start(self, name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> ProcessRecord:
        record = start(name, argv, log=log, env=env, cwd=cwd)
        self.records.append(record)
        return record

    def waiter(self, record: ProcessRecord) -> Callable[[], bool]:
        return lambda: alive(record)


def _listens(port: int) -> Callable[[], bool]:
    return lambda: port_open(port)


def _python_module(module: str, config: Path) -> list[str]:
    return [sys.executable, "-m", f"mlops_trace.stack.{module}", str(config)]


def _routes_in_envoy(admin_url: str, route_name: str | None) -> bool:
    """Envoy serves `seldon_http` and (when asked) a route named `<route_name>_http`."""
    dump = _json(f"{admin_url}/config_dump")
    if not isinstance(dump, dict):
        return False
    text = json.dumps(dump)
    if '"name": "seldon_http"' not in text:
        return False
    return route_name is None or f'"name": "{route_name}_http"' in text


def _prepare_dirs(paths: StackPaths) -> None:
    for directory in (paths.run, paths.bundle):
        if directory.exists():
            shutil.rmtree(directory)
    for directory in (paths.run, paths.bundle / "kube", paths.process_logs, paths.manifests, paths.envoy_admin_dir):
        directory.mkdir(parents=True, exist_ok=True)


def _write_bundle(paths: StackPaths, objects: dict[str, list[dict[str, Any]]], faults: FaultSet) -> None:
    for filename, docs in objects.items():
        (paths.bundle / "kube" / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    kinds = sorted({str(doc["kind"]) for docs in objects.values() for doc in docs})
    meta = {"source": "mlops-trace stack", "collected_at": _now(), "context": "mlops-trace-stack",
            "namespaces": "all", "kinds": kinds, "faults": faults.names}
    (paths.bundle / "bundle.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    for log in (paths.scheduler_log, paths.controller_log, paths.agent_log, paths.mlserver_log, paths.envoy_log,
                paths.ingress_log, paths.rclone_log):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()


def _write_manifests(paths: StackPaths, objects: dict[str, list[dict[str, Any]]]) -> None:
    """Model and Experiment manifests as the controller hands them to the scheduler (spec, no status)."""
    docs = [
        {"apiVersion": d["apiVersion"], "kind": d["kind"],
         "metadata": {"name": d["metadata"]["name"], "namespace": d["metadata"]["namespace"]}, "spec": d["spec"]}
        for d in objects["seldon.yaml"] if d["kind"] in ("Model", "Experiment")
    ]
    (paths.manifests / "seldon.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def _mlserver_files(paths: StackPaths, ports: Ports, plan: Plan, artifacts: Path) -> Path:
    root = paths.run / "mlserver"
    settings: dict[str, Any] = {
        "host": "127.0.0.1", "http_port": ports.mlserver_http, "grpc_port": ports.mlserver_grpc,
        "metrics_port": ports.mlserver_metrics, "parallel_workers": plan.parallel_workers,
        "load_models_at_startup": False, "server_name": "mlserver", "debug": False,
    }
    if plan.grpc_max_message is not None:
        settings["grpc_max_message_length"] = plan.grpc_max_message
    _write_json(root / "settings.json", settings)
    # The stack's trained models (and a fault's Model stored as the baseline) get their model-settings here; a
    # model folder that brings its own model-settings.json (runtime-deps) is placed by the agent after download.
    served = [(m.internal, artifacts / m.name) for m in MODELS]
    served += [(m.internal, artifacts / MODELS[0].name) for m in plan.extra_models if m.storage is Storage.BASELINE]
    for internal, folder in served:
        parameters: dict[str, Any] = {"uri": str(folder / "model.joblib"), "version": "1"}
        implementation = "mlserver_sklearn.SKLearnModel"
        if plan.model_delay_ms > 0:
            implementation = "stack_runtime.SlowSKLearnModel"
            parameters["extra"] = {"delay_ms": plan.model_delay_ms}
        model_settings: dict[str, Any] = {
            "name": internal, "implementation": implementation,
            "inputs": [{"name": "input_data", "datatype": "FP32", "shape": [-1, 10, 35]}],
            "parameters": parameters,
        }
        if plan.parallel_workers == 0:
            model_settings["parallel_workers"] = 0  # inference in the main process (MLServer warns this is deprecated)
        _write_json(root / "models" / internal / "model-settings.json", model_settings)
    for model in plan.extra_models:
        if model.storage is Storage.DEPS_RUNTIME:
            # A model folder as a user pushes it to a bucket: its model-settings name a custom runtime.
            _write_json(paths.storage / model.name / "model-settings.json", {
                "name": model.name, "implementation": "stack_deps_runtime.FeatureStoreModel",
                "parameters": {"version": "1"},
            })
    return root


def _envoy_argv(binary: Path, config: Path) -> list[str]:
    return [str(binary), "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "-l", "info",
            "--file-flush-interval-msec", "100"]


def up(state_dir: Path | None, faults: FaultSet, say: Say) -> dict[str, Any]:
    """Start the stack; returns `status()`. StackError (exit 2) when a component cannot start."""
    paths = StackPaths.resolve(state_dir)
    with paths.locked():
        _up(paths, faults, say)
    from mlops_trace.stack.status import status

    return status(paths.root, refresh=False)


def _up(paths: StackPaths, faults: FaultSet, say: Say) -> None:
    started_clock = time.monotonic()
    previous = read_state(paths.state_file)
    if previous is not None and any(alive(p) for p in previous.processes):
        if all(alive(p) for p in previous.processes) and list(previous.faults) == faults.names:
            say(f"already running in {paths.root}")
            return
        raise StackError(f"the stack in {paths.root} is already running with faults "
                         f"[{', '.join(previous.faults) or 'none'}] (or partly); run `mlops-trace stack down` first")
    binaries = ensure_environment(paths, say)
    artifacts = ensure_models(paths, binaries, say)
    warm_started = time.monotonic()
    _prepare_dirs(paths)
    ports = Ports(*free_ports(len(Ports.names())))
    plan = Plan.for_faults(faults)
    inputs = KubeInputs(plan=plan, ports=ports, artifacts=artifacts, now=_now(), storage=paths.storage)
    flat = [doc for docs in build_objects(inputs, agent_subscribes=True).values() for doc in docs]
    agent_dial = dial(flat, NAMESPACE, SERVER_POD, plan.agent_scheduler_host, 9005)
    envoy_dial = dial(flat, NAMESPACE, ENVOY_POD, SCHEDULER, 9002)
    controller_dials = [(NAMESPACE, dial(flat, SYSTEM_NAMESPACE, CONTROLLER_POD, f"{SCHEDULER}.{NAMESPACE}", 9004))]
    if plan.central_scheduler:
        controller_dials.append((SYSTEM_NAMESPACE, dial(flat, SYSTEM_NAMESPACE, CONTROLLER_POD,
                                                        f"{SCHEDULER}.{SYSTEM_NAMESPACE}", 9004)))
    objects = build_objects(inputs, agent_subscribes=agent_dial.outcome is Outcome.OK)
    _write_bundle(paths, objects, faults)
    _write_json(paths.request_file, example_request())
    _write_manifests(paths, objects)
    xds.write_empty(paths.xds_dir)

    starter = _Starter()
    try:
        records = _start_all(paths, binaries, ports, plan, artifacts, starter, agent_dial, envoy_dial,
                             controller_dials)
        _wait_all(paths, ports, plan, starter, records, agent_dial, envoy_dial)
        if plan.extra_models and paths.model_status_file.is_file():
            # The controller's part: the scheduler's model states become the Models' status.
            states = json.loads(paths.model_status_file.read_text(encoding="utf-8"))
            objects = build_objects(replace(inputs, model_states=states),
                                    agent_subscribes=agent_dial.outcome is Outcome.OK)
            _write_bundle(paths, objects, faults)
        if plan.kill_worker:
            _kill_worker(paths, records["mlserver"])
        refresh_admin(f"http://127.0.0.1:{ports.envoy_admin}", paths.envoy_admin_dir)
        paths.kubeconfig.unlink(missing_ok=True)
        kube = starter.start("kubeview", _python_module("kubeview", _write_json(paths.run / "kubeview.json", {
            "bundle": str(paths.bundle), "port": ports.kube_api, "kubeconfig": str(paths.kubeconfig),
            "request_log": str(paths.process_logs / "kube-api-requests.log"),
            "admin_url": f"http://127.0.0.1:{ports.envoy_admin}", "envoy_dir": str(paths.envoy_admin_dir),
        })), paths.process_logs / "kubeview.log")
        wait_for(lambda: paths.kubeconfig.is_file() and port_open(ports.kube_api), timeout=WAIT_SMALL,
                 what="the Kubernetes API over the bundle (kubeview)", alive=starter.waiter(kube), log=kube.log)
    except BaseException:
        stop(starter.records)
        raise
    state = StackState(
        state_dir=str(paths.root), started_at=_now(), faults=tuple(faults.names), ports=ports,
        processes=tuple(starter.records), prometheus=any(r.name == "prometheus" for r in starter.records),
        ready_seconds=round(time.monotonic() - warm_started, 2),
    )
    write_state(paths.state_file, state)
    say(f"ready in {time.monotonic() - started_clock:.1f}s")


def _start_all(
    paths: StackPaths, binaries: Binaries, ports: Ports, plan: Plan, artifacts: Path, starter: _Starter,
    agent_dial: Dial, envoy_dial: Dial, controller_dials: list[tuple[str, Dial]],
) -> dict[str, ProcessRecord]:
    records: dict[str, ProcessRecord] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{HIDE_UVLOOP}{os.pathsep}{PAYLOAD}" if plan.parallel_workers > 0 else str(PAYLOAD)
    env["MLSERVER_PARALLEL_WORKERS"] = str(plan.parallel_workers)
    if plan.grpc_max_message is not None:
        env["MLSERVER_GRPC_MAX_MESSAGE_LENGTH"] = str(plan.grpc_max_message)
    mlserver_root = _mlserver_files(paths, ports, plan, artifacts)
    rclone_dir = paths.run / "rclone"
    rclone_dir.mkdir(parents=True, exist_ok=True)
    (rclone_dir / "rclone.conf").touch()
    records["rclone"] = starter.start("rclone", [
        str(binaries.rclone), "rcd", "--rc-no-auth", f"--config={rclone_dir / 'rclone.conf'}",
        f"--rc-addr=127.0.0.1:{ports.rclone}", "--max-buffer-memory=64M"], paths.rclone_log)
    records["mlserver"] = starter.start("mlserver", [str(binaries.mlserver), "start", str(mlserver_root)],
                                        paths.mlserver_log, env=env, cwd=mlserver_root)

    agent_conf = _write_json(paths.run / "agent" / "envoy.json", agent_proxy.bootstrap(
        admin_port=ports.agent_admin, http_port=ports.agent_http, grpc_port=ports.agent_grpc,
        mlserver_http=ports.mlserver_http, mlserver_grpc=ports.mlserver_grpc,
        access_log=paths.run / "agent" / "access.log"))
    records["agent-proxy"] = starter.start("agent-proxy", _envoy_argv(binaries.envoy, agent_conf),
                                           paths.process_logs / "agent-proxy.log")

    envoy_conf = _write_json(paths.run / "envoy" / "bootstrap.json", xds.bootstrap(ports.envoy_admin, paths.xds_dir))
    records["envoy"] = starter.start("envoy", _envoy_argv(binaries.envoy, envoy_conf), paths.envoy_log)

    ours = dict(os.environ)
    ours.pop("PYTHONPATH", None)
    ours["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    scheduler_common = {
        "manifests": str(paths.manifests), "agent_http": ports.agent_http, "agent_grpc": ports.agent_grpc,
        "envoy_port": ports.envoy_http, "envoy_access_log": str(paths.envoy_log), "envoy_delay_ms": plan.envoy_delay_ms,
    }
    local_address = f"127.0.0.1:{ports.scheduler_api}"
    if plan.local_scheduler:
        xds_ok = envoy_dial.outcome is Outcome.OK and envoy_dial.address == local_address
        conf = _write_json(paths.run / "control" / "scheduler-local.json", {
            **scheduler_common, "namespace": NAMESPACE, "pod": SCHEDULER_POD, "log": str(paths.scheduler_log),
            "api_port": ports.scheduler_api, "agent_port": ports.scheduler_agent,
            "xds_dir": str(paths.xds_dir) if xds_ok else None,
            "wait_for_agent": not plan.thrash, "include_experiment": plan.experiment_route,
            "weights": plan.envoy_weights(), "resync_seconds": SPLIT_BRAIN_RESYNC if plan.thrash else None,
            "resync_offset": 0.0, "status_file": str(paths.model_status_file), "server_replicas": SERVER_REPLICAS,
            "route_timeout_ms": plan.route_timeout_ms,
        })
        records["scheduler"] = starter.start("scheduler", _python_module("scheduler", conf),
                                             paths.process_logs / "scheduler.out", env=ours)
    if plan.central_scheduler:
        conf = _write_json(paths.run / "control" / "scheduler-central.json", {
            **scheduler_common, "namespace": SYSTEM_NAMESPACE, "pod": SCHEDULER_POD,
            "log": str(paths.central_scheduler_log), "api_port": ports.central_scheduler_api,
            "agent_port": ports.central_scheduler_agent,
            # The second control plane also writes this Envoy's routes (split-brain), with a view without the
            # experiment; otherwise Envoy cannot reach it and it programs nothing.
            "xds_dir": str(paths.xds_dir) if plan.thrash else None,
            "wait_for_agent": True, "include_experiment": False, "weights": plan.envoy_weights(),
            "resync_seconds": SPLIT_BRAIN_RESYNC if plan.thrash else None, "resync_offset": SPLIT_BRAIN_RESYNC / 2,
        })
        paths.central_scheduler_log.parent.mkdir(parents=True, exist_ok=True)
        paths.central_scheduler_log.touch()
        records["central-scheduler"] = starter.start("central-scheduler", _python_module("scheduler", conf),
                                                     paths.process_logs / "central-scheduler.out", env=ours)

    # Agents and the controller dial the schedulers: start them once the schedulers listen, as a cluster's pods
    # would retry until then (a healthy stack should not log connection errors from start-up order).
    for name, port in (("scheduler", ports.scheduler_api), ("central-scheduler", ports.central_scheduler_api)):
        if name in records:
            record = records[name]
            wait_for(_listens(port), timeout=WAIT_SMALL, what=f"the {name} process",
                     alive=starter.waiter(record), log=record.log)

    conf = _write_json(paths.run / "control" / "agent.json", {
        "log": str(paths.agent_log), "pod": SERVER_POD, "server": SERVER, "replica": 0,
        "dial": agent_dial.as_dict(), "mlserver_http": ports.mlserver_http, "mlserver_grpc": ports.mlserver_grpc,
        "rclone_port": ports.rclone, "rclone_dir": str(paths.run / "agent" / "rclone"),
        "models_dir": str(mlserver_root / "models"), "ready_file": str(paths.run / "agent" / "subscribed"),
    })
    records["agent"] = starter.start("agent", _python_module("agent", conf), paths.process_logs / "agent.out",
                                     env=ours)
    conf = _write_json(paths.run / "control" / "controller.json", {
        "log": str(paths.controller_log),
        "namespaces": [
            {"namespace": ns, "dial": d.as_dict(),
             "server": {"server": SERVER, "expectedReplicas": 1} if ns == NAMESPACE else None}
            for ns, d in controller_dials
        ],
    })
    records["controller"] = starter.start("controller", _python_module("controller", conf),
                                          paths.process_logs / "controller.out", env=ours)

    ingress_dir = paths.run / "ingress"
    for directory in nginx.temp_dirs(ingress_dir):
        directory.mkdir(parents=True, exist_ok=True)
    conf_text = nginx.render(
        layout=nginx.IngressLayout(ingress_prefix=plan.ingress_prefix, header_derivation=plan.header_derivation),
        http_port=ports.ingress_http, grpc_port=ports.ingress_grpc, envoy_port=ports.envoy_http, run_dir=ingress_dir,
        log_path=paths.ingress_log)
    (ingress_dir / "nginx.conf").write_text(conf_text, encoding="utf-8")
    records["ingress"] = starter.start("ingress", [str(binaries.nginx), "-p", str(ingress_dir), "-c",
                                                   str(ingress_dir / "nginx.conf"), "-e", str(paths.ingress_log)],
                                       paths.process_logs / "ingress.out")

    binary = prometheus.find_binary()
    if binary is not None:
        prom_dir = paths.run / "prometheus"
        prom_dir.mkdir(parents=True, exist_ok=True)
        (prom_dir / "prometheus.yml").write_text(prometheus.render(
            mlserver_metrics=ports.mlserver_metrics, envoy_admin=ports.envoy_admin, agent_admin=ports.agent_admin),
            encoding="utf-8")
        records["prometheus"] = starter.start("prometheus", prometheus.argv(
            binary, config=prom_dir / "prometheus.yml", data_dir=prom_dir / "data", port=ports.prometheus),
            paths.process_logs / "prometheus.log")
    return records


def _wait_all(paths: StackPaths, ports: Ports, plan: Plan, starter: _Starter, records: dict[str, ProcessRecord],
              agent_dial: Dial, envoy_dial: Dial) -> None:
    def wait(name: str, check: Callable[[], bool], timeout: float, what: str) -> None:
        record = records[name]
        wait_for(check, timeout=timeout, what=what, alive=starter.waiter(record), log=record.log)

    envoy_admin = f"http://127.0.0.1:{ports.envoy_admin}"
    wait("rclone", lambda: port_open(ports.rclone), WAIT_SMALL, "the server pod's rclone (rc API)")
    wait("envoy", lambda: _http_ok(f"{envoy_admin}/ready"), WAIT_ENVOY, "Seldon's Envoy (admin /ready)")
    wait("agent-proxy", lambda: _http_ok(f"http://127.0.0.1:{ports.agent_admin}/ready"), WAIT_ENVOY,
         "the agent proxy (Envoy admin /ready)")
    wait("ingress", lambda: port_open(ports.ingress_http) and port_open(ports.ingress_grpc), WAIT_SMALL,
         "the ingress NGINX")
    wait("mlserver", lambda: _http_ok(f"http://127.0.0.1:{ports.mlserver_http}/v2/health/live"), WAIT_MLSERVER,
         "MLServer (/v2/health/live)")
    if agent_dial.outcome is Outcome.OK and not plan.thrash:
        wait("agent", lambda: (paths.run / "agent" / "subscribed").is_file(), WAIT_SMALL,
             "the agent's subscription to the scheduler")
    scheduler_programs_envoy = plan.thrash or (agent_dial.outcome is Outcome.OK and envoy_dial.outcome is Outcome.OK)
    if scheduler_programs_envoy:
        route = None if plan.thrash else (EXPERIMENT_ROUTE if plan.experiment_route else MODELS[0].name)
        wait("envoy", lambda: _routes_in_envoy(envoy_admin, route) and port_open(ports.envoy_http), WAIT_ROUTES,
             "Envoy's seldon_http listener and routes from the scheduler")
    if "prometheus" in records:
        wait("prometheus", lambda: _http_ok(f"http://127.0.0.1:{ports.prometheus}/-/ready"), WAIT_PROMETHEUS,
             "Prometheus (/-/ready)")


_NEW_WORKER = re.compile(r"New worker with PID (\d+) on default inference pool is now ready")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[-1].split()
            if int(fields[1]) != pid:
                continue
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        found.append((int(stat.parent.name), cmdline))
    return found


def inference_workers(mlserver_pid: int) -> list[int]:
    """PIDs of MLServer's inference workers (multiprocessing spawn children; not its resource tracker)."""
    return sorted(pid for pid, cmdline in _children(mlserver_pid) if "multiprocessing.spawn" in cmdline)


def _kill_worker(paths: StackPaths, mlserver: ProcessRecord) -> None:
    """The worker-crash fault: SIGKILL MLServer's inference worker (as the OOM killer would), then wait until MLServer
    reports the worker it started in its place ready, so the stack comes up in a settled state."""
    workers = inference_workers(mlserver.pid)
    if not workers:
        raise StackError(f"MLServer (PID {mlserver.pid}) has no inference worker to kill (log {mlserver.log})")
    before = len(_NEW_WORKER.findall(paths.mlserver_log.read_text(encoding="utf-8", errors="replace")))
    os.kill(workers[0], signal.SIGKILL)

    def respawned() -> bool:
        text = paths.mlserver_log.read_text(encoding="utf-8", errors="replace")
        return f"Worker with PID {workers[0]} " in text and len(_NEW_WORKER.findall(text)) > before

    wait_for(respawned, timeout=WAIT_WORKER, what="MLServer's new inference worker after the SIGKILL",
             alive=lambda: alive(mlserver), log=mlserver.log)


def down(state_dir: Path | None) -> DownResult:
    """Stop every recorded process (SIGTERM to its group, SIGKILL after 10 s) and check their ports are closed."""
    paths = StackPaths.resolve(state_dir)
    with paths.locked():
        return _down(paths)


def _down(paths: StackPaths) -> DownResult:
    state = read_state(paths.state_file)
    if state is None:
        return DownResult((), (), (), False)
    return stop_recorded(state.processes, list(state.ports.as_dict().values()), paths.state_file)


def stop_recorded(processes: Sequence[ProcessRecord], ports: Sequence[int], state_file: Path) -> DownResult:
    """Stop a profile's recorded processes by PID, say which ports still listen, and forget the state."""
    was_running = any(alive(p) for p in processes)
    stopped = tuple(p.name for p in processes if alive(p))
    killed = stop(processes)
    leftover = tuple(still_listening(ports))
    if leftover:
        time.sleep(0.5)
        leftover = tuple(still_listening(ports))
    state_file.unlink(missing_ok=True)
    return DownResult(stopped, tuple(killed), leftover, was_running)
