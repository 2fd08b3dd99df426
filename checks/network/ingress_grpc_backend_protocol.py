"""MT207 ingress-grpc-backend-protocol: gRPC calls go through an Ingress that proxies them to Seldon's Envoy over
HTTP/1.1 (no `nginx.ingress.kubernetes.io/backend-protocol: GRPC`), where gRPC cannot work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    BACKEND_PROTOCOL,
    GRPC_PREFIX,
    IngressBackend,
    PathType,
    SeldonBackend,
    controller_pods,
    controller_services,
    controller_workloads,
    ingress_backends,
    ingresses,
    is_envoy_data_port,
    is_grpc_backend,
    is_nginx_ingress,
    literal_prefix,
    regex_hosts,
    rewrite_target,
    seldon_backends,
    simulate_path,
    uses_regex_annotations,
)
from mlops_trace.analysis.routing import request_succeeded
from mlops_trace.findings import Evidence, Finding, Severity, evidence_line
from mlops_trace.parsers import nginx_access
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import RequestRecord, Snapshot

CHECK = make_check(
    id="MT207",
    slug="ingress-grpc-backend-protocol",
    title="gRPC calls cross an Ingress that proxies to Envoy over HTTP/1.1 (no backend-protocol: GRPC)",
    severity=Severity.CRITICAL,
    requires=("kube:Ingress",),
    reads=(
        "kube:DaemonSet",
        "kube:Deployment",
        "kube:IngressClass",
        "kube:Namespace",
        "kube:Pod",
        "kube:Service",
        "kube:StatefulSet",
        "logs:ingress",
        "requests",
    ),
    playbook="ingress-grpc",
    fix=(
        "Serve /inference.GRPCInferenceService from an Ingress of its own with "
        '`nginx.ingress.kubernetes.io/backend-protocol: "GRPC"` (backend seldon-mesh:80), and keep REST on another.'
    ),
)

SAMPLES = 3
_SNIPPETS = ("configuration-snippet", "server-snippet")
# grpc-go's words when the peer does not answer with an HTTP/2 preface (≤ v1.50.0 / from v1.51.0).
_PREFACE_ERRORS = ("connection closed before server preface received", "error reading server preface")
_DEFAULT_BACKEND = "upstream-default-backend"


@dataclass
class _Case:
    """What speaks for one Ingress carrying gRPC over HTTP/1.1, and what against it."""

    ingress: KubeObject
    backends: list[SeldonBackend] = field(default_factory=list)
    grpc_paths: list[IngressBackend] = field(default_factory=list)  # paths that only the gRPC service can use
    hits: list[Evidence] = field(default_factory=list)  # gRPC calls that reached it
    preface_errors: list[str] = field(default_factory=list)
    succeeded: list[Evidence] = field(default_factory=list)  # gRPC calls through it that worked


def run(snap: Snapshot) -> Iterator[Finding]:
    leading = [sb for sb in seldon_backends(snap) if is_envoy_data_port(sb.resolution)]
    if not leading:
        raise SkipCheck(
            "no ingress-nginx Ingress path or defaultBackend in the bundle leads to Seldon's Envoy data port "
            "(seldon-mesh)"
        )
    cases: dict[tuple[str, str], _Case] = {}
    for seldon in leading:
        ingress = seldon.backend.ingress
        if _speaks_grpc(ingress):
            continue
        case = cases.setdefault(_key(ingress), _Case(ingress))
        case.backends.append(seldon)
        if seldon.backend.path is not None and _grpc_only_path(seldon.backend):
            case.grpc_paths.append(seldon.backend)
    if not cases:
        return
    router = _Router(snap)
    for record in snap.requests:
        _judge_request(record, router, cases)
    for log in snap.logs_of(Role.INGRESS):
        for line in nginx_access.iter_records(log.lines_mentioning([GRPC_PREFIX])):
            served = _ingress_of_line(line, router)
            if served is not None and _key(served) in cases:
                cases[_key(served)].hits.append(Evidence(log.where(line.lineno), evidence_line(line.raw)))
    for case in sorted(cases.values(), key=lambda c: _key(c.ingress)):
        if case.succeeded or not (case.hits or case.grpc_paths):
            continue  # a gRPC call that worked through it says something else makes it work; no gRPC seen: REST
        yield _finding(case)


def _key(ingress: KubeObject) -> tuple[str, str]:
    return (ingress.namespace or "default", ingress.name)


def _speaks_grpc(ingress: KubeObject) -> bool:
    """`backend-protocol: GRPC|GRPCS`, or a snippet that writes its own `grpc_pass`."""
    if is_grpc_backend(ingress):
        return True
    return any("grpc_pass" in ingress.annotations.get(f"nginx.ingress.kubernetes.io/{name}", "") for name in _SNIPPETS)


def _grpc_only_path(backend: IngressBackend) -> bool:
    """A path whose literal start is the gRPC service: nothing but gRPC calls can use it."""
    path = backend.path or ""
    regex = uses_regex_annotations(backend.ingress)
    return literal_prefix(path, regex).lower().startswith(GRPC_PREFIX.rstrip("/").lower())


# --- which Ingress path ingress-nginx picks for a host and path --------------------------------------------------


@dataclass(frozen=True)
class _Pick:
    backend: IngressBackend
    rank: int  # 2 the host of a rule, 1 a wildcard rule, 0 the catch-all server (rules without host)


class _Router:
    """ingress-nginx's choice of server (exact host, then `*.` wildcard, then the catch-all) and, inside it, of
    location (Exact first, then the longest path that matches, regex or prefix as `simulate_path` applies it); a
    server none of whose paths match serves the defaultBackend of an Ingress that defines it (the catch-all server:
    of an Ingress without rules)."""

    def __init__(self, snap: Snapshot) -> None:
        nginx = [ing for ing in ingresses(snap) if is_nginx_ingress(snap, ing)]
        self.backends = [b for ing in nginx for b in ingress_backends(ing)]
        self.hosts_of = {_key(ing): _rule_hosts(ing) for ing in nginx}
        self.regex_for = regex_hosts(snap)
        self.seldon_keys = {(_key(sb.backend.ingress), sb.backend.field) for sb in seldon_backends(snap)}
        controllers = controller_pods(snap) + controller_workloads(snap)
        self.controller_addresses = {
            address.lower() for svc in controller_services(snap, controllers) for address in _addresses(svc)
        }

    def candidate_hosts(self, backend: IngressBackend) -> set[str | None]:
        """The hosts whose server may use `backend`: its rule's host, or for a defaultBackend every host of its
        Ingress's rules (none: the catch-all server)."""
        if backend.path is not None:
            return {backend.host.lower() if backend.host else None}
        return set(self.hosts_of.get(_key(backend.ingress), [])) or {None}

    def pick(self, host: str | None, path: str) -> _Pick | None:
        rule_ranks = [(key, _host_rank(rule_host, host)) for key, hosts in self.hosts_of.items() for rule_host in hosts]
        best = max((rank for _, rank in rule_ranks), default=-1)
        if best < 0:
            return self._catch_all()
        matches: list[tuple[bool, int, IngressBackend]] = []
        for backend in self.backends:
            if backend.path is None or _host_rank(backend.host, host) != best:
                continue
            regex = (backend.host or "") in self.regex_for
            simulation = simulate_path(
                backend.path, backend.path_type, path, regex=regex, rewrite=rewrite_target(backend.ingress)
            )
            if simulation.matched:
                matches.append((backend.path_type == PathType.EXACT, len(backend.path), backend))
        if matches:
            matches.sort(key=lambda item: (not item[0], -item[1]))
            return _Pick(matches[0][2], best)
        if best == 0:
            return self._catch_all()
        defining = {key for key, rank in rule_ranks if rank == best}
        named = [b for b in self.backends if b.path is None and _key(b.ingress) in defining]
        return _Pick(named[0], best) if named else None

    def _catch_all(self) -> _Pick | None:
        catch_all = [b for b in self.backends if b.path is None and not self.hosts_of.get(_key(b.ingress))]
        return _Pick(catch_all[0], 0) if catch_all else None


def _rule_hosts(ingress: KubeObject) -> list[str | None]:
    """The host of each rule (None: a rule without host), paths or not: each makes ingress-nginx write a server."""
    return [
        str(as_mapping(rule).get("host")).lower() if as_mapping(rule).get("host") else None
        for rule in as_list(ingress.spec.get("rules"))
    ]


def _host_rank(rule_host: str | None, host: str | None) -> int:
    """2 exact, 1 wildcard (`*.example.com` covers one label), 0 a rule without host, -1 no match."""
    if rule_host is None:
        return 0
    if host is None:
        return -1
    rule = rule_host.lower()
    if rule == host:
        return 2
    if rule.startswith("*.") and host.endswith(rule[1:]) and "." not in host[: -len(rule) + 1]:
        return 1
    return -1


def _host_only(authority: str) -> str:
    host = authority.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _addresses(svc: KubeObject) -> list[str]:
    found = [str(svc.spec.get("clusterIP") or "")]
    found += [str(ip) for ip in as_list(svc.spec.get("clusterIPs")) + as_list(svc.spec.get("externalIPs"))]
    for item in as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress")):
        entry = as_mapping(item)
        found += [str(entry.get("ip") or ""), str(entry.get("hostname") or "")]
    return [address for address in found if address and address != "None"]


# --- evidence that gRPC reached an Ingress -----------------------------------------------------------------------


def _judge_request(record: RequestRecord, router: _Router, cases: dict[tuple[str, str], _Case]) -> None:
    if record.protocol != "grpc" or not record.path.startswith(GRPC_PREFIX) or not record.authority:
        return
    host = _host_only(record.authority)
    chosen = router.pick(host, record.path)
    if chosen is None:
        return
    if chosen.rank == 0 and host not in router.controller_addresses:
        return  # an address that is not the ingress controller's: the call may have gone to Envoy directly
    case = cases.get(_key(chosen.backend.ingress))
    if case is None or (_key(chosen.backend.ingress), chosen.backend.field) not in router.seldon_keys:
        return
    outcome = record.grpc_status or (str(record.status) if record.status is not None else "no answer")
    message = f": {record.grpc_message}" if record.grpc_message else ""
    what = evidence_line(f"gRPC {record.path} to {record.authority} -> {outcome}{message}")
    if request_succeeded(record):
        case.succeeded.append(Evidence(record.display, what))
        return
    case.hits.append(Evidence(record.display, what))
    lowered = (record.grpc_message or "").lower()
    if any(text in lowered for text in _PREFACE_ERRORS):
        case.preface_errors.append(record.grpc_message or "")


def _upstream_name(backend: IngressBackend) -> str:
    """ingress-nginx's `$proxy_upstream_name` for a backend: `<namespace>-<service>-<port>`."""
    return f"{backend.namespace}-{backend.service}-{backend.port}"


def _ingress_of_line(line: nginx_access.NginxAccessRecord, router: _Router) -> KubeObject | None:
    """The Ingress that served a gRPC access line. The default log format has no host, so every host whose
    backends share the line's upstream is tried: the line belongs to an Ingress only when each such host's pick
    for the path is that same Ingress."""
    upstream = line.proxy_upstream_name
    if not upstream or _DEFAULT_BACKEND in upstream or not line.path or not line.path.startswith(GRPC_PREFIX):
        return None
    sharing = [b for b in router.backends if _upstream_name(b) == upstream]
    hosts = {host for b in sharing for host in router.candidate_hosts(b)}
    chosen: set[tuple[str, str]] = set()
    ingress: KubeObject | None = None
    for host in hosts:
        pick = router.pick(host, line.path)
        if pick is None or _upstream_name(pick.backend) != upstream:
            continue
        chosen.add(_key(pick.backend.ingress))
        ingress = pick.backend.ingress
    return ingress if len(chosen) == 1 else None


# --- the finding -------------------------------------------------------------------------------------------------


def _finding(case: _Case) -> Finding:
    ingress = case.ingress
    seldon = case.backends[0]
    protocol = ingress.annotations.get(BACKEND_PROTOCOL)
    annotation = (
        f"backend-protocol={protocol} (not GRPC/GRPCS)" if protocol else "no backend-protocol annotation (HTTP)"
    )
    evidence = [
        Evidence(ingress.field_where(".metadata.annotations"), annotation),
        Evidence(seldon.backend.where, f"{seldon.backend.describe()} → {seldon.resolution.chain()}"),
    ]
    evidence += [
        Evidence(
            ingress.field_where(backend.path_field or backend.field),
            f"path {backend.path} ({backend.path_type}) only matches gRPC calls",
        )
        for backend in case.grpc_paths[:1]
    ]
    evidence += case.hits[:SAMPLES]
    seen = f"{len(case.hits)} gRPC call(s) went through it" if case.hits else "its path serves only gRPC calls"
    message = (
        f"Ingress {ingress.namespace}/{ingress.name} leads to Seldon's Envoy in {seldon.namespace} without "
        f"`{BACKEND_PROTOCOL}: GRPC`, and {seen}: ingress-nginx forwards them with proxy_pass over HTTP/1.1, which "
        "drops gRPC's trailers (grpc-status), so clients fail even when Envoy answered (grpc-go: `server closed "
        "the stream without sending trailers`)."
    )
    if case.preface_errors:
        message += (
            f" The client also reported `{evidence_line(case.preface_errors[0], 80)}`: the client-to-ingress leg "
            "was not HTTP/2 either (plaintext to a controller older than v1.10, which has no h2c, or to the TLS "
            "port); call it over TLS."
        )
    return CHECK.finding(namespace=ingress.namespace, object=ingress.ref, message=message, evidence=evidence)
