"""KServe's objects as the checks of area 7 read them: InferenceServices and their components, the deployment mode,
the `ingress` section of `inferenceservice-config`, which InferenceService a pod or a log belongs to, which
InferenceService a recorded request was for, and who answered it (Istio's Envoy, Knative's queue-proxy or
activator, the model server, another application). Pure functions over a Snapshot.

Names and values are KServe's (kserve/kserve aaac4e2, after v0.20.0): the pod labels
`serving.kserve.io/inferenceservice` and `component` (pkg/constants/constants.go), the deployment-mode annotation
`serving.kserve.io/deploymentMode` with `Knative`/`Standard`/`ModelMesh` since v0.16.0 and the legacy
`Serverless`/`RawDeployment` (same file), the precedence status > annotation > ConfigMap
(pkg/controller/v1beta1/inferenceservice/utils/utils.go), and the ConfigMap's `ingress` and `deploy` JSON keys
(pkg/apis/serving/v1beta1/configmap.go, config/configmap/inferenceservice.yaml).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from mlops_trace.findings import Evidence, evidence_line
from mlops_trace.parsers.envoy_access import EnvoyAccessRecord
from mlops_trace.parsers.logs import istio
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import KSERVE_COMPONENT_LABEL, KSERVE_ISVC_LABEL, Role
from mlops_trace.snapshot.snapshot import LogSource, RequestRecord, Snapshot

ISVC = "InferenceService"
KSVC = "Service.serving.knative.dev"  # Knative's Service, keyed apart from the core Service (mlops_trace/kinds.py)
KINGRESS = "Ingress.networking.internal.knative.dev"
ISTIO_GATEWAY = "Gateway.networking.istio.io"
COMPONENTS = ("predictor", "transformer", "explainer")
CONFIG_NAMESPACE = "kserve"
CONFIG_NAME = "inferenceservice-config"
KNATIVE_NAMESPACE = "knative-serving"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
CLUSTER_LOCAL_LABELS = ("networking.knative.dev/visibility", "networking.kserve.io/visibility")
CLUSTER_SUFFIX = "svc.cluster.local"

# A KServe pod's name when its labels are not there: `<isvc>-<component>` then Knative's `-00001-deployment` (with
# the `-default` of v0.10 and before), then the ReplicaSet hash and the pod id.
_POD_NAME = re.compile(
    r"^(?P<isvc>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)-(?P<component>predictor|transformer|explainer)(?:-default)?"
    r"(?:-\d{5}-deployment)?-[a-z0-9]{5,10}-[a-z0-9]{5}$"
)
# The model a V1 or V2 REST path, or a gRPC V2 call, names (kserve/protocol/rest/v1_endpoints.py, v2_endpoints.py).
_V1_MODEL = re.compile(r"/v1/models/([^/:?]+)")
_V2_MODEL = re.compile(r"/v2/models/([^/?]+)")


class Mode(StrEnum):
    KNATIVE = "Knative"
    STANDARD = "Standard"
    MODELMESH = "ModelMesh"


_MODES = {
    "knative": Mode.KNATIVE,
    "serverless": Mode.KNATIVE,
    "standard": Mode.STANDARD,
    "rawdeployment": Mode.STANDARD,
    "modelmesh": Mode.MODELMESH,
}


def mode_of(value: Any) -> Mode | None:
    """A deployment mode as KServe spells it now or before v0.16 (`Serverless`, `RawDeployment`); None otherwise."""
    return _MODES.get(str(value or "").strip().lower())


# --- inferenceservice-config -------------------------------------------------------------------------------------


def inferenceservice_config(snap: Snapshot) -> KubeObject | None:
    """The controller's ConfigMap: in `kserve`, else the one of that name wherever it was installed."""
    found = snap.get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME)
    if found is not None:
        return found
    others = [cm for cm in snap.objects_of("ConfigMap") if cm.name == CONFIG_NAME]
    return others[0] if len(others) == 1 else None


def config_section(config: KubeObject, key: str) -> Mapping[str, Any] | None:
    """One JSON section of a ConfigMap's data (`ingress`, `deploy`); None when absent or not a JSON object."""
    text = as_mapping(config.raw.get("data")).get(key)
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class IngressConfig:
    """The `ingress` section of inferenceservice-config, with where it was read."""

    where: str
    values: Mapping[str, Any]

    def text(self, key: str) -> str:
        value = self.values.get(key)
        return str(value).strip() if isinstance(value, (str, int, float)) else ""

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        return value is True or str(value).strip().lower() == "true"

    def evidence(self, key: str) -> Evidence:
        return Evidence(f"{self.where} .data.ingress.{key}", evidence_line(f"{key}: {self.text(key) or '(empty)'}"))


def ingress_config(snap: Snapshot) -> IngressConfig | None:
    config = inferenceservice_config(snap)
    if config is None:
        return None
    section = config_section(config, "ingress")
    if section is None:
        return None
    return IngressConfig(f"{config.source} {config.ref}", section)


def default_mode(snap: Snapshot) -> tuple[Mode, str] | None:
    """`deploy.defaultDeploymentMode` of inferenceservice-config, with where it was read."""
    config = inferenceservice_config(snap)
    if config is None:
        return None
    mode = mode_of(as_mapping(config_section(config, "deploy")).get("defaultDeploymentMode"))
    return (mode, f"{config.source} {config.ref} .data.deploy") if mode is not None else None


def deployment_mode(snap: Snapshot, isvc: KubeObject) -> tuple[Mode, str] | None:
    """An InferenceService's deployment mode and where it was read: status, then annotation, then the ConfigMap."""
    status = mode_of(isvc.status.get("deploymentMode"))
    if status is not None:
        return status, isvc.field_where(".status.deploymentMode")
    annotated = mode_of(isvc.annotations.get(MODE_ANNOTATION))
    if annotated is not None:
        return annotated, isvc.field_where(f".metadata.annotations[{MODE_ANNOTATION}]")
    return default_mode(snap)


# --- components, pods, logs ---------------------------------------------------------------------------------------


def components_of(isvc: KubeObject) -> list[str]:
    """The components the spec declares, predictor first."""
    return [name for name in COMPONENTS if isinstance(isvc.spec.get(name), Mapping)]


def component_name(isvc_name: str, component: str) -> str:
    """The ksvc / Deployment / Service name of a component (`<isvc>-predictor`)."""
    return f"{isvc_name}-{component}"


def isvc_of_pod(pod_name: str, labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(InferenceService, component) of a pod: from its labels, else from its name."""
    isvc = labels.get(KSERVE_ISVC_LABEL)
    if isvc:
        return isvc, labels.get(KSERVE_COMPONENT_LABEL) or "predictor"
    named = _POD_NAME.match(pod_name)
    return (named.group("isvc"), named.group("component")) if named else None


def isvc_of_log(snap: Snapshot, log: LogSource) -> tuple[str, str] | None:
    pod = snap.get("Pod", log.namespace, log.pod)
    return isvc_of_pod(log.pod, pod.labels if pod is not None else {})


def kserve_pods(snap: Snapshot, namespace: str | None = None) -> Iterator[tuple[KubeObject, str, str]]:
    """(Pod, InferenceService, component) of every pod an InferenceService owns."""
    for pod in snap.objects_of("Pod", namespace):
        owner = isvc_of_pod(pod.name, pod.labels)
        if owner is not None:
            yield pod, owner[0], owner[1]


def container_status(pod: KubeObject, name: str, *, init: bool = False) -> tuple[int, Mapping[str, Any]] | None:
    """(index, status) of a container (or init container) of a Pod, by name."""
    key = "initContainerStatuses" if init else "containerStatuses"
    for index, item in enumerate(as_list(pod.status.get(key))):
        status = as_mapping(item)
        if status.get("name") == name:
            return index, status
    return None


def container_spec(pod: KubeObject, name: str, *, init: bool = False) -> tuple[int, Mapping[str, Any]] | None:
    key = "initContainers" if init else "containers"
    for index, item in enumerate(as_list(pod.spec.get(key))):
        container = as_mapping(item)
        if container.get("name") == name:
            return index, container
    return None


def env_names(container: Mapping[str, Any]) -> set[str]:
    """Names of a container's env entries, literal or from a Secret or ConfigMap (their values are never read)."""
    return {str(as_mapping(item).get("name")) for item in as_list(container.get("env")) if as_mapping(item).get("name")}


def container_args(container: Mapping[str, Any]) -> list[str]:
    return [str(arg) for arg in [*as_list(container.get("command")), *as_list(container.get("args"))]]


def arg_value(args: list[str], flag: str) -> str | None:
    """The value of `--flag value` or `--flag=value`."""
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


# --- conditions -------------------------------------------------------------------------------------------------


def condition_evidence(obj: KubeObject, type_: str) -> Evidence | None:
    """A condition as evidence: `.status.conditions[i]` and `Type=Status reason: message`."""
    for index, cond in enumerate(obj.conditions()):
        if str(cond.get("type")) == type_:
            reason = str(cond.get("reason") or "")
            message = str(cond.get("message") or "")
            text = f"{type_}={cond.get('status')}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
            return Evidence(obj.field_where(f".status.conditions[{index}]"), evidence_line(text))
    return None


def condition_state(obj: KubeObject, type_: str) -> str:
    """`True`, `False`, `Unknown`, or `` when the condition is absent."""
    cond = obj.condition(type_)
    return str(cond.get("status") or "Unknown") if cond is not None else ""


def condition_words(obj: KubeObject, type_: str) -> str:
    """`reason: message` of a condition, for matching."""
    cond = obj.condition(type_)
    if cond is None:
        return ""
    return f"{cond.get('reason') or ''}: {cond.get('message') or ''}"


# --- hosts and requests -----------------------------------------------------------------------------------------


def url_host(url: Any) -> str:
    """The host of a URL (no port), lower-case; `` when it has none."""
    if not isinstance(url, str) or "://" not in url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def bare_host(authority: str | None) -> str:
    """A Host header without its port, lower-case."""
    text = (authority or "").strip().lower()
    if text.startswith("["):
        return text.split("]", 1)[0] + "]"
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def isvc_hosts(isvc: KubeObject) -> list[tuple[str, str]]:
    """(host, where) of an InferenceService's URLs: `.status.url` and `.status.address.url`."""
    found: list[tuple[str, str]] = []
    for path, value in ((".status.url", isvc.status.get("url")),
                        (".status.address.url", as_mapping(isvc.status.get("address")).get("url"))):
        host = url_host(value)
        if host and host not in (h for h, _ in found):
            found.append((host, isvc.field_where(path)))
    return found


def request_model(path: str) -> str | None:
    """The model a V1 (`/v1/models/<m>:predict`) or V2 (`/v2/models/<m>/infer`) path names."""
    for pattern in (_V1_MODEL, _V2_MODEL):
        found = pattern.search(path)
        if found is not None:
            return found.group(1)
    return None


def is_inference_path(path: str) -> bool:
    return request_model(path) is not None or path.startswith("/inference.")


def isvc_for_request(snap: Snapshot, record: RequestRecord) -> KubeObject | None:
    """The InferenceService a recorded request was for: the one whose URL host is its Host, else the one of its
    namespace (or of the snapshot, when there is one) named like the model of its path."""
    host = bare_host(record.authority)
    isvcs = snap.objects_of(ISVC, record.namespace) if record.namespace else snap.objects_of(ISVC)
    if host:
        for isvc in isvcs:
            if host in (h for h, _ in isvc_hosts(isvc)):
                return isvc
    model = request_model(record.path)
    named = [isvc for isvc in isvcs if isvc.name == model]
    return named[0] if len(named) == 1 else None


class Answer(StrEnum):
    """Who answered a recorded request, from its status, headers and body (KSERVE-FACTS §4.3)."""

    ENVOY_NO_ROUTE = "Istio's Envoy found no route for the Host and path (404, empty body)"
    ENVOY_NO_UPSTREAM = "Istio's Envoy had no healthy upstream (503)"
    ENVOY_CONNECT = "Istio's Envoy could not connect to the upstream (503)"
    ENVOY_TIMEOUT = "Istio's Envoy timed out (504 upstream request timeout)"
    QUEUE_PROXY_TIMEOUT = "Knative's queue-proxy timed out (504 request timeout)"
    ACTIVATOR_TIMEOUT = "Knative's activator timed out (504 activator request timeout)"
    MODEL_SERVER = "the model server"
    OTHER_APP = "another application behind the gateway"
    OTHER = "not told"


# Envoy's local replies (envoyproxy/envoy 001b1c0 source/common/router/router.cc: `no healthy upstream` in
# sendNoHealthyUpstreamResponse, `upstream request timeout` in onUpstreamTimeoutAbort, `upstream connect error or
# disconnect/reset before headers. …` in onUpstreamReset); the `server: istio-envoy` Istio's proxies write over the
# upstream's (istio/istio f3c1195 pilot/pkg/networking/util/proxy_headers.go, ServerName with OVERWRITE); Knative's
# timeout bodies (knative/serving 98e5ef9 pkg/queue/sharedmain/handlers.go `request timeout`, cmd/activator/main.go
# `activator request timeout`).
_NO_UPSTREAM_FLAGS = frozenset({"UH", "NC"})
_CONNECT_FLAGS = frozenset({"UF", "URX", "UC", "UR", "LR"})


def who_answered(record: RequestRecord) -> Answer:
    body = record.body.strip()
    lowered = body.lower()
    server = record.response_headers.get("server", "").lower()
    flags = set(record.envoy_flags)
    if "x-powered-by" in record.response_headers or lowered.startswith("<!doctype") or "cannot post" in lowered:
        return Answer.OTHER_APP
    if record.status == 504:
        if lowered == "activator request timeout":
            return Answer.ACTIVATOR_TIMEOUT
        if lowered == "request timeout":
            return Answer.QUEUE_PROXY_TIMEOUT
        if "UT" in flags or lowered == "upstream request timeout":
            return Answer.ENVOY_TIMEOUT
    proxied = "x-envoy-upstream-service-time" in record.response_headers  # an upstream answered through Envoy
    if record.status == 404 and not body and not proxied and ("NR" in flags or "envoy" in server):
        return Answer.ENVOY_NO_ROUTE
    if record.status in (500, 503) and (flags & _NO_UPSTREAM_FLAGS or lowered == "no healthy upstream"):
        return Answer.ENVOY_NO_UPSTREAM
    if record.status in (502, 503) and (flags & _CONNECT_FLAGS or lowered.startswith("upstream connect error")):
        return Answer.ENVOY_CONNECT
    if body.startswith("{") or server == "uvicorn":
        return Answer.MODEL_SERVER
    return Answer.OTHER


def describe_request(record: RequestRecord) -> str:
    """One line for evidence: method, Host, path, status, server, body, flags."""
    host = f" Host {record.authority}" if record.authority else " (no Host)"
    outcome = str(record.status) if record.status is not None else "no status"
    server = record.response_headers.get("server")
    said = f" server: {server}" if server else ""
    body = f" body {record.body.strip()!r}" if record.body.strip() else " empty body"
    flags = f" flags {','.join(record.envoy_flags)}" if record.envoy_flags else ""
    return evidence_line(f"{record.method} {record.path}{host} -> {outcome}{said}{body}{flags}")


# --- the Istio gateway's access log ---------------------------------------------------------------------------------


def gateway_access(snap: Snapshot, needles: tuple[str, ...]) -> Iterator[tuple[LogSource, EnvoyAccessRecord]]:
    """The Istio ingress gateway's access lines that mention one of `needles`, parsed by `parsers.logs.istio` (Istio's
    text and JSON formats); each as the Envoy record it holds, the fields every check here reads."""
    for log in snap.logs_of(Role.ISTIO_GATEWAY):
        for record in istio.iter_records(log.lines_mentioning(needles)):
            yield log, record.access


def failed_requests_for(snap: Snapshot, namespace: str | None, isvc_name: str) -> list[RequestRecord]:
    """Recorded requests for an InferenceService that got no answer or an error status."""
    found: list[RequestRecord] = []
    for record in snap.requests:
        if record.status is not None and record.status < 400:
            continue
        isvc = isvc_for_request(snap, record)
        if isvc is not None and isvc.name == isvc_name and (namespace is None or isvc.namespace == namespace):
            found.append(record)
    return found


def request_evidence(records: list[RequestRecord], limit: int = 2) -> list[Evidence]:
    return [Evidence(record.display, describe_request(record)) for record in records[:limit]]


def storage_uri(isvc: KubeObject) -> tuple[str, str] | None:
    """(storageUri, where) of the predictor: `.spec.predictor.model.storageUri`, or the legacy framework key
    (`.spec.predictor.sklearn.storageUri`)."""
    predictor = as_mapping(isvc.spec.get("predictor"))
    for key, value in predictor.items():
        uri = as_mapping(value).get("storageUri")
        if isinstance(uri, str) and uri.strip():
            return uri.strip(), isvc.field_where(f".spec.predictor.{key}.storageUri")
    return None


def owner_isvc(snap: Snapshot, obj: KubeObject) -> tuple[str, str] | None:
    """(InferenceService, component) that owns a Knative object (ksvc, Route, Configuration, Revision, KIngress):
    from its `serving.kserve.io/inferenceservice` label, else its `<isvc>-<component>[-NNNNN]` name when that
    InferenceService is in the snapshot."""
    labelled = obj.labels.get(KSERVE_ISVC_LABEL)
    if labelled:
        return labelled, obj.labels.get(KSERVE_COMPONENT_LABEL) or _component_in(obj.name, labelled)
    for component in COMPONENTS:
        marker = f"-{component}"
        at = obj.name.find(marker)
        if at > 0 and snap.get(ISVC, obj.namespace, obj.name[:at]) is not None:
            return obj.name[:at], component
    return None


def _component_in(name: str, isvc: str) -> str:
    rest = name[len(isvc) + 1 :] if name.startswith(isvc + "-") else ""
    return next((c for c in COMPONENTS if rest.startswith(c)), "predictor")


# --- Knative revision timeouts ----------------------------------------------------------------------------------

# Knative's defaults when a Revision sets none (knative/serving 98e5ef9 config/core/configmaps/defaults.yaml:
# `revision-timeout-seconds: "300"`, `revision-response-start-timeout-seconds` defaulting to it); KServe's component
# `timeout` sets both timeoutSeconds and responseStartTimeoutSeconds (reconcilers/knative/ksvc_reconciler.go).
KNATIVE_DEFAULT_TIMEOUT_S = 300
CONFIG_DEFAULTS = "config-defaults"
_TIMEOUT_KEYS = ("timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds")


def component_revision(snap: Snapshot, isvc: KubeObject, component: str = "predictor") -> KubeObject | None:
    """The Revision a component serves from: `.status.components.<c>.latestReadyRevision` (else latestCreated)."""
    status = as_mapping(as_mapping(isvc.status.get("components")).get(component))
    for key in ("latestReadyRevision", "latestCreatedRevision"):
        name = status.get(key)
        if isinstance(name, str) and name:
            found = snap.get("Revision", isvc.namespace, name)
            if found is not None:
                return found
    return None


def revision_timeout_words(snap: Snapshot, revision: KubeObject | None) -> tuple[str, list[Evidence]]:
    """The request timeouts queue-proxy enforces for a revision, in words, and where they were read."""
    if revision is not None:
        set_ = [(key, revision.spec.get(key)) for key in _TIMEOUT_KEYS if revision.spec.get(key) is not None]
        if set_:
            words = ", ".join(f"{key} {value} s" for key, value in set_)
            shown = [Evidence(revision.field_where(f".spec.{key}"), f"{key}: {value}") for key, value in set_]
            return f"Revision {revision.name} {words}", shown
    defaults = snap.get("ConfigMap", KNATIVE_NAMESPACE, CONFIG_DEFAULTS)
    value = as_mapping(defaults.raw.get("data")).get("revision-timeout-seconds") if defaults is not None else None
    if defaults is not None and value is not None:
        return (f"revision-timeout-seconds {value} s ({CONFIG_DEFAULTS}; the revision sets none)",
                [Evidence(f"{defaults.source} {defaults.ref} .data.revision-timeout-seconds", f"{value}")])
    return f"Knative's default revision timeout {KNATIVE_DEFAULT_TIMEOUT_S} s (no timeout read)", []
