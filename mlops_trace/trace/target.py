"""What to send where: the ingress URL, the Host, the inference path and the headers that pick a Model or an
Experiment in Seldon Core v2.

`--experiment E` sends `seldon-model: E.experiment` on `/v2/models/E/infer` (Seldon's documented form: the agent
ignores the URL name, the header selects the route). `--model M` sends `/v2/models/M/infer`; over REST the
`seldon-model` header is left to Envoy's Lua filter, as a curl user would, while gRPC always carries it as metadata
(the filter never fills it for gRPC). A user's own `-H seldon-model` that misses the experiment is named before anything
is sent; the checks judge the request it recorded afterwards.

`--as-is` sends the user's headers only (no `seldon-model` of ours, no warning), so a client's mistake, such as an
experiment called without its header, is reproduced exactly; the tracing ids `x-request-id` and `traceparent` are
still added, as no router matches on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlops_trace.analysis.routing import SELDON_MODEL, experiment_route_name
from mlops_trace.errors import UsageError
from mlops_trace.trace.record import Protocol

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT = "traceparent"
GRPC_SERVICE = "inference.GRPCInferenceService"


@dataclass(frozen=True)
class Target:
    """Everything about a request except its ids: built once per run."""

    base_url: str  # scheme://host:port, without a path
    prefix: str  # the URL's path before /v2 ("" or "/financial-inference")
    host_header: str | None  # --host, when it differs from the URL's host
    name: str  # the model or experiment name in the path
    is_experiment: bool
    protocol: Protocol
    headers: tuple[tuple[str, str], ...]  # lower-case names, our own and the user's
    warnings: tuple[str, ...] = ()
    as_is: bool = False  # only the user's headers (plus the tracing ids)
    api: str = "v2"  # the inference API of the path: "v2" (Open Inference Protocol) or "v1" (KServe's V1)
    label: str | None = None  # how `describe()` names the target, when not "model <name>" (an InferenceService)

    @property
    def infer_path(self) -> str:
        if self.api == "v1":
            return f"{self.prefix}/v1/models/{self.name}:predict"
        return f"{self.prefix}/v2/models/{self.name}/infer"

    @property
    def metadata_path(self) -> str:
        return f"{self.prefix}/{'v1' if self.api == 'v1' else 'v2'}/models/{self.name}"

    @property
    def url_host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def url_port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme

    @property
    def authority(self) -> str:
        """The Host the ingress sees: --host, else the URL's host[:port]."""
        return self.host_header or urlsplit(self.base_url).netloc

    @property
    def seldon_model(self) -> str | None:
        return self.header(SELDON_MODEL)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key == lowered), None)

    def header_map(self) -> dict[str, str]:
        return dict(self.headers)

    def describe(self) -> str:
        if self.label is not None:
            return self.label
        return f"experiment {self.name}" if self.is_experiment else f"model {self.name}"


def parse_header(value: str) -> tuple[str, str]:
    """`-H 'name: value'` (or `name=value`) → (lower-case name, value)."""
    for separator in (":", "="):
        name, sep, rest = value.partition(separator)
        if sep and name.strip():
            return name.strip().lower(), rest.strip()
    raise UsageError(f"-H {value!r}: expected 'Name: value'")


def build_target(
    url: str,
    *,
    host: str | None,
    model: str | None,
    experiment: str | None,
    extra_headers: Sequence[str] = (),
    protocol: Protocol = Protocol.REST,
    as_is: bool = False,
) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: expected http(s)://host[:port][/prefix]")
    if (model is None) == (experiment is None):
        raise UsageError("say what to call: --model NAME or --experiment NAME (one of them)")
    name = experiment if experiment is not None else model
    assert name is not None
    if not name or "/" in name:
        raise UsageError(f"{name!r} is not a model or experiment name")
    user = [parse_header(item) for item in extra_headers]
    user_names = {key for key, _ in user}
    if "host" in user_names:
        raise UsageError("-H Host: ... is not sent as a header; use --host")
    headers: list[tuple[str, str]] = []
    warnings: list[str] = []
    wanted = experiment_route_name(experiment) if experiment is not None else model
    user_route = dict(user).get(SELDON_MODEL)
    if as_is:
        pass  # the user's headers, exactly: their mistakes are what is being reproduced
    elif SELDON_MODEL not in user_names:
        if experiment is not None or protocol is Protocol.GRPC:
            headers.append((SELDON_MODEL, str(wanted)))
    elif experiment is not None and user_route != wanted:
        warnings.append(
            f"-H {SELDON_MODEL}: {user_route} replaces {wanted}: the request will not reach experiment "
            f"{experiment} (Envoy matches {SELDON_MODEL} exactly)"
        )
    headers.extend(user)
    prefix = parts.path.rstrip("/")
    if prefix.endswith("/v2/models") or "/v2/" in prefix + "/":
        raise UsageError(f"--url {url!r}: give the ingress URL without /v2/...; the path is built from the name")
    host_header = host.strip() if host else None
    return Target(
        base_url=f"{parts.scheme}://{parts.netloc}",
        prefix=prefix,
        host_header=host_header or None,
        name=name,
        is_experiment=experiment is not None,
        protocol=protocol,
        headers=tuple(headers),
        warnings=tuple(warnings),
        as_is=as_is,
    )


def request_headers(target: Target, request_id: str, traceparent: str) -> dict[str, str]:
    """Headers of one REST request: content type, Host, ours (ids) and the target's."""
    headers = {"content-type": "application/json"}
    if target.host_header:
        headers["host"] = target.host_header
    headers.update(target.headers)
    headers[REQUEST_ID_HEADER] = request_id
    headers[TRACEPARENT] = traceparent
    return headers
