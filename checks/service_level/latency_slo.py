"""MT401 latency-slo: the P95 latency Prometheus measured for a model, server or pod over the window is above the
objective (default 50 ms)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.objectives import DEFAULT_MAX_P95_MS, DEFAULT_MIN_REQUESTS
from mlops_trace.findings import Evidence, Finding, Severity
from mlops_trace.promql.families import FAMILY_WORDS
from mlops_trace.promql.plan import Purpose
from mlops_trace.analysis.series import (
    counts_by_group,
    defined,
    in_scope,
    need,
    prometheus_of,
    query_evidence,
    subject_of,
    window_words,
)
from mlops_trace.snapshot.snapshot import Snapshot

CHECK = make_check(
    id="MT401",
    slug="latency-slo",
    title="P95 latency above the objective",
    severity=Severity.WARNING,
    requires=("prometheus",),
    reads=(),
    playbook="high-latency",
    fix="Find the hop that adds the time (`mlops-trace request --count 200` shows per-hop P95) and fix it there: "
    "retries, cold model loads, batching waits, CPU throttling or too few replicas.",
)


def run(
    snap: Snapshot, *, max_p95_ms: float = DEFAULT_MAX_P95_MS, min_requests: int = DEFAULT_MIN_REQUESTS
) -> Iterator[Finding]:
    data = prometheus_of(snap)
    p95 = need(data, Purpose.LATENCY_P95, CHECK.id)
    counts_result = data.get(Purpose.LATENCY_REQUESTS)
    counts = counts_by_group(counts_result)
    source = FAMILY_WORDS[p95.family] if p95.family is not None else "an unknown metric"
    judged = 0
    too_few: list[str] = []
    findings: list[Finding] = []
    for sample in defined(p95):
        subject = subject_of(sample, p95.family)
        if not in_scope(snap, subject.namespace):
            continue
        requests = counts.get(sample.group())
        if counts_result is not None and (requests is None or requests < min_requests):
            too_few.append(f"{subject.words}: {0 if requests is None else round(requests)} requests")
            continue
        judged += 1
        value_ms = p95.to_ms(sample.value)
        if value_ms <= max_p95_ms:
            continue
        evidence = [query_evidence(p95, sample, f"{value_ms:.1f} ms")]
        volume = ""
        if counts_result is not None and requests is not None:
            evidence.append(query_evidence(counts_result, sample, f"{round(requests)} requests"))
            volume = f", {round(requests)} requests"
        evidence.append(Evidence("objective", f"P95 <= {max_p95_ms:g} ms (--max-p95)"))
        findings.append(
            CHECK.finding(
                namespace=subject.namespace,
                object=subject.object,
                message=f"P95 latency of {subject.words} is {value_ms:.1f} ms {window_words(p95)}, above the "
                f"{max_p95_ms:g} ms objective (measured at {source}{volume})",
                evidence=evidence,
            )
        )
    if not judged:
        if too_few:
            raise SkipCheck(
                f"fewer than {min_requests} requests in the window for every series ({'; '.join(too_few[:3])})"
            )
        raise SkipCheck(f"no requests in the window: {p95.display} holds no defined P95 ({source})")
    yield from findings
