"""`stack up --profile kserve` and `stack down --profile kserve`: run the storage initializer, start KServe's model
servers, the queue-proxy stand-ins, Envoy as the ingress gateway and the kube view on 127.0.0.1 with bounded waits,
record them, and stop them again by PID."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_trace.stack.kserve import gateway
from mlops_trace.stack.kserve.kube import KubeInputs, build_objects, write_bundle
from mlops_trace.stack.kserve.paths import KServePaths
from mlops_trace.stack.kserve.state import InitResult, KState, read_state, write_state
from mlops_trace.stack.kserve.topology import (
    MODEL,
    NAMESPACE,
    PREDICTOR,
    TRANSFORMER,
    KFault,
    KPlan,
    KPorts,
    pod_name,
    revision,
)
from mlops_trace.stack.kserve.venv import PAYLOAD, KBinaries, ensure_environment, ensure_model
from mlops_trace.stack.kubeview import refresh_admin
from mlops_trace.stack.ports import StackError, free_ports, port_open, wait_for
from mlops_trace.stack.procs import ProcessRecord, alive, start, stop
from mlops_trace.stack.runner import DownResult, stop_recorded
from mlops_trace.stack.venv import Say

WAIT_SERVER = 90.0
WAIT_SMALL = 20.0
INIT_TIMEOUT = 120.0
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
              "NO_PROXY")
# config-observability's example request-log template (knative/serving config/core/configmaps/observability.yaml)
REQUEST_LOG_TEMPLATE = (
    '{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": "{{js .Request.RequestURI}}", '
    '"requestSize": "{{.Request.ContentLength}}", "status": {{.Response.Code}}, "responseSize": "{{.Response.Size}}", '
    '"userAgent": "{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", '
    '"serverIp": "{{.Revision.PodIP}}", "referer": "{{js .Request.Referer}}", "latency": "{{.Response.Latency}}s", '
    '"protocol": "{{.Request.Proto}}"}, "traceId": "{{index .Request.Header "X-B3-Traceid"}}"}'
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def _ready_url(url: str) -> Callable[[], bool]:
    return lambda: _http_ok(url)


def _listening(port: int) -> Callable[[], bool]:
    return lambda: port_open(port)


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def example_request() -> dict[str, Any]:
    """A V1 request for the InferenceService (two iris-like flowers, one of each end of the data)."""
    return {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(PAYLOAD)
    env.update(extra)
    return env


def storage_uri(paths: KServePaths, plan: KPlan) -> str:
    """The predictor's storageUri: the trained model's folder, or (storage-init-fail) a folder never uploaded."""
    folder = paths.bucket / (f"{MODEL}-v2" if plan.has(KFault.STORAGE_INIT_FAIL) else MODEL)
    return f"file://{folder}"


def _run_initializer(paths: KServePaths, binaries: KBinaries, uri: str, rev: str) -> InitResult:
    """The revision pod's init container: the real kserve_storage download into the pod's /mnt/models."""
    log = paths.container_log(rev, "storage-initializer")
    log.parent.mkdir(parents=True, exist_ok=True)
    dest = paths.models_dir(rev)
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = _now()
    with log.open("ab") as handle:
        try:
            result = subprocess.run([str(binaries.python), str(PAYLOAD / "initializer-entrypoint"), uri, str(dest)],
                                    stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=INIT_TIMEOUT, env=_clean_env(), check=False)
            code = result.returncode
        except subprocess.TimeoutExpired:
            code = 124
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    message = lines[-1].split("] ", 1)[-1] if lines else ""
    return InitResult(rev, code, message, started, _now())


class _Starter:
    def __init__(self) -> None:
        self.records: list[ProcessRecord] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
              ) -> ProcessRecord:
        record = start(name, argv, log=log, env=env, cwd=cwd)
        self.records.append(record)
        return record

    def wait(self, record: ProcessRecord, check: Callable[[], bool], timeout: float, what: str) -> None:
        wait_for(check, timeout=timeout, what=what, alive=lambda: alive(record), log=record.log)


def _queue_env(rev: str, service: str, user_port: int, queue_port: int, timeout: int) -> dict[str, str]:
    """The queue-proxy container's environment as Knative's revision reconciler sets it."""
    return _clean_env(
        SERVING_NAMESPACE=NAMESPACE, SERVING_SERVICE=service, SERVING_CONFIGURATION=service, SERVING_REVISION=rev,
        QUEUE_SERVING_PORT=str(queue_port), CONTAINER_CONCURRENCY="0", REVISION_TIMEOUT_SECONDS=str(timeout),
        REVISION_RESPONSE_START_TIMEOUT_SECONDS=str(timeout), REVISION_IDLE_TIMEOUT_SECONDS="0",
        SERVING_POD=pod_name(rev), SERVING_POD_IP="127.0.0.1", USER_PORT=str(user_port),
        SERVING_ENABLE_REQUEST_LOG="true", SERVING_REQUEST_LOG_TEMPLATE=REQUEST_LOG_TEMPLATE,
    )


def _start_revision(paths: KServePaths, binaries: KBinaries, starter: _Starter, rev: str, service: str,
                    server: list[str], ports: tuple[int, int, int], timeout: int, env: dict[str, str]
                    ) -> tuple[ProcessRecord, ProcessRecord]:
    """The revision pod's kserve-container (REST and V2 gRPC, both on 127.0.0.1) and its queue-proxy;
    `ports` is (http, grpc, queue)."""
    http_port, grpc_port, queue_port = ports
    container = "kserve-container"  # a custom transformer's container is named so too
    argv = [str(binaries.python), *server, "--model_name", MODEL, "--http_port", str(http_port),
            "--enable_grpc", "true", "--grpc_port", str(grpc_port)]
    server_record = starter.start(f"{rev}/{container}", argv, paths.container_log(rev, container), env, cwd=PAYLOAD)
    queue_record = starter.start(f"{rev}/queue-proxy", [str(binaries.python), str(PAYLOAD / "queue_proxy.py")],
                                 paths.container_log(rev, "queue-proxy"),
                                 _queue_env(rev, service, http_port, queue_port, timeout))
    return server_record, queue_record


def up(state_dir: Path | None, faults: tuple[KFault, ...], say: Say) -> dict[str, Any]:
    """Start the KServe stack; returns its status. StackError (exit 2) when a component cannot start."""
    paths = KServePaths.resolve(state_dir)
    with paths.locked():
        _up(paths, faults, say)
    from mlops_trace.stack.kserve.status import status

    return status(paths.root, refresh=False)


def _up(paths: KServePaths, faults: tuple[KFault, ...], say: Say) -> None:
    started_clock = time.monotonic()
    names = [f.value for f in faults]
    previous = read_state(paths.state_file)
    if previous is not None and any(alive(p) for p in previous.processes):
        if all(alive(p) for p in previous.processes) and list(previous.faults) == names:
            say(f"already running in {paths.root}")
            return
        raise StackError(f"the KServe stack in {paths.root} is already running with faults "
                         f"[{', '.join(previous.faults) or 'none'}] (or partly); run "
                         "`mlops-trace stack down --profile kserve` first")
    binaries = ensure_environment(paths, say)
    ensure_model(paths, binaries, say)
    warm_started = time.monotonic()
    for directory in (paths.run, paths.bundle):
        if directory.exists():
            shutil.rmtree(directory)
    for directory in (paths.run, paths.bundle / "kube", paths.process_logs, paths.envoy_admin_dir):
        directory.mkdir(parents=True, exist_ok=True)
    ports = KPorts(*free_ports(len(KPorts.names())))
    plan = KPlan(faults)
    uri = storage_uri(paths, plan)
    _write_json(paths.request_file, example_request())
    inits = tuple(_run_initializer(paths, binaries, uri, rev)
                  for rev in ((revision(PREDICTOR, 1),) if not plan.predictor_runs else plan.predictor_revisions))
    starter = _Starter()
    try:
        _start_all(paths, binaries, plan, ports, starter, inits)
        inputs = KubeInputs(plan=plan, ports=ports, now=_now(), storage_uri=uri, inits=inits)
        write_bundle(paths, build_objects(inputs), names)
        refresh_admin(f"http://127.0.0.1:{ports.gateway_admin}", paths.envoy_admin_dir)
        paths.kubeconfig.unlink(missing_ok=True)
        conf = _write_json(paths.run / "kubeview.json", {
            "bundle": str(paths.bundle), "port": ports.kube_api, "kubeconfig": str(paths.kubeconfig),
            "request_log": str(paths.process_logs / "kube-api-requests.log"),
            "admin_url": f"http://127.0.0.1:{ports.gateway_admin}", "envoy_dir": str(paths.envoy_admin_dir),
        })
        ours = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        ours["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
        kube = starter.start("kubeview", [sys.executable, "-m", "mlops_trace.stack.kubeview", str(conf)],
                             paths.process_logs / "kubeview.log", ours)
        starter.wait(kube, lambda: paths.kubeconfig.is_file() and port_open(ports.kube_api), WAIT_SMALL,
                     "the Kubernetes API over the bundle (kubeview)")
    except BaseException:
        stop(starter.records)
        raise
    write_state(paths.state_file, KState(
        state_dir=str(paths.root), started_at=_now(), faults=tuple(names), ports=ports,
        processes=tuple(starter.records), ready_seconds=round(time.monotonic() - warm_started, 2), inits=inits))
    say(f"ready in {time.monotonic() - started_clock:.1f}s")


def _start_all(paths: KServePaths, binaries: KBinaries, plan: KPlan, ports: KPorts, starter: _Starter,
               inits: tuple[InitResult, ...]) -> None:
    waits: list[tuple[ProcessRecord, Callable[[], bool], str]] = []
    server_ports = {revision(PREDICTOR, 1): (ports.predictor_http, ports.predictor_grpc, ports.predictor_queue),
                    revision(PREDICTOR, 2): (ports.canary_http, ports.canary_grpc, ports.canary_queue)}
    initialized = {i.revision for i in inits if i.exit_code == 0}
    for rev in plan.predictor_revisions:
        if rev not in initialized:
            continue  # an init container that failed: the pod's other containers never start
        http_port, grpc_port, queue_port = server_ports[rev]
        server = [str(PAYLOAD / "sklearn_predictor.py"), "--model_dir", str(paths.models_dir(rev)),
                  "--delay_ms", str(plan.model_delay_ms)]
        model, queue = _start_revision(paths, binaries, starter, rev, PREDICTOR, server, server_ports[rev],
                                       plan.predictor_timeout, _clean_env())
        waits.append((model, _ready_url(f"http://127.0.0.1:{http_port}/v2/health/ready"),
                      f"the predictor {rev} (KServe model server /v2/health/ready)"))
        waits.append((model, _listening(grpc_port), f"the predictor {rev}'s gRPC port"))
        waits.append((queue, _listening(queue_port), f"the queue-proxy of {rev}"))
    transformer_env = _clean_env()
    if not plan.has(KFault.TRANSFORMER_UNREACHABLE):
        # The cluster's DNS and mesh: `<isvc>-predictor.<ns>` is an ExternalName of the local gateway. A name that is
        # no Service (transformer-unreachable) is left to the transformer's own DNS lookup, which fails as in-cluster.
        transformer_env["HTTP_PROXY"] = transformer_env["http_proxy"] = f"http://127.0.0.1:{ports.local_gateway}"
    rev = revision(TRANSFORMER, 1)
    server = [str(PAYLOAD / "iris_transformer.py"), "--predictor_host", plan.predictor_host]
    model, queue = _start_revision(paths, binaries, starter, rev, TRANSFORMER, server,
                                   (ports.transformer_http, ports.transformer_grpc, ports.transformer_queue), 300,
                                   transformer_env)
    waits.append((model, lambda: _http_ok(f"http://127.0.0.1:{ports.transformer_http}/v1/models/{MODEL}"),
                  "the transformer (KServe model server /v1/models/<m>)"))
    waits.append((model, _listening(ports.transformer_grpc), "the transformer's gRPC port"))
    waits.append((queue, lambda: port_open(ports.transformer_queue), f"the queue-proxy of {rev}"))
    paths.gateway_log.parent.mkdir(parents=True, exist_ok=True)
    paths.gateway_log.touch()
    conf = _write_json(paths.run / "gateway" / "envoy.json", gateway.bootstrap(plan, ports, paths.gateway_log))
    envoy = starter.start("istio-ingressgateway", [
        str(binaries.envoy), "-c", str(conf), "--disable-hot-restart", "--concurrency", "1", "-l", "info",
        "--file-flush-interval-msec", "100", "--service-cluster", "istio-ingressgateway.istio-system"],
        paths.process_logs / "istio-ingressgateway.log", _clean_env())
    waits.append((envoy, lambda: _http_ok(f"http://127.0.0.1:{ports.gateway_admin}/ready")
                  and port_open(ports.gateway_http), "Envoy as istio-ingressgateway (admin /ready)"))
    for record, check, what in waits:
        starter.wait(record, check, WAIT_SERVER, what)


def down(state_dir: Path | None) -> DownResult:
    """Stop every recorded process (SIGTERM to its group, SIGKILL after 10 s) and check their ports are closed."""
    paths = KServePaths.resolve(state_dir)
    with paths.locked():
        state = read_state(paths.state_file)
        if state is None:
            return DownResult((), (), (), False)
        return stop_recorded(state.processes, list(state.ports.as_dict().values()), paths.state_file)
