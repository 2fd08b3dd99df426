"""The control side of Seldon's agent in the server pod: subscribe to the scheduler, load the models it sends into
MLServer through MLServer's repository API, report back; logs what the agent logs (SELDON-FACTS §4).

The data side (the reverse proxy on 9001/9501) is a real Envoy (mlops_trace.stack.agent_proxy). Run as
`python -m mlops_trace.stack.agent CONFIG.json`. The dial outcome (no such host, refused, timeout) comes from
mlops_trace.stack.network, judged over the stack's Service and NetworkPolicy objects.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_trace.stack.daemon import LineReader, load_config, send, stop_event
from mlops_trace.stack.logfmt import PodLog
from mlops_trace.stack.network import Dial, Outcome, grpc_error

SOURCE = "AgentServiceManager"
MAX_BACKOFF = 15.0
DIAL_TIMEOUT = 3.0


class Agent:
    def __init__(self, config: dict[str, Any], stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self.log = PodLog(Path(config["log"]))
        self.dial = Dial.from_dict(config["dial"])
        self.mlserver = f"http://127.0.0.1:{int(config['mlserver_http'])}"
        self.ready_file = Path(config["ready_file"])

    def _mlserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.mlserver}/v2/health/live", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _load(self, model: str, version: int) -> bool:
        request = urllib.request.Request(f"{self.mlserver}/v2/repository/models/{model}_{version}/load", data=b"",
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError) as exc:
            self.log.logrus("error", "Failed to load model, sending error to scheduler", error=str(exc),
                            source=SOURCE)
            return False

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
            ok = self._load(model, version)
            if ok:
                self.log.logrus("info", f"Load model {model}:{version} success", source="Client")
            send(conn, {"op": "loaded", "model": model, "version": version, "ok": ok})
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
