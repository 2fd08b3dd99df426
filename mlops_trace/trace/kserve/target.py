"""What to send where for an InferenceService: the gateway's URL, the Host from the InferenceService's
`.status.url` (KSERVE-FACTS §2.3), the path by protocol — V1 `/v1/models/<m>:predict`, V2 `/v2/models/<m>/infer`,
or V2 gRPC `inference.GRPCInferenceService/ModelInfer` — and the model name (the InferenceService's own name
unless the serving container says `--model_name`). No Seldon header is ever added.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlops_trace.analysis.kserve import (
    ISVC,
    KNATIVE_NAMESPACE,
    Mode,
    arg_value,
    component_name,
    components_of,
    container_args,
    deployment_mode,
    ingress_config,
    url_host,
)
from mlops_trace.errors import UsageError
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot
from mlops_trace.trace.record import Protocol
from mlops_trace.trace.target import Target, parse_header

APIS = ("v1", "v2")


@dataclass(frozen=True)
class Isvc:
    """An InferenceService as the request needs it; `obj` None when no snapshot holds it."""

    name: str
    namespace: str | None
    obj: KubeObject | None = None
    mode: Mode | None = None
    mode_where: str = ""
    host: str | None = None  # the host of `.status.url`
    url_where: str = ""
    transformer: bool = False
    model_name: str | None = None  # what the entry component serves (`--model_name`), when its spec says
    protocol_version: str | None = None  # `.spec.predictor.model.protocolVersion`

    @property
    def knative(self) -> bool:
        return self.mode is not Mode.STANDARD

    @property
    def entry_component(self) -> str:
        return "transformer" if self.transformer else "predictor"

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"InferenceService {where}{self.name}"


def _model_name_arg(spec: Mapping[str, object]) -> str | None:
    for item in as_list(spec.get("containers")):
        value = arg_value(container_args(as_mapping(item)), "--model_name")
        if value:
            return value
    return None


_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
KNATIVE_DOMAIN_TEMPLATE = "{{.Name}}.{{.Namespace}}.{{.Domain}}"  # config-network's default (knative/networking)
KSERVE_DOMAIN_TEMPLATE = "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"  # inferenceservice-config's default


def _render(template: str, values: Mapping[str, str]) -> str | None:
    """A domain template with only `{{.Field}}` substitutions; None for anything else (pipes, functions)."""
    rendered = _TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1), "\0"), template)
    return None if "{{" in rendered or "\0" in rendered else rendered


def _knative_domain(snap: Snapshot) -> tuple[str, str]:
    """config-domain's default domain (the key with an empty selector, else the first), and where it was read; no
    entry → `svc.cluster.local` (Knative since knative-v1.11, KSERVE-FACTS §3.3)."""
    config = snap.get("ConfigMap", KNATIVE_NAMESPACE, "config-domain")
    data = {k: v for k, v in as_mapping(config.raw.get("data")).items() if not str(k).startswith("_")} if config else {}
    if config is None or not data:
        return "svc.cluster.local", "Knative's default domain (no config-domain entry)"
    chosen = next((str(k) for k, v in data.items() if not str(v or "").strip()), str(next(iter(data))))
    return chosen, f"{config.source} {config.ref} .data"


def derived_host(snap: Snapshot, obj: KubeObject, mode: Mode | None) -> tuple[str, str] | None:
    """The Host KServe will give an InferenceService that has no `.status.url` yet (not ready): Knative's domain
    template over config-domain's domain, or, in Standard mode, inferenceservice-config's `domainTemplate`."""
    values = {"Name": obj.name, "Namespace": obj.namespace or "default"}
    if mode is Mode.STANDARD:
        config = ingress_config(snap)
        template = (config.text("domainTemplate") if config else "") or KSERVE_DOMAIN_TEMPLATE
        values["IngressDomain"] = (config.text("ingressDomain") if config else "") or "example.com"
        where = config.where + " .data.ingress.domainTemplate" if config else "KServe's default domainTemplate"
    else:
        network = snap.get("ConfigMap", KNATIVE_NAMESPACE, "config-network")
        template = str(as_mapping(network.raw.get("data")).get("domain-template") or "") if network else ""
        template = template or KNATIVE_DOMAIN_TEMPLATE
        values["Domain"], where = _knative_domain(snap)
    host = _render(template, values)
    return (host.lower(), where) if host else None


def read_isvc(snap: Snapshot | None, name: str, namespace: str | None) -> Isvc:
    """The InferenceService `name` (in `namespace`, or the only one of that name) from the snapshot; UsageError when
    the snapshot has InferenceServices but not this one."""
    if snap is None:
        return Isvc(name, namespace)
    found = snap.get(ISVC, namespace, name) if namespace else None
    if found is None:
        named = [obj for obj in snap.objects_of(ISVC, namespace) if obj.name == name]
        found = named[0] if len(named) == 1 else None
    if found is None:
        known = sorted(f"{obj.namespace}/{obj.name}" for obj in snap.objects_of(ISVC))
        if known:
            raise UsageError(f"--isvc {name}: no such InferenceService in {snap.source} (there: {', '.join(known)})")
        return Isvc(name, namespace)
    mode = deployment_mode(snap, found)
    host = url_host(found.status.get("url"))
    url_where = found.field_where(".status.url") if host else ""
    if not host:
        derived = derived_host(snap, found, mode[0] if mode is not None else None)
        if derived is not None:
            host, url_where = derived[0], f"no .status.url (not ready): Host from {derived[1]}"
    components = components_of(found)
    entry = "transformer" if "transformer" in components else "predictor"
    predictor = as_mapping(found.spec.get("predictor"))
    version = as_mapping(predictor.get("model")).get("protocolVersion")
    return Isvc(
        name=found.name,
        namespace=found.namespace,
        obj=found,
        mode=mode[0] if mode is not None else None,
        mode_where=mode[1] if mode is not None else "",
        host=host or None,
        url_where=url_where,
        transformer=entry == "transformer",
        model_name=_model_name_arg(as_mapping(found.spec.get(entry))),
        protocol_version=str(version) if version else None,
    )


def default_api(isvc: Isvc) -> str:
    """V2 when the predictor declares `protocolVersion: v2` (or grpc-v2), else V1 (KServe's default)."""
    return "v2" if (isvc.protocol_version or "").endswith("v2") else "v1"


def build_isvc_target(
    url: str,
    isvc: Isvc,
    *,
    api: str,
    protocol: Protocol,
    model: str | None = None,
    host: str | None = None,
    extra_headers: Sequence[str] = (),
) -> Target:
    """The Target of a request to `isvc` through the gateway at `url`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: expected http(s)://host[:port] (the gateway's address)")
    if api not in APIS:
        raise UsageError(f"--isvc-protocol must be v1 or v2 (got {api!r})")
    if protocol is Protocol.GRPC and api != "v2":
        raise UsageError("gRPC is KServe's V2 protocol: use --protocol grpc with --isvc-protocol v2")
    name = model or isvc.model_name or isvc.name
    if not name or "/" in name:
        raise UsageError(f"{name!r} is not a model name")
    headers = [parse_header(item) for item in extra_headers]
    if "host" in {key for key, _ in headers}:
        raise UsageError("-H Host: ... is not sent as a header; use --host")
    host_header = (host or "").strip() or isvc.host
    if host_header is None:
        raise UsageError(
            f"--isvc {isvc.name}: its Host is unknown (no `.status.url`: the InferenceService is not ready, or no "
            "cluster source was given); give --host"
        )
    prefix = parts.path.rstrip("/")
    if "/v1/" in prefix + "/" or "/v2/" in prefix + "/":
        raise UsageError(f"--url {url!r}: give the gateway URL without /v1 or /v2; the path is built from the model")
    return Target(
        base_url=f"{parts.scheme}://{parts.netloc}",
        prefix=prefix,
        host_header=host_header,
        name=name,
        is_experiment=False,
        protocol=protocol,
        headers=tuple(headers),
        api=api,
        label=isvc.describe(),
    )


def component_host(isvc: Isvc, component: str) -> str:
    """The Host KServe's VirtualService sets for a component (`<isvc>-<component>.<ns>.svc.cluster.local`)."""
    return f"{component_name(isvc.name, component)}.{isvc.namespace}.svc.cluster.local"
