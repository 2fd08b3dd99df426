"""The control side of Seldon's agent in the server pod: subscribe to the scheduler, download each model it sends
through the pod's rclone (its rc API, `/sync/copy`, as seldon-core's `pkg/agent/rclone` does), load it into MLServer
with gRPC `RepositoryModelLoad` (as `modelserver_controlplane/oip/v2.go` does), report back; logs what the agent logs
(SELDON-FACTS §4, `agent_svc_manager.go` of v2.10): a failed download or load is the real error of rclone or
MLServer, wrapped the way the agent wraps it.

The data side (the reverse proxy on 9001/9501) is a real Envoy (mlops_trace.stack.agent_proxy). Run as
`python -m mlops_trace.stack.agent CONFIG.json`. The dial outcome (no such host, refused, timeout) comes from
mlops_trace.stack.network, judged over the stack's Service and NetworkPolicy objects.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_trace.stack import grpc_wire
from mlops_trace.stack.daemon import LineReader, load_config, send, stop_event
from mlops_trace.stack.logfmt import PodLog
from mlops_trace.stack.network import Dial, Outcome, grpc_error

SOURCE = "AgentServiceManager"
MAX_BACKOFF = 15.0
DIAL_TIMEOUT = 3.0
RCLONE_SYNC_COPY = "/sync/copy"
LOAD_TIMEOUT = 60.0
# Seldon's agent retries a failed MLServer load SELDON_MAX_LOAD_RETRY_COUNT times (default 5) with exponential
# backoff from 0.5 s; the stand-in retries fewer times, faster, so a faulted stack still comes up in seconds.
LOAD_RETRIES = 2
LOAD_BACKOFF = 0.2


def fnv32a(text: str) -> int:
    """Go's hash/fnv New32a, which seldon-core's util.Hash uses to name a model's rclone download folder."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def go_grpc_error(code_name: str, details: str) -> str:
    """A gRPC status as a Go client's error prints it (`rpc error: code = Internal desc = …`)."""
    code = "".join(word.capitalize() for word in code_name.split("_")) if code_name != "OK" else "OK"
    return f"rpc error: code = {code} desc = {details}"


class LoadError(Exception):
    """A failed download or load; the text is the error the agent sends to the scheduler."""


class Agent:
    def __init__(self, config: dict[str, Any], stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self.log = PodLog(Path(config["log"]))
        self.dial = Dial.from_dict(config["dial"])
        self.mlserver = f"http://127.0.0.1:{int(config['mlserver_http'])}"
        self.mlserver_grpc = f"127.0.0.1:{int(config['mlserver_grpc'])}"
        self.rclone_port = int(config["rclone_port"])
        self.rclone_dir = Path(config["rclone_dir"])
        self.models_dir = Path(config["models_dir"])
        self.ready_file = Path(config["ready_file"])

    def _mlserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.mlserver}/v2/health/live", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    # --- download (rclone) -------------------------------------------------------------------------------------

    def _rclone_call(self, body: dict[str, Any], path: str) -> None:
        """POST to rclone's rc API; the agent's error when it does not answer 200 (rclone.go `call`)."""
        url = f"http://127.0.0.1:{self.rclone_port}{path}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=LOAD_TIMEOUT) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.read()
            raise LoadError(f"Failed rclone request to host:127.0.0.1 port:{self.rclone_port} path:{path}") from None
        except (OSError, urllib.error.URLError) as exc:
            raise LoadError(f"failed making http post to {url}: {exc}") from None

    def _download(self, internal: str, uri: str) -> Path:
        """rclone.go `Copy`: /sync/copy into rclone/<fnv32a(name-uri)>; one more try after reloading the config."""
        destination = self.rclone_dir / str(fnv32a(f"{internal}-{uri}"))
        self.log.logrus("info", "will copy model artifacts", Name="RCloneClient", destination_uri=str(destination),
                        func="Copy", source_uri=uri)
        # The stack's Models name local folders as file://<path>; rclone's local backend takes the bare path.
        body = {"srcFs": uri.removeprefix("file://"), "dstFs": str(destination), "createEmptySrcDirs": True}
        try:
            try:
                self._rclone_call(body, RCLONE_SYNC_COPY)
            except LoadError:
                self._rclone_call(body, RCLONE_SYNC_COPY)  # copyWithConfigResync: the config was reloaded, try again
        except LoadError as exc:
            error = f"failed to sync/copy {uri} to {destination}: {exc}"
            self.log.logrus("warning", "Got permanent error, not retrying to download model", Name="V2ModelRepository",
                            error=error, func="DownloadModelVersion")
            raise LoadError(error) from None
        if not destination.exists():
            raise LoadError(f"Failed to download from {uri} any files")
        return destination

    def _settings(self, internal: str, downloaded: Path) -> None:
        """A downloaded model-settings.json goes to MLServer's models folder under the versioned name, version "1"
        (repository/mlserver/settings.go); the stack's own models have theirs written at start-up."""
        source = downloaded / "model-settings.json"
        target = self.models_dir / internal / "model-settings.json"
        if not source.is_file() or target.exists():
            return
        settings = json.loads(source.read_text(encoding="utf-8"))
        settings["name"] = internal
        settings.setdefault("parameters", {})["version"] = "1"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings, indent=1), encoding="utf-8")

    # --- load (MLServer) -----------------------------------------------------------------------------------------

    def _grpc_load(self, internal: str) -> None:
        import grpc

        with grpc.insecure_channel(self.mlserver_grpc) as channel:
            call = channel.unary_unary(grpc_wire.REPOSITORY_MODEL_LOAD, request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
            try:
                call(grpc_wire.encode_repository_model_load(internal), timeout=LOAD_TIMEOUT)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                details = exc.details() if hasattr(exc, "details") else str(exc)
                raise LoadError(go_grpc_error(code.name if code is not None else "UNKNOWN", str(details))) from None

    def _load(self, model: str, version: int, uri: str) -> str | None:
        """Download and load one model version; None on success, else the error sent to the scheduler."""
        internal = f"{model}_{version}"
        try:
            downloaded = self._download(internal, uri)
            self.log.logrus("info", f"Chose path {downloaded} for model {model}:{version}", Name="AgentServiceManager",
                            func="LoadModel")
            self._settings(internal, downloaded)
            for attempt in range(LOAD_RETRIES + 1):
                try:
                    self._grpc_load(internal)
                    return None
                except LoadError as exc:
                    if attempt == LOAD_RETRIES:
                        raise
                    self.log.logrus("error", f"Retry op #{attempt}", Name="AgentServiceManager", error=str(exc),
                                    func="LoadModel")
                    self.stop.wait(LOAD_BACKOFF * (2**attempt))
        except LoadError as exc:
            self.log.logrus("error", "Failed to load model, sending error to scheduler", Name="AgentServiceManager",
                            error=str(exc))
            self.log.logrus("error", f"Failed to handle load model {model}:{version}", Name="AgentServiceManager",
                            error=str(exc))
            return str(exc)
        return None

    def _connect(self) -> socket.socket | None:
        self.log.logrus("info", f"Connecting (non-blocking) to scheduler at {self.dial.target}", source=SOURCE)
        if self.dial.outcome is not Outcome.OK or self.dial.address is None:
            if self.dial.outcome is Outcome.TIMEOUT:
                self.stop.wait(DIAL_TIMEOUT)  # dropped packets: the dial only gives up at its deadline
            self.log.logrus("error", "Scheduler not ready", error=grpc_error(self.dial), source=SOURCE)
            return None
        address, port = self.dial.address.rsplit(":", 1)
        try:
            return socket.create_connection((address, int(port)), timeout=DIAL_TIMEOUT)
        except OSError as exc:
            error = self.dial.refused_error() if isinstance(exc, ConnectionRefusedError) else str(exc)
            self.log.logrus("error", "Scheduler not ready", error=grpc_error(self.dial, error), source=SOURCE)
            return None

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        self.log.logrus("info", "Call subscribe to scheduler", source=SOURCE)
        send(conn, {"op": "subscribe", "server": self.config["server"], "replica": int(self.config["replica"]),
                    "inferenceSvc": self.config["pod"], "inferenceHttpPort": 9001, "inferenceGrpcPort": 9501})
        self.log.logrus("info", "Subscribed to scheduler", source=SOURCE)
        self.ready_file.write_text("subscribed\n", encoding="utf-8")
        reader = LineReader(conn)
        while not self.stop.is_set():
            message = reader.read()
            if message is None:
                break
            if message.get("op") != "load":
                continue
            model, version = str(message["model"]), int(message["version"])
            self.log.logrus("info", "Received operation", source=SOURCE, operation="LOAD_MODEL")
            self.log.logrus("info", "calling load model", source="Client", model=f"{model}:{version}")
            self.log.logrus("info", f"Load model {model}:{version}", source="Client")
            error = self._load(model, version, str(message.get("uri") or ""))
            if error is None:
                self.log.logrus("info", f"Load model {model}:{version} success", source="Client")
            send(conn, {"op": "loaded", "model": model, "version": version, "ok": error is None,
                        "error": error or ""})
        self.log.logrus("info", "Scheduler subscription ended", source=SOURCE)

    def run(self) -> None:
        self.log.logrus("info", f"Agent starting for server {self.config['server']} replica {self.config['replica']}",
                        source="agent")
        while not self.stop.is_set() and not self._mlserver_ready():
            self.stop.wait(0.2)
        backoff = 1.0
        while not self.stop.is_set():
            conn = self._connect()
            if conn is None:
                self.log.logrus("error", "Failed to connect to the scheduler", source=SOURCE)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 1.0
            try:
                self._session(conn)
            finally:
                conn.close()
            self.stop.wait(1.0)
        self.log.close()


def main() -> None:
    config = load_config()
    Agent(config, stop_event()).run()


if __name__ == "__main__":
    main()
