"""MT501 kafka-client-failure: the model gateway, the pipeline gateway or the dataflow engine cannot use Kafka (its
client config does not load, its Kafka client cannot be built, its brokers stay unreachable, or a pipeline's Kafka
Streams application ended in ERROR), so pipelines and Kafka-fed models get no answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.kinds import SELDON_KAFKA_CONFIGMAP
from mlops_trace.parsers.logs import parse_line
from mlops_trace.snapshot.kube import as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource, Snapshot

CHECK = make_check(
    id="MT501",
    slug="kafka-client-failure",
    title="Gateway or dataflow engine cannot use Kafka",
    severity=Severity.CRITICAL,
    requires=("logs:modelgateway|logs:pipelinegateway|logs:dataflow-engine",),
    reads=("kube:ConfigMap", "kube:Pod", "kube:SeldonRuntime"),
    playbook="kafka",
    fix="Make the brokers in the seldon-kafka ConfigMap (SeldonConfig/SeldonRuntime kafkaConfig bootstrap.servers) "
    "reachable from the namespace with the security protocol, certificates and SASL secret they expect, then restart "
    "the gateway or dataflow-engine pods.",
)

_COMPONENTS: Mapping[Role, str] = {
    Role.MODELGATEWAY: "model gateway",
    Role.PIPELINEGATEWAY: "pipeline gateway",
    Role.DATAFLOW: "dataflow engine",
}
# SeldonRuntime condition of each component (operator/apis/mlops/v1alpha1/seldonruntime_types.go, v2.7–v2.10).
_RUNTIME_CONDITIONS: Mapping[Role, str] = {
    Role.MODELGATEWAY: "ModelGatewayReady",
    Role.PIPELINEGATEWAY: "PipelineGatewayReady",
    Role.DATAFLOW: "DataflowEngineReady",
}
# Fatal start-up lines of the Go gateways (scheduler/cmd/modelgateway/main.go, scheduler/cmd/pipelinegateway/main.go,
# `logger.WithError(err).Fatal(...)`, same text v2.7.0–v2.10.2): the process exits right after.
_FATAL = ("failed to load kafka config", "failed to create kafka manager", "failed to create consumer manager")
# A broker the client cannot reach or log in to. librdkafka writes its own lines to stderr
# (`%3|<epoch>|FAIL|rdkafka#producer-1| [thrd:…]: …: Connect to ipv4#… failed: Connection refused …`); the gateways
# log client error events as `Kafka error, code: [%s] msg: [%s]` (scheduler/pkg/kafka/gateway/infer.go,
# pipeline/multi_topic_consumer.go); the dataflow engine's Java client warns `Connection to node -1 (…) could not be
# established. Broker may not be available.` (`Node may not be available.` in newer Apache Kafka clients).
_CONNECT_FAILURE = re.compile(
    r"connect to \S+ failed|failed to resolve|failed to connect to broker|connection setup timed out"
    r"|ssl handshake failed|sasl authentication|authentication failed|failed authentication"
    r"|brokers are down|all broker connections are down"
    r"|could not be established\. (?:broker|node) may not be available",
    re.IGNORECASE,
)
_CLIENT_LINE = re.compile(r"\|(?:FAIL|ERROR)\|rdkafka#|kafka error, code:|org\.apache\.kafka\.", re.IGNORECASE)
# A broker closing an idle connection (`Disconnected (after 600000ms in state UP)`) is routine: not a failure.
_IDLE_CLOSE = re.compile(r"disconnected \(after \d+ms in state up", re.IGNORECASE)
# The dataflow engine's Kafka Streams state listener (scheduler/data-flow/.../kafka/Pipeline.kt `onChange`):
# `pipeline <name> (v<version>) changing to state <STATE>`, klogging RENDER_ISO8601 lines (v2.8+; ANSI before).
_STREAMS_STATE = re.compile(r"pipeline (\S+) \(v(\d+)\) changing to state ([A-Z_]+)")
_STREAMS_ERRORS = frozenset({"ERROR", "PENDING_ERROR"})
_NEEDLES = (
    *_FATAL,
    "rdkafka#",
    "kafka error, code:",
    "may not be available",
    "failed authentication",
    "changing to state",
)
EVIDENCE_LINES = 3
_CONFIG_CHARS = 100_000


@dataclass
class _Scan:
    lines: int = 0
    last_line: int = 0
    fatal: list[tuple[int, str]] = field(default_factory=list)
    connect: list[tuple[int, str]] = field(default_factory=list)
    last_other: int = 0  # last line that is not a Kafka client failure
    streams: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # pipeline -> (lineno, state, text)


def run(snap: Snapshot) -> Iterator[Finding]:
    logs = [log for role in _COMPONENTS for log in snap.logs_of(role)]
    if not any(_has_lines(log) for log in logs):
        raise SkipCheck("the model gateway, pipeline gateway and dataflow engine logs in the bundle are empty")
    for log in sorted(logs, key=lambda item: (item.namespace, item.pod, item.container)):
        finding = _judge(snap, log)
        if finding is not None:
            yield finding


def _has_lines(log: LogSource) -> bool:
    return any(line.strip() for _, line in log.lines())


def _judge(snap: Snapshot, log: LogSource) -> Finding | None:
    current = _scan(log)
    previous = _scan(log.previous_run) if log.previous_run is not None else None
    component = _COMPONENTS[log.role]
    reasons: list[str] = []
    evidence: list[Evidence] = []
    if current.fatal:
        lineno, text = current.fatal[-1]
        reasons.append(f"exits at start-up with `{_short(text, 120)}`")
        evidence.append(Evidence(log.where(lineno), text))
    elif previous is not None and previous.fatal and log.previous_run is not None and current.lines == 0:
        lineno, text = previous.fatal[-1]
        reasons.append(f"exited at start-up with `{_short(text, 120)}` and its new run has logged nothing yet")
        evidence.append(Evidence(log.previous_run.where(lineno), text))
    unrecovered = [c for c in current.connect if c[0] > current.last_other]
    if len(unrecovered) >= 2 or (unrecovered and current.fatal):
        reasons.append(
            f"cannot reach its Kafka brokers: {len(unrecovered)} client failure line(s) end the log with no other "
            "line after them"
        )
        evidence += [Evidence(log.where(n), text) for n, text in unrecovered[:EVIDENCE_LINES]]
        if len(unrecovered) > EVIDENCE_LINES:
            n, text = unrecovered[-1]
            evidence.append(Evidence(log.where(n), f"(last of {len(unrecovered)}) {text}"))
    failed_streams = current.streams
    if failed_streams:
        names = ", ".join(sorted(failed_streams))
        reasons.append(f"Kafka Streams of pipeline(s) {names} ended in ERROR and never returned to RUNNING")
        evidence += [Evidence(log.where(n), text) for n, _, text in sorted(failed_streams.values())[:EVIDENCE_LINES]]
    if not reasons:
        return None
    evidence += _pod_evidence(snap, log)
    evidence += _runtime_evidence(snap, log)
    config, config_evidence = _kafka_config(snap, log.namespace)
    evidence += config_evidence
    message = f"The {component} {log.pod} " + "; ".join(reasons) + f"{config}."
    return CHECK.finding(namespace=log.namespace, object=f"Pod/{log.pod}", message=message, evidence=evidence)


def _scan(log: LogSource) -> _Scan:
    scan = _Scan()
    for lineno, line in log.lines():
        if not line.strip():
            continue
        scan.lines += 1
        scan.last_line = lineno
        lowered = line.lower()
        if not any(needle in lowered for needle in _NEEDLES):
            scan.last_other = lineno
            continue
        if any(needle in lowered for needle in _FATAL):
            record = parse_line(lineno, line)
            error = record.fields.get("error") or record.fields.get("err") or ""
            text = record.message or record.raw
            scan.fatal.append((lineno, _short(f"{text}: {error}" if error else text)))
            scan.last_other = lineno
            continue
        state = _STREAMS_STATE.search(line)
        if state is not None:
            # Only RUNNING mends an error: the states a failed application passes through while the engine closes
            # it (PENDING_SHUTDOWN, NOT_RUNNING) do not.
            if state.group(3) in _STREAMS_ERRORS:
                scan.streams[state.group(1)] = (lineno, state.group(3), _short(line[state.start() :]))
            elif state.group(3) == "RUNNING":
                scan.streams.pop(state.group(1), None)
            scan.last_other = lineno
            continue
        if _CLIENT_LINE.search(line) and _CONNECT_FAILURE.search(line) and not _IDLE_CLOSE.search(line):
            scan.connect.append((lineno, _short(line)))
            continue
        if not _CLIENT_LINE.search(line):
            scan.last_other = lineno
    return scan


def _pod_evidence(snap: Snapshot, log: LogSource) -> list[Evidence]:
    pod = snap.get("Pod", log.namespace, log.pod)
    if pod is None:
        return []
    for index, item in enumerate(as_list(pod.status.get("containerStatuses"))):
        status = as_mapping(item)
        if status.get("name") != log.container:
            continue
        parts = [f"ready={str(status.get('ready') is True).lower()}", f"restartCount={status.get('restartCount', 0)}"]
        waiting = as_mapping(as_mapping(status.get("state")).get("waiting")).get("reason")
        if waiting:
            parts.append(f"waiting: {waiting}")
        last = as_mapping(as_mapping(status.get("lastState")).get("terminated"))
        if last:
            parts.append(f"last terminated: {last.get('reason', '?')} exit code {last.get('exitCode', '?')}")
        return [Evidence(pod.field_where(f".status.containerStatuses[{index}]"), ", ".join(parts))]
    return []


def _runtime_evidence(snap: Snapshot, log: LogSource) -> list[Evidence]:
    wanted = _RUNTIME_CONDITIONS[log.role]
    evidence: list[Evidence] = []
    for runtime in snap.objects_of("SeldonRuntime", log.namespace):
        for index, cond in enumerate(runtime.conditions()):
            if cond.get("type") == wanted and str(cond.get("status", "")).lower() == "false":
                said = " ".join(str(cond.get(key) or "") for key in ("reason", "message")).strip()
                where = runtime.field_where(f".status.conditions[{index}]")
                evidence.append(Evidence(where, _short(f"{wanted}=False {said}".strip())))
    return evidence


def _kafka_config(snap: Snapshot, namespace: str) -> tuple[str, list[Evidence]]:
    """` (brokers …, security.protocol …)` for the message, and the seldon-kafka ConfigMap's evidence."""
    configmap = snap.get("ConfigMap", namespace, SELDON_KAFKA_CONFIGMAP)
    if configmap is None:
        return "", []
    raw = as_mapping(configmap.raw.get("data")).get("kafka.json")
    where = configmap.field_where('.data["kafka.json"]')
    if not isinstance(raw, str) or not raw.strip():
        return "", [Evidence(where, "no kafka.json key")]
    config = _load_json(raw)
    if config is None:
        return " (the seldon-kafka ConfigMap's kafka.json is not valid JSON)", [Evidence(where, _short(raw))]
    brokers = str(config.get("bootstrap.servers") or "").strip()
    protocols = sorted(
        {
            str(as_mapping(config.get(section)).get("security.protocol"))
            for section in ("consumer", "producer", "streams")
            if as_mapping(config.get(section)).get("security.protocol") is not None
        }
    )
    said = f"bootstrap.servers={brokers or '(empty)'}"
    if protocols:
        said += f" security.protocol={','.join(protocols)}"
    detail = f" (seldon-kafka: {said})" if brokers else " (the seldon-kafka ConfigMap names no bootstrap.servers)"
    return detail, [Evidence(where, said)]


def _load_json(text: str) -> Mapping[str, Any] | None:
    if len(text) > _CONFIG_CHARS:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _short(text: str, limit: int = 200) -> str:
    return evidence_line(text, limit)
