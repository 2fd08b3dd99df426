"""The `additionalPrinterColumns` of the custom resources a served bundle holds, and the table convertor's reading
of them: the cells kubectl prints for `get inferenceservices`, `get ksvc`, `get vs`.

Each kind's columns are those of its CRD at the version named beside it, in their order. The convertor
(k8s.io/apiextensions-apiserver `pkg/registry/customresource/tableconvertor`) takes the first value the column's
JSONPath finds: a `string` column prints a list or a map as compact JSON (`["mesh"]`), a `date` column becomes an age,
other types keep the JSON value. A kind of no entry gets NAME and AGE, as a CRD without printer columns does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_trace.snapshot.kube import as_list, as_mapping


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0


_AGE_PATH = ".metadata.creationTimestamp"
_AGE = PrinterColumn("Age", "date", _AGE_PATH)


def _ready(description: str = "") -> PrinterColumn:
    return PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status", description)


_REASON = PrinterColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason")
_PREDICTOR_TRAFFIC = ".status.components.predictor.traffic"

# Seldon: SeldonIO/seldon-core at tag v2.10.0, operator/config/crd/bases/mlops.seldon.io_{models,servers,
# experiments,pipelines}.yaml, `spec.versions[v1alpha1].additionalPrinterColumns`.
_SELDON: dict[str, tuple[PrinterColumn, ...]] = {
    "Model": (
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="ModelReady")].status', "Model ready status"),
        PrinterColumn("Desired Replicas", "integer", ".spec.replicas", "Number of desired replicas"),
        PrinterColumn("Available Replicas", "integer", ".status.availableReplicas",
                      "Number of replicas available to receive inference requests"),
        PrinterColumn("ModelGw Ready", "string", ".status.modelgwReady", "Model Gateway ready status"),
        _AGE,
    ),
    "Server": (
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Server ready status"),
        PrinterColumn("Replicas", "integer", ".status.replicas", "Number of replicas"),
        PrinterColumn("Loaded Models", "integer", ".status.loadedModels", "Number of loaded models"),
        _AGE,
    ),
    "Experiment": (
        PrinterColumn("Experiment ready", "string", ".status.conditions[?(@.type=='ExperimentReady')].status",
                      "Experiment ready status"),
        PrinterColumn("Candidates ready", "string", ".status.conditions[?(@.type=='CandidatesReady')].status",
                      "Candidates ready status", priority=1),
        PrinterColumn("Mirror ready", "string", ".status.conditions[?(@.type=='MirrorReady')].status",
                      "Mirror ready status", priority=1),
        PrinterColumn("Message", "string", ".status.conditions[?(@.type=='Ready')].message", "Status message"),
        _AGE,
    ),
    "Pipeline": (
        PrinterColumn("Pipeline ready", "string", ".status.conditions[?(@.type=='Ready')].status",
                      "Pipeline ready status"),
        PrinterColumn("Models ready", "string", ".status.conditions[?(@.type=='ModelsReady')].status",
                      "Models ready status", priority=1),
        PrinterColumn("PipelineGw ready", "string", ".status.conditions[?(@.type=='PipelineGwReady')].status",
                      "PipelineGw ready status", priority=1),
        PrinterColumn("Dataflow ready", "string", ".status.conditions[?(@.type=='PipelineReady')].status",
                      "Dataflow ready status", priority=1),
        PrinterColumn("Message", "string", ".status.conditions[?(@.type=='Ready')].message", "Status message"),
        _AGE,
    ),
}

# KServe: kserve/kserve aaac4e2 (after v0.20.0), config/crd/full/serving.kserve.io_{inferenceservices,
# servingruntimes,clusterservingruntimes,inferencegraphs}.yaml.
_RUNTIME = (
    PrinterColumn("Disabled", "boolean", ".spec.disabled"),
    PrinterColumn("ModelType", "string", ".spec.supportedModelFormats[*].name"),
    PrinterColumn("Containers", "string", ".spec.containers[*].name"),
    _AGE,
)
_KSERVE: dict[str, tuple[PrinterColumn, ...]] = {
    "InferenceService": (
        PrinterColumn("URL", "string", ".status.url"),
        _ready(),
        PrinterColumn("Prev", "integer", f"{_PREDICTOR_TRAFFIC}[?(@.tag=='prev')].percent"),
        PrinterColumn("Latest", "integer", f"{_PREDICTOR_TRAFFIC}[?(@.latestRevision==true)].percent"),
        PrinterColumn("PrevRolledoutRevision", "string", f"{_PREDICTOR_TRAFFIC}[?(@.tag=='prev')].revisionName"),
        PrinterColumn("LatestReadyRevision", "string",
                      f"{_PREDICTOR_TRAFFIC}[?(@.latestRevision==true)].revisionName"),
        _AGE,
    ),
    "ServingRuntime": _RUNTIME,
    "ClusterServingRuntime": _RUNTIME,
    "InferenceGraph": (PrinterColumn("URL", "string", ".status.url"), _ready(), _AGE),
}

# Knative: knative/serving knative-v1.23.0 (98e5ef9), config/core/300-resources/{service,configuration,revision,
# route,podautoscaler}.yaml and vendor/knative.dev/networking/config/ingress.yaml. None of them has an Age column.
_LATEST = (
    PrinterColumn("LatestCreated", "string", ".status.latestCreatedRevisionName"),
    PrinterColumn("LatestReady", "string", ".status.latestReadyRevisionName"),
)
_KNATIVE: dict[str, tuple[PrinterColumn, ...]] = {
    "Service.serving.knative.dev": (PrinterColumn("URL", "string", ".status.url"), *_LATEST, _ready(), _REASON),
    "Configuration": (*_LATEST, _ready(), _REASON),
    "Revision": (
        PrinterColumn("Config Name", "string", ".metadata.labels['serving\\.knative\\.dev/configuration']"),
        PrinterColumn("Generation", "string", ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']"),
        _ready(),
        _REASON,
        PrinterColumn("Actual Replicas", "integer", ".status.actualReplicas"),
        PrinterColumn("Desired Replicas", "integer", ".status.desiredReplicas"),
    ),
    "Route": (PrinterColumn("URL", "string", ".status.url"), _ready(), _REASON),
    "Ingress.networking.internal.knative.dev": (_ready(), _REASON),
    "PodAutoscaler": (
        PrinterColumn("DesiredScale", "integer", ".status.desiredScale"),
        PrinterColumn("ActualScale", "integer", ".status.actualScale"),
        _ready(),
        _REASON,
    ),
}

# Istio: istio/istio 86c9f01 (1.31), manifests/charts/base/files/crd-all.gen.yaml, the same at v1alpha3, v1beta1 and
# v1 (Gateway declares none). Gateway API: the v1.6.0 CRDs istio/istio vendors in
# tests/integration/pilot/testdata/gateway-api-crd.yaml.
_ISTIO_AGE = PrinterColumn("Age", "date", _AGE_PATH, "CreationTimestamp is a timestamp representing the server time "
                           "when this object was created. It is not guaranteed to be set in happens-before order "
                           "across separate operations. Clients may not set this value. It is represented in RFC3339 "
                           "form and is in UTC. Populated by the system. Read-only. Null for lists.")
_NETWORKING: dict[str, tuple[PrinterColumn, ...]] = {
    "VirtualService": (
        PrinterColumn("Gateways", "string", ".spec.gateways",
                      "The names of gateways and sidecars that should apply these routes"),
        PrinterColumn("Hosts", "string", ".spec.hosts", "The destination hosts to which traffic is being sent"),
        _ISTIO_AGE,
    ),
    "DestinationRule": (
        PrinterColumn("Host", "string", ".spec.host", "The name of a service from the service registry"),
        _ISTIO_AGE,
    ),
    "HTTPRoute": (PrinterColumn("Hostnames", "string", ".spec.hostnames"), _AGE),
    "Gateway.gateway.networking.k8s.io": (
        PrinterColumn("Class", "string", ".spec.gatewayClassName"),
        PrinterColumn("Address", "string", ".status.addresses[*].value"),
        PrinterColumn("Programmed", "string", '.status.conditions[?(@.type=="Programmed")].status'),
        _AGE,
    ),
}

# By kind key (`kinds.KindSpec.key`).
CRD_PRINTER_COLUMNS: dict[str, tuple[PrinterColumn, ...]] = {**_SELDON, **_KSERVE, **_KNATIVE, **_NETWORKING}


# --- the JSONPath subset those columns use -----------------------------------------------------------------------

# `.field`, `['key.with\.escaped\.dots']`, `[*]`, `[?(@.key=='value')]` / `[?(@.key==true)]`.
_STEP = re.compile(
    r"""\.(?P<field>[\w-]+)"""
    r"""|\[(?P<quote>['"])(?P<key>(?:\\.|(?!(?P=quote)).)*)(?P=quote)\]"""
    r"""|\[\*\]"""
    r"""|\[\?\(@\.(?P<fkey>\w+)==(?:(?P<fq>['"])(?P<fstr>[^'"]*)(?P=fq)|(?P<flit>true|false|-?\d+(?:\.\d+)?))\)\]"""
)
_Step = Callable[[list[Any]], list[Any]]


def _compile(path: str) -> list[_Step]:
    steps: list[_Step] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        steps.append(_step(match))
        position = match.end()
    if not steps:
        raise ValueError(f"unsupported JSONPath {path!r}")
    return steps


def _step(match: re.Match[str]) -> _Step:
    if match["field"] is not None or match["key"] is not None:
        name = match["field"] if match["field"] is not None else re.sub(r"\\(.)", r"\1", match["key"])
        return lambda values: [as_mapping(v)[name] for v in values if name in as_mapping(v)]
    if match["fkey"] is None:
        return lambda values: [item for v in values for item in as_list(v)]
    key = match["fkey"]
    wanted: Any = match["fstr"] if match["fstr"] is not None else json.loads(match["flit"])

    def keep(values: list[Any]) -> list[Any]:
        found = []
        for entry in (item for v in values for item in as_list(v)):
            value = as_mapping(entry).get(key, _MISSING)
            if value is not _MISSING and type(value) is type(wanted) and value == wanted:
                found.append(entry)
        return found

    return keep


_MISSING = object()


def json_path_values(obj: Mapping[str, Any], path: str) -> list[Any]:
    """Every value one of the printer columns' JSONPaths finds in `obj`, in document order."""
    values: list[Any] = [obj]
    for step in _compile(path):
        values = step(values)
    return values


def json_path_value(obj: Mapping[str, Any], path: str) -> Any:
    """The first value a printer column's JSONPath finds in `obj` (what the table convertor prints), None if none."""
    values = json_path_values(obj, path)
    return values[0] if values else None


def column_cell(column: PrinterColumn, obj: Mapping[str, Any], age: Callable[[Any], Any]) -> Any:
    """The cell the CRD table convertor sends: `age(value)` for a date, compact JSON for a list or a map in a string
    column, the JSON value otherwise."""
    value = json_path_value(obj, column.json_path)
    if column.type == "date":
        return age(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, separators=(",", ":"))
