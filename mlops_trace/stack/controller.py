"""The stack's stand-in for Seldon's controller manager (clusterwide, in seldon-system): per namespace with a
SeldonRuntime it dials `seldon-scheduler.<namespace>:9004`, subscribes as `seldon manager` and notifies the server,
logging in zap's development format the lines SELDON-FACTS §3 lists (`Scheduler not ready` with backoff on failure).

Run as `python -m mlops_trace.stack.controller CONFIG.json`.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from mlops_trace.stack.daemon import LineReader, load_config, send, stop_event
from mlops_trace.stack.logfmt import PodLog
from mlops_trace.stack.network import Dial, Outcome, grpc_error

MAX_BACKOFF = 15.0
DIAL_TIMEOUT = 3.0
LOGGER = "schedulerClient"


class NamespaceClient:
    def __init__(self, log: PodLog, namespace: str, dial: Dial, server: dict[str, Any] | None,
                 stop: threading.Event) -> None:
        self.log = log
        self.namespace = namespace
        self.dial = dial
        self.server = server
        self.stop = stop

    def _fail(self, error: str) -> None:
        for name in ("SubscribeModelEvents", "SubscribeServerEvents", "SubscribeExperimentEvents"):
            self.log.zap("error", f"SchedulerClient.{name}", "Scheduler not ready",
                         namespace=self.namespace, error=f"gRPC Subscribe{name[9:-6]}Status failed: {error}")
        self.log.zap("info", LOGGER, "Retrying to connect", namespace=self.namespace)

    def _connect(self) -> socket.socket | None:
        self.log.zap("info", LOGGER, "Connecting to scheduler", namespace=self.namespace,
                     host=f"seldon-scheduler.{self.namespace}", port=9004)
        self.log.zap("info", LOGGER, "Running scheduler client in plain text mode", namespace=self.namespace)
        self.log.zap("info", LOGGER, "Dialing scheduler", namespace=self.namespace)
        if self.dial.outcome is not Outcome.OK or self.dial.address is None:
            if self.dial.outcome is Outcome.TIMEOUT:
                self.stop.wait(DIAL_TIMEOUT)
            self._fail(grpc_error(self.dial))
            return None
        address, port = self.dial.address.rsplit(":", 1)
        try:
            return socket.create_connection((address, int(port)), timeout=DIAL_TIMEOUT)
        except OSError as exc:
            error = self.dial.refused_error() if isinstance(exc, ConnectionRefusedError) else str(exc)
            self._fail(grpc_error(self.dial, error))
            return None

    def run(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            conn = self._connect()
            if conn is None:
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 1.0
            conn.settimeout(None)
            self.log.zap("info", LOGGER, "Connected to scheduler", namespace=self.namespace)
            reader = LineReader(conn)
            send(conn, {"op": "subscribe", "subscriber": "seldon manager"})
            reader.read()
            self.log.zap("info", LOGGER, "Starting event handling", namespace=self.namespace)
            if self.server is not None:
                send(conn, {"op": "server_notify", **self.server})
                reader.read()
                self.log.zap("info", LOGGER, "Sent notify server to scheduler", namespace=self.namespace,
                             servers=[self.server["server"]])
            while not self.stop.is_set() and reader.read() is not None:
                pass
            conn.close()
            if not self.stop.is_set():
                self.log.zap("info", LOGGER, "Subscribe ended for model events", namespace=self.namespace)
                self.stop.wait(1.0)


def main() -> None:
    config = load_config()
    stop = stop_event()
    log = PodLog(Path(config["log"]))
    log.zap("info", "setup", "Clusterwide mode enabled, watching all namespaces")
    log.zap("info", "setup", "starting manager")
    threads = []
    for item in config["namespaces"]:
        client = NamespaceClient(log, str(item["namespace"]), Dial.from_dict(item["dial"]), item.get("server"), stop)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        threads.append(thread)
    stop.wait()
    log.close()


if __name__ == "__main__":
    main()
