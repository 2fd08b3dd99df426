"""From Prometheus samples to what a check reports: the namespace and object a series stands for, counts joined to
quantiles by their group labels, and the evidence line that quotes the PromQL and the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck
from mlops_trace.analysis.routing import model_of_cluster, unversioned
from mlops_trace.findings import Evidence
from mlops_trace.promql.families import Family, describe_families
from mlops_trace.promql.plan import plan_queries
from mlops_trace.snapshot.prometheus import PrometheusData, QueryResult, Sample
from mlops_trace.snapshot.snapshot import Snapshot

EVIDENCE_QUERY_CHARS = 400


@dataclass(frozen=True)
class Subject:
    """What a series is about, in the words of a finding."""

    namespace: str | None
    object: str  # `Model/iris`, `Server/mlserver`, `Pod/mlserver-0`, `Service/seldon-mesh`
    words: str  # `Model iris (Envoy cluster iris_1_http)`
    model: str | None = None  # the Seldon model name, without version, when the series names one


def subject_of(sample: Sample, family: Family | None) -> Subject:
    labels = sample.labels
    namespace = labels.get("namespace") or None
    where = f" in {namespace}" if namespace else ""
    cluster = labels.get("envoy_cluster_name")
    if cluster:
        model = model_of_cluster(cluster)
        if model is not None:
            return Subject(namespace, f"Model/{model}", f"Model {model} (Envoy cluster {cluster}){where}", model)
        return Subject(namespace, f"EnvoyCluster/{cluster}", f"Envoy cluster {cluster}{where}")
    if labels.get("model"):
        model = unversioned(labels["model"])
        component = "MLServer" if family is Family.MLSERVER else "Seldon agent"
        return Subject(namespace, f"Model/{model}", f"Model {model} ({component}, model {labels['model']}){where}",
                       model)
    if labels.get("server"):
        return Subject(namespace, f"Server/{labels['server']}", f"Server {labels['server']} (Seldon agent){where}")
    if labels.get("pod"):
        return Subject(namespace, f"Pod/{labels['pod']}", f"Pod {labels['pod']} (MLServer REST){where}")
    if family is Family.ENVOY_LISTENER:
        return Subject(namespace, "Service/seldon-mesh", f"Seldon Envoy (listener seldon_http){where}")
    return Subject(namespace, "Prometheus/series", f"series {sample.label_text()}{where}")


def in_scope(snap: Snapshot, namespace: str | None) -> bool:
    """Whether a series belongs to what the run examines: all of it, unless the snapshot names its namespaces."""
    meta = snap.metadata
    if namespace is None or meta.all_namespaces or not meta.namespaces:
        return True
    return namespace in meta.namespaces


def prometheus_of(snap: Snapshot) -> PrometheusData:
    data = snap.prometheus
    if data is None or not data.results:
        raise SkipCheck("no Prometheus query results in the input")
    return data


def need(data: PrometheusData, name: str, check_id: str) -> QueryResult:
    """The result `name`, or SkipCheck naming what Prometheus had instead."""
    result = data.get(name)
    if result is not None:
        return result
    present = data.present_metrics()
    if present is None:
        raise SkipCheck(f"no prometheus/{name}.json in the input")
    plan = plan_queries(present, "5m")
    why = plan.unanswered.get(check_id, f"no prometheus/{name}.json")
    raise SkipCheck(f"{why}; Prometheus has {describe_families(present)}")


def counts_by_group(result: QueryResult | None) -> dict[tuple[tuple[str, str], ...], float]:
    if result is None:
        return {}
    return {s.group(): s.value for s in result.samples if not math.isnan(s.value)}


def defined(result: QueryResult) -> Iterator[Sample]:
    """Samples with a finite value (a quantile over no requests is NaN)."""
    for sample in result.samples:
        if not (math.isnan(sample.value) or math.isinf(sample.value)):
            yield sample


def query_evidence(result: QueryResult, sample: Sample, shown: str) -> Evidence:
    """`prometheus/<name>.json` → `<PromQL> = <shown> {labels}`, the PromQL cut to a readable length."""
    query = result.query
    if len(query) > EVIDENCE_QUERY_CHARS:
        query = query[: EVIDENCE_QUERY_CHARS - 1] + "…"
    window = f" (window {result.window})" if result.window else ""
    return Evidence(result.display, f"{query} = {shown} for {sample.label_text()}{window}")


def window_words(result: QueryResult) -> str:
    return f"over the last {result.window}" if result.window else "over the queried window"
