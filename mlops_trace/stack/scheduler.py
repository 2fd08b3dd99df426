"""The stack's stand-in for Seldon's scheduler: reads the namespace's Model and Experiment manifests, schedules the
models on the server whose agent subscribes, and programs Envoy's routes through file-based xDS, logging what the
real scheduler logs (SELDON-FACTS §2.3) in logrus' text format.

Run as `python -m mlops_trace.stack.scheduler CONFIG.json`. With `resync_seconds` set (the split-brain fault) it
republishes its view of the experiment again and again, as a scheduler does on every model event; two of them with
different views make Envoy's routes flip back and forth.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from mlops_trace.stack import xds
from mlops_trace.stack.daemon import LineReader, load_config, send, serve_lines, stop_event
from mlops_trace.stack.logfmt import PodLog


class Scheduler:
    def __init__(self, config: dict[str, Any], stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self.log = PodLog(Path(config["log"]))
        self.xds_dir = Path(config["xds_dir"]) if config.get("xds_dir") else None
        self.models: list[dict[str, Any]] = []
        self.experiments: list[dict[str, Any]] = []
        self.available: set[str] = set()
        # Per model, what the scheduler's store says (state, reason, replicas): the controller copies it into the
        # Model's status (mlops_trace.stack.runner writes the served objects from `status_file`).
        self.states: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.version = 0
        self.listener_written = False
        self.routes_ready = threading.Event()

    # --- manifests -----------------------------------------------------------------------------------------------

    def read_manifests(self) -> None:
        for path in sorted(Path(self.config["manifests"]).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not isinstance(doc, dict):
                    continue
                if doc.get("kind") == "Model":
                    self.models.append(doc)
                elif doc.get("kind") == "Experiment":
                    self.experiments.append(doc)

    def model_names(self) -> list[str]:
        return [str(m["metadata"]["name"]) for m in self.models]

    def routable(self) -> list[str]:
        """Models Envoy gets routes and clusters for: those with a live replica (all, for a scheduler whose db
        already places them, which programs Envoy without waiting for an agent)."""
        if not self.config.get("wait_for_agent", True):
            return self.model_names()
        return [name for name in self.model_names() if name in self.available]

    def _desired_replicas(self, model: dict[str, Any]) -> int:
        return int((model.get("spec") or {}).get("replicas") or 1)

    def _set_state(self, name: str, state: str, reason: str, available: int, replicas: int) -> None:
        self.log.logrus("info", f"Updating state for model {name} to {state}", func="UpdateModelState",
                        source="MemoryStore")
        self.states[name] = {"state": state, "reason": reason, "availableReplicas": available, "replicas": replicas}
        status_file = self.config.get("status_file")
        if status_file:
            target = Path(status_file)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.states, indent=1), encoding="utf-8")
            os.replace(tmp, target)

    def settled(self) -> bool:
        return all(name in self.states for name in self.model_names())

    # --- routes --------------------------------------------------------------------------------------------------

    def _splits(self, experiment: dict[str, Any]) -> tuple[xds.Split, ...]:
        weights: dict[str, int] = dict(self.config.get("weights") or {})
        splits = []
        for cand in experiment["spec"].get("candidates") or []:
            name = str(cand["name"])
            splits.append(xds.Split(f"{name}_1", int(weights.get(name, cand.get("weight", 0)))))
        return tuple(splits)

    def build_view(self) -> list[xds.RouteSpec]:
        """Route specs from this scheduler's view; logs the processor's lines as it goes."""
        specs: dict[str, xds.RouteSpec] = {}
        defaults: dict[str, dict[str, Any]] = {}
        if self.config.get("include_experiment", True):
            for exp in self.experiments:
                default = exp["spec"].get("default")
                if default:
                    defaults[str(default)] = exp
        for name in self.routable():
            if name in defaults:
                continue
            self.log.logrus("info", f"Handle vanilla no experiment traffic for {name}", func="updateEnvoyForModelVersion",
                            source="IncrementalProcessor")
            specs[name] = xds.RouteSpec(name, (xds.Split(f"{name}_1", 100),))
        for exp in self.experiments:
            exp_name = str(exp["metadata"]["name"])
            route = f"{exp_name}.experiment"
            if not self.config.get("include_experiment", True):
                if self.config.get("resync_seconds"):
                    self.log.logrus("info", f"Remove Routes for model {route}", func="RemoveRoute",
                                    source="SeldonXDSCache")
                else:
                    self.log.logrus("warning", f"Failed to add traffic for experiment {route}",
                                    func="experimentUpdate", source="IncrementalProcessor")
                continue
            default = str(exp["spec"].get("default") or "")
            splits = self._splits(exp)
            self.log.logrus("info", f"Experiment {exp_name} sync - calling for model {default}",
                            func="experimentSync", source="IncrementalProcessor")
            if self.config.get("resync_seconds") and self.version > 0:
                self.log.logrus("info", f"Remove Routes for model {default}", func="RemoveRoute",
                                source="SeldonXDSCache")
            self.log.logrus("info", f"Trying to setup experiment for {default}", func="addExperimentModelBaselineTraffic",
                            source="IncrementalProcessor")
            if self.config.get("resync_seconds") and self.version > 0:
                self.log.logrus("info", f"Remove Routes for model {route}", func="RemoveRoute",
                                source="SeldonXDSCache")
            if default:
                specs[default] = xds.RouteSpec(default, splits)
            specs[route] = xds.RouteSpec(route, splits)
        return list(specs.values())

    def apply(self) -> None:
        """Program Envoy as Seldon's processor does: clusters, then routes, then the listener."""
        if self.xds_dir is None:
            return
        with self.lock:
            view = self.build_view()
            self.version += 1
            version = f"{self.config['pod']}.{self.config['namespace']}-{self.version}"
            clusters = [
                c for name in self.routable() for c in xds.model_clusters(
                    f"{name}_1", int(self.config["agent_http"]), int(self.config["agent_grpc"]))
            ]
            timeout_ms = float(self.config.get("route_timeout_ms") or 0.0)
            xds.write_resources(self.xds_dir, xds.CDS_FILE, clusters, version)
            xds.write_resources(self.xds_dir, xds.RDS_FILE, [xds.route_configuration(view, timeout_ms)], version)
            if not self.listener_written:
                listener = xds.seldon_listener(int(self.config["envoy_port"]), self.xds_dir,
                                               Path(self.config["envoy_access_log"]),
                                               float(self.config.get("envoy_delay_ms") or 0.0))
                xds.write_resources(self.xds_dir, xds.LDS_FILE, [listener], version)
                self.listener_written = True
            self.routes_ready.set()

    # --- agents and the controller -------------------------------------------------------------------------------

    def handle_agent(self, conn: socket.socket) -> None:
        reader = LineReader(conn)
        first = reader.read()
        if first is None or first.get("op") != "subscribe":
            conn.close()
            return
        replica = f"{first.get('server')}:{first.get('replica')}"
        self.log.logrus("info", f"Received agent subscribe request from {replica}", func="Subscribe",
                        source="AgentServer")
        for model in self.models:
            name = str(model["metadata"]["name"])
            self.log.logrus("info", f"Sending load model request for {name}", func="sendModelLoad",
                            source="AgentServer")
            send(conn, {"op": "load", "model": name, "version": 1,
                        "uri": str((model.get("spec") or {}).get("storageUri") or "")})
        while not self.stop.is_set():
            message = reader.read()
            if message is None:
                break
            if message.get("op") == "loaded":
                self._loaded(message)
                if self.settled() and not self.routes_ready.is_set():
                    self.log.logrus("info", "Inference servers ready", func="main", source="scheduler")
                    self.apply()
                    self.log.logrus("info", "Scheduler is ready", func="main", source="scheduler")
        self.log.logrus("info", f"Agent subscribe stream closed for {replica}", func="Subscribe", source="AgentServer")
        self.log.logrus("info", f"Client replica {replica} has disconnected", func="Subscribe", source="AgentServer")
        conn.close()

    def _loaded(self, message: dict[str, Any]) -> None:
        """An agent's load event for the one replica this server has (SERVER_REPLICAS)."""
        name = str(message.get("model"))
        model = next((m for m in self.models if str(m["metadata"]["name"]) == name), None)
        desired = self._desired_replicas(model) if model is not None else 1
        server_replicas = int(self.config.get("server_replicas") or 1)
        if not message.get("ok"):
            # memory_status.go: a LoadFailed replica makes the version ModelFailed with the replica's reason.
            self._set_state(name, "ModelFailed", str(message.get("error") or ""), 0, desired)
            return
        self.available.add(name)
        if desired <= server_replicas:
            self._set_state(name, "ModelAvailable", "", 1, desired)
            return
        # scheduler.go (v2.9–v2.10): the Model asks for more replicas than any Server has; it keeps the replica it
        # already has (no reset while it has live ones) and Envoy keeps routing to it (CanReceiveTraffic).
        msg = "Failed to schedule model as no matching server had enough suitable replicas"
        self.log.logrus("warning", msg, func="scheduleToServer", model=name, source="SimpleScheduler")
        self._set_state(name, "ScheduleFailed", msg, server_replicas, desired)

    def handle_api(self, conn: socket.socket) -> None:
        reader = LineReader(conn)
        while not self.stop.is_set():
            message = reader.read()
            if message is None:
                break
            op = message.get("op")
            if op == "subscribe":
                self.log.logrus("info", f"Received model-status subscribe request from {message.get('subscriber')}",
                                func="SubscribeModelStatus", source="SchedulerServer")
            elif op == "server_notify":
                self.log.logrus("info", "Received ServerNotify request", func="ServerNotify", source="SchedulerServer")
                replicas = int(message.get("expectedReplicas") or 0)
                self.log.logrus("info", f"Server notification {message.get('server')} expectedReplicas {replicas} "
                                "shared false", func="ServerNotify", source="SchedulerServer")
                self.log.logrus("info", f"Signalling synchroniser with {replicas} expected server agents to connect",
                                func="ServerNotify", source="SchedulerServer")
            send(conn, {"op": "ok"})
        conn.close()

    # --- main loop -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.log.logrus("info", "Starting xDS envoy server on port 9002 with secure: false", func="StartEnvoyServer",
                        source="XDSServer")
        self.read_manifests()
        api = serve_lines(int(self.config["api_port"]), self.handle_api, self.stop)
        agents = serve_lines(int(self.config["agent_port"]), self.handle_agent, self.stop)
        self.log.logrus("info", "Scheduler server running on 9004 mtls:false", func="StartGrpcServer",
                        source="SchedulerServer")
        self.log.logrus("info", "Agent server running on 9005 mtls:false", func="StartGrpcServer", source="AgentServer")
        if not self.config.get("wait_for_agent", True):
            # This scheduler's state (its db) already places the models: it programs Envoy without waiting.
            self.apply()
        resync = float(self.config.get("resync_seconds") or 0.0)
        if resync > 0:
            self.stop.wait(float(self.config.get("resync_offset") or 0.0))
            next_at = time.monotonic()
            while not self.stop.is_set():
                next_at += resync
                self.stop.wait(max(0.0, next_at - time.monotonic()))
                if not self.stop.is_set():
                    self.apply()
        else:
            self.stop.wait()
        api.close()
        agents.close()
        self.log.close()


def main() -> None:
    config = load_config()
    stop = stop_event()
    Scheduler(config, stop).run()


if __name__ == "__main__":
    main()
