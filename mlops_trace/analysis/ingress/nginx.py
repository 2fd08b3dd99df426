"""ingress-nginx path handling: how the controller matches a request path and rewrites it before the backend.

`simulate_path` reproduces the `location` ingress-nginx writes for an Ingress path (regex when `use-regex` or
`rewrite-target` is set on any Ingress of the host, anchored with `^`, case-insensitive; else Exact or prefix
matching by path type) and the `rewrite` with `$1..$9` captures, so a check can show the path that reaches the
backend. The annotation readers (`rewrite_target`, `uses_regex_annotations`, `regex_hosts`, `is_grpc_backend`) say
which of those behaviours an Ingress asks for; `sample_client_path` and `reaches_seldon_route` put a Seldon inference
path through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_trace.analysis.ingress.backends import PathType, ingresses
from mlops_trace.analysis.ingress.controllers import is_nginx_ingress
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.snapshot import Snapshot

ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
REWRITE_TARGET = ANNOTATION_PREFIX + "rewrite-target"
USE_REGEX = ANNOTATION_PREFIX + "use-regex"
BACKEND_PROTOCOL = ANNOTATION_PREFIX + "backend-protocol"

GRPC_PREFIX = "/inference.GRPCInferenceService/"
GRPC_SAMPLE = "/inference.GRPCInferenceService/ModelInfer"
REST_PREFIX = "/v2/"
SAMPLE_MODEL = "model"


# --- annotations -----------------------------------------------------------------------------------------------------


def nginx_annotation(ingress: KubeObject, name: str) -> str | None:
    """An ingress-nginx annotation (full key) of the Ingress, or None."""
    return ingress.annotations.get(name)


def rewrite_target(ingress: KubeObject) -> str | None:
    value = nginx_annotation(ingress, REWRITE_TARGET)
    return value.strip() if value is not None and value.strip() else None


def uses_regex_annotations(ingress: KubeObject) -> bool:
    """`use-regex: "true"` or a `rewrite-target`: either makes ingress-nginx write regex locations."""
    use_regex = (nginx_annotation(ingress, USE_REGEX) or "").strip().lower() == "true"
    return use_regex or rewrite_target(ingress) is not None


def regex_hosts(snap: Snapshot) -> set[str]:
    """Hosts ("" for rules without host) where ingress-nginx writes regex locations for every path: once one
    Ingress of a host asks for regex, all paths of that host, whatever Ingress defines them, become regex."""
    hosts: set[str] = set()
    for ing in ingresses(snap):
        if not uses_regex_annotations(ing) or not is_nginx_ingress(snap, ing):
            continue
        for rule in as_list(ing.spec.get("rules")):
            hosts.add(str(as_mapping(rule).get("host") or ""))
    return hosts


def is_grpc_backend(ingress: KubeObject) -> bool:
    return (nginx_annotation(ingress, BACKEND_PROTOCOL) or "").strip().upper() in ("GRPC", "GRPCS")


# --- paths -----------------------------------------------------------------------------------------------------------

_REGEX_META = frozenset(".^$*+?()[]{}|\\")
_OPTIONAL_QUANTIFIERS = ("?", "*", "{0")


def literal_prefix(path: str, regex: bool) -> str:
    """The literal start of a path: all of it without regex, else the text before the first regex metacharacter
    (escaped punctuation counts as literal; a character made optional by `?`, `*` or `{0,` is dropped)."""
    if not regex:
        return path
    out: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == "\\" and index + 1 < len(path) and not path[index + 1].isalnum():
            out.append(path[index + 1])
            index += 2
            continue
        if char in _REGEX_META:
            if out and path.startswith(_OPTIONAL_QUANTIFIERS, index):
                out.pop()
            break
        out.append(char)
        index += 1
    return "".join(out)


def sample_client_path(literal: str, grpc: bool) -> str:
    """A request path a client would send under this prefix: the prefix followed by `v2/models/<m>/infer` (gRPC:
    `/inference.GRPCInferenceService/ModelInfer`), joined on one `/`. Where the prefix already ends in a start of that
    path (`/v2`, `/v2/models/iris`), it continues it instead of repeating it."""
    if grpc:
        canonical = GRPC_SAMPLE
    else:
        named = re.search(r"/v2/models/([^/]+)", literal, re.IGNORECASE)
        canonical = f"/v2/models/{named.group(1) if named else SAMPLE_MODEL}/infer"
    if not literal:
        return canonical
    lowered_prefix, lowered_canonical = literal.lower(), canonical.lower()
    for size in range(min(len(literal), len(canonical)), 0, -1):
        head = lowered_canonical[:size]
        at_boundary = size == len(canonical) or head.endswith("/") or canonical[size] == "/"
        if at_boundary and lowered_prefix.endswith(head):
            return literal + canonical[size:]
    return literal.rstrip("/") + canonical


@dataclass(frozen=True)
class PathSimulation:
    """What ingress-nginx does with one client path under one Ingress path."""

    client_path: str
    location: str  # the nginx location as ingress-nginx writes it
    matched: bool
    rewrite: str | None  # the rewrite-target applied, when one is
    upstream_path: str | None  # the path sent to the backend; None when the location does not match
    error: str | None = None
    groups: tuple[str | None, ...] = ()  # the regex captures $1, $2, … of the client path

    def describe(self) -> str:
        if self.error is not None:
            return f"location {self.location}: {self.error}"
        if not self.matched:
            return f"location {self.location} does not match {self.client_path}"
        how = f"rewrite-target {self.rewrite}" if self.rewrite is not None else "no rewrite"
        return f"location {self.location} ({how}): {self.client_path} → {self.upstream_path}"


def nginx_location(path: str, path_type: str, regex: bool) -> str:
    if regex:
        return f'~* "^{path}"'
    if path_type == PathType.EXACT:
        return f"= {path}"
    return path


def to_python_regex(pcre: str) -> str:
    """PCRE as nginx reads it → Python `re`: named groups `(?<n>…)` become `(?P<n>…)`; the rest is shared syntax."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pcre)


def simulate_path(path: str, path_type: str, client_path: str, *, regex: bool, rewrite: str | None) -> PathSimulation:
    """Run `client_path` through the location ingress-nginx writes for `path`, then through `rewrite-target`.

    With regex the location is `~* "^<path>"` (case-insensitive) and the rewrite is `rewrite "(?i)<path>" <target>`,
    which replaces the whole URI with the target after `$n` substitution. ingress-nginx writes no rewrite when the
    target equals the path. Without regex, Exact compares the whole path and Prefix/ImplementationSpecific the start.
    """
    location = nginx_location(path, path_type, regex)
    if not regex:
        if path_type == PathType.EXACT:
            matched = client_path == path
        elif path_type == PathType.PREFIX:
            stem = path.rstrip("/")
            matched = not stem or client_path == stem or client_path.startswith(stem + "/")
        else:
            matched = client_path.startswith(path)
        return PathSimulation(client_path, location, matched, None, client_path if matched else None)
    try:
        pattern = re.compile("^" + to_python_regex(path), re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as exc:
        # `a{99999999999}` overflows and deep nesting recurses past the limit: both are paths nginx would refuse too.
        return PathSimulation(client_path, location, False, None, None, f"not a regex Python can read ({exc})")
    match = pattern.match(client_path)
    if match is None:
        return PathSimulation(client_path, location, False, None, None)
    groups = match.groups()
    if rewrite is None or rewrite == path:
        return PathSimulation(client_path, location, True, None, client_path, groups=groups)
    upstream = substitute_captures(rewrite, match)
    return PathSimulation(client_path, location, True, rewrite, upstream, groups=groups)


_NGINX_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_QUERY_VARS = frozenset({"args", "is_args", "query_string"})


def substitute_captures(target: str, match: re.Match[str]) -> str:
    """nginx's `$1..$9` (and named captures) in a rewrite replacement; query-string variables drop out (only the
    path matters here); other variables stay as written. An unmatched group is empty, as in nginx."""

    def replace(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if name[0] in "0123456789":  # not isdigit(): `\w` also matches '²', which int() refuses
            # nginx reads one digit after `$`: `$10` is `$1` followed by "0".
            digit, rest = int(name[0]), name[1:]
            group = match.group(digit) if digit <= (match.re.groups or 0) else None
            return (group or "") + rest
        if name in match.re.groupindex:
            return match.group(name) or ""
        if name in _QUERY_VARS:
            return ""
        return found.group(0)

    return _NGINX_VAR.sub(replace, target).split("?", 1)[0]


def reaches_seldon_route(upstream_path: str, grpc: bool) -> bool:
    """Whether Envoy's Seldon routes (prefix `/v2` for REST, `/inference.GRPCInferenceService` for gRPC; case and
    slashes as sent) can match the path."""
    return upstream_path.startswith(GRPC_PREFIX if grpc else REST_PREFIX)
