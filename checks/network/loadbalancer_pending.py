"""MT206 loadbalancer-pending: a LoadBalancer Service clients enter through has no external IP (MetalLB gave none)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.ingress import (
    controller_pods,
    controller_services,
    controller_workloads,
    controllers_for,
    seldon_backends,
    selector_of,
    selects_labels,
    service_type,
)
from mlops_trace.analysis.metallb import ANNOTATION_PREFIXES, Outcome, Pool, assign
from mlops_trace.analysis.seldon import envoy_services
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.snapshot.kube import KubeObject, as_list, as_mapping, pod_template_labels
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT206",
    slug="loadbalancer-pending",
    title="LoadBalancer Service on the request path has no external IP",
    severity=Severity.WARNING,
    requires=("kube:Service",),
    reads=(
        "kube:DaemonSet",
        "kube:Deployment",
        "kube:IPAddressPool",
        "kube:Ingress",
        "kube:IngressClass",
        "kube:Namespace",
        "kube:Pod",
        "kube:StatefulSet",
    ),
    playbook="ingress-routing",
    fix=(
        "Give MetalLB an address for this Service: an IPAddressPool (metallb.io/v1beta1) with a free address that "
        "allows its namespace, and pool/IP annotations that name it."
    ),
)


def run(snap: Snapshot) -> Iterator[Finding]:
    candidates = _services_on_path(snap)
    if not candidates:
        raise SkipCheck(
            "no LoadBalancer Service on the request path in the bundle (an ingress-nginx controller Service in front "
            "of Ingresses leading to Seldon, or a LoadBalancer seldon-mesh where no Ingress leads)"
        )
    for svc, role in candidates:
        if _assigned(svc):
            continue
        yield _finding(snap, svc, role)


def _services_on_path(snap: Snapshot) -> list[tuple[KubeObject, str]]:
    found: list[tuple[KubeObject, str]] = []
    seen: set[tuple[str | None, str]] = set()

    def add(svc: KubeObject, role: str) -> None:
        if service_type(svc) == "LoadBalancer" and (svc.namespace, svc.name) not in seen:
            seen.add((svc.namespace, svc.name))
            found.append((svc, role))

    seldon = seldon_backends(snap)
    led_to = sorted({sb.namespace for sb in seldon})
    if seldon:
        ingress_refs = sorted({f"{sb.backend.namespace}/{sb.backend.ingress.name}" for sb in seldon})
        role = (
            f"the ingress controller's entry point for Ingress {', '.join(ingress_refs)} "
            f"(leading to Seldon in {', '.join(led_to)})"
        )
        controllers = controller_pods(snap) + controller_workloads(snap)
        chosen: list[KubeObject] = []
        routed = {(sb.backend.namespace, sb.backend.ingress.name): sb.backend.ingress for sb in seldon}
        for ingress in routed.values():
            chosen += [c for c in controllers_for(snap, ingress, controllers) if c not in chosen]
        for svc in controller_services(snap, chosen):
            if chosen and not any(
                c.namespace == svc.namespace and selects_labels(selector_of(svc), pod_template_labels(c))
                for c in chosen
            ):
                continue
            add(svc, role)
    # A LoadBalancer seldon-mesh asks for an external address whatever fronts it; a bundle that does not show every
    # Ingress (namespace-scoped) still shows the Service and its status, so judge what it shows and say what it lacks.
    visible = _ingresses_visible(snap)
    for svc in envoy_services(snap):
        if svc.namespace is not None and svc.namespace not in led_to:
            unseen = "" if visible else "; the bundle holds no Ingress from every namespace, so one may front it"
            add(
                svc,
                f"Seldon's Envoy entry point in {svc.namespace}, which clients call directly (no Ingress in the "
                f"bundle leads there{unseen})",
            )
    return found


def _ingresses_visible(snap: Snapshot) -> bool:
    """Whether we would know of an Ingress leading to a namespace: some Ingress was collected, or the collector
    says it asked for Ingresses in every namespace."""
    meta = snap.metadata
    return snap.has_kind("Ingress") or (meta.all_namespaces and "Ingress" in meta.kinds)


def _assigned(svc: KubeObject) -> bool:
    entries = as_list(as_mapping(svc.status.get("loadBalancer")).get("ingress"))
    return any(as_mapping(e).get("ip") or as_mapping(e).get("hostname") for e in entries)


def _finding(snap: Snapshot, svc: KubeObject, role: str) -> Finding:
    evidence = [
        Evidence(
            svc.field_where(".status.loadBalancer"),
            f"status.loadBalancer={dict(as_mapping(svc.status.get('loadBalancer')))}: no external IP or hostname",
        )
    ]
    diagnosis = _metallb(snap, svc)
    evidence += diagnosis.evidence
    reason = f" {diagnosis.reason}." if diagnosis.reason else ""
    message = (
        f"LoadBalancer Service {svc.namespace}/{svc.name} has no external IP. It is {role}, so clients have no "
        f"address to connect to (connection timeouts, not HTTP errors).{reason}"
    )
    return CHECK.finding(
        namespace=svc.namespace,
        object=svc.ref,
        message=message,
        evidence=evidence,
        fix=diagnosis.fix,
    )


@dataclass(frozen=True)
class _Diagnosis:
    evidence: list[Evidence]
    reason: str
    fix: str | None


def _metallb(snap: Snapshot, svc: KubeObject) -> _Diagnosis:
    """MetalLB's side of a pending Service: what the Service asks for, then why the simulated assignment fails."""
    evidence: list[Evidence] = []
    requested_ip = str(svc.spec.get("loadBalancerIP") or "").strip()
    if requested_ip:
        evidence.append(Evidence(svc.field_where(".spec.loadBalancerIP"), f"loadBalancerIP={requested_ip}"))
    for key, value in sorted(svc.annotations.items()):
        if key.startswith(ANNOTATION_PREFIXES):
            evidence.append(Evidence(svc.field_where(".metadata.annotations"), f"{key}={value}"))
    lb_class = svc.spec.get("loadBalancerClass")
    if lb_class:
        evidence.append(Evidence(svc.field_where(".spec.loadBalancerClass"), f"loadBalancerClass={lb_class}"))

    result = assign(snap, svc)
    outcome = result.outcome
    names = ", ".join(_describe_pool(p) for p in result.pools)
    if outcome is Outcome.NO_POOLS:
        evidence.append(Evidence("kube/ IPAddressPool", "no MetalLB IPAddressPool exists: MetalLB has no address"))
        return _Diagnosis(
            evidence,
            "No MetalLB IPAddressPool exists, so MetalLB has nothing to assign",
            "Create an IPAddressPool (metallb.io/v1beta1) with free addresses, and an L2Advertisement for it.",
        )
    if outcome is Outcome.POOLS_NOT_COLLECTED:
        evidence.append(
            Evidence(
                "kube/ IPAddressPool",
                "no MetalLB IPAddressPool in the bundle; add `kubectl get ipaddresspools.metallb.io -A -o yaml` "
                "to see which pool should serve it",
            )
        )
        return _Diagnosis(evidence, "", None)
    if outcome is Outcome.POOL_MISSING:
        pool_name = result.pool_name
        evidence.append(Evidence("kube/ IPAddressPool", f"no IPAddressPool named {pool_name} (pools: {names})"))
        return _Diagnosis(
            evidence,
            f"It asks for MetalLB pool {pool_name!r}, which does not exist",
            f"Name an existing pool in the address-pool annotation ({', '.join(p.name for p in result.pools)}) "
            f"or create IPAddressPool {pool_name}.",
        )
    if outcome is Outcome.IP_INVALID:
        raw_ip = result.requested
        evidence.append(Evidence(svc.field_where(".spec"), f"requested address {raw_ip!r} is not an IP address"))
        return _Diagnosis(evidence, f"It asks for {raw_ip!r}, which is not an IP address", None)
    if outcome is Outcome.IP_OUTSIDE_POOLS:
        ip = result.ip
        evidence.append(Evidence("kube/ IPAddressPool", f"no IPAddressPool offers {ip} (pools: {names})"))
        return _Diagnosis(
            evidence,
            f"It asks for {ip}, which no MetalLB IPAddressPool contains",
            f"Request an address inside a pool ({names}) or add {ip} to a pool's spec.addresses.",
        )
    if outcome is Outcome.IP_HELD and result.holder is not None:
        ip, owner = result.ip, result.holder
        evidence.append(Evidence(owner.field_where(".status.loadBalancer"), f"{ip} is assigned to {owner.ref}"))
        return _Diagnosis(
            evidence,
            f"It asks for {ip}, which Service {owner.namespace}/{owner.name} already holds",
            "Request a free address, or set the same allow-shared-ip key on both Services (ports must differ).",
        )
    if outcome is Outcome.NO_ELIGIBLE_POOL:
        evidence.append(
            Evidence(
                "kube/ IPAddressPool",
                f"no pool hands out addresses to {svc.namespace}/{svc.name} automatically (autoAssign: false or "
                f"serviceAllocation excludes it; pools: {names})",
            )
        )
        return _Diagnosis(
            evidence,
            "No MetalLB IPAddressPool assigns addresses to it automatically",
            "Allow the Service's namespace in a pool's serviceAllocation (or enable autoAssign), or name a pool "
            "with the metallb.io/address-pool annotation.",
        )
    if outcome is Outcome.REQUESTED_IPS_FREE:
        return _Diagnosis(evidence, "", None)
    for usage in result.usage:
        holders = ", ".join(f"{ip}={owner.namespace}/{owner.name}" for ip, owner in usage.holders[:8])
        text = (
            f"pool {_describe_pool(usage.pool)}: {len(usage.holders)} of {usage.pool.size} addresses held by "
            "Services in the bundle"
        )
        evidence.append(
            Evidence(usage.pool.obj.field_where(".spec.addresses"), text + (f" ({holders})" if holders else ""))
        )
    if outcome is Outcome.POOLS_EXHAUSTED:
        exhausted = ", ".join(result.exhausted)
        return _Diagnosis(
            evidence,
            f"Every pool that could serve it is exhausted ({exhausted})",
            f"Free an address in {exhausted} or add addresses to a pool's spec.addresses.",
        )
    return _Diagnosis(evidence, "", None)


def _describe_pool(pool: Pool) -> str:
    shown = ", ".join(str(a) for a in as_list(pool.obj.spec.get("addresses")))
    return f"{pool.name} ({shown or 'no addresses'})"
