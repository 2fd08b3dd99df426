"""MT402 success-rate-slo: the share of requests Prometheus counted as answered without error over the window is
below the objective (default 99 %)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_trace.analysis.check import SkipCheck, make_check
from mlops_trace.analysis.objectives import DEFAULT_MIN_REQUESTS, DEFAULT_MIN_SUCCESS
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
    id="MT402",
    slug="success-rate-slo",
    title="Success rate below the objective",
    severity=Severity.CRITICAL,
    requires=("prometheus",),
    reads=(),
    playbook="high-latency",
    fix="Read the failures' status codes and response flags (404 NR: routing; 503 UH/UF: no healthy endpoint; "
    "5xx with a JSON error: the model) and follow the matching playbook.",
)


def run(
    snap: Snapshot, *, min_success: float = DEFAULT_MIN_SUCCESS, min_requests: int = DEFAULT_MIN_REQUESTS
) -> Iterator[Finding]:
    data = prometheus_of(snap)
    totals = need(data, Purpose.SUCCESS_REQUESTS, CHECK.id)
    failures_result = need(data, Purpose.SUCCESS_FAILURES, CHECK.id)
    # A counter that never counted a failure has no series at all: a missing group means none failed.
    failures = counts_by_group(failures_result)
    source = FAMILY_WORDS[totals.family] if totals.family is not None else "an unknown metric"
    judged = 0
    too_few: list[str] = []
    findings: list[Finding] = []
    for sample in defined(totals):
        subject = subject_of(sample, totals.family)
        if not in_scope(snap, subject.namespace):
            continue
        total = sample.value
        if total < max(min_requests, 1):
            too_few.append(f"{subject.words}: {round(total)} requests")
            continue
        judged += 1
        failed = min(max(failures.get(sample.group(), 0.0), 0.0), total)
        rate = 1.0 - failed / total
        if rate >= min_success:
            continue
        evidence = [query_evidence(totals, sample, f"{round(total)} requests")]
        failed_sample = next((s for s in failures_result.samples if s.group() == sample.group()), None)
        if failed_sample is not None:
            evidence.append(query_evidence(failures_result, failed_sample, f"{round(failed)} failed"))
        evidence.append(Evidence("objective", f"success rate >= {100.0 * min_success:.2f}% (--min-success)"))
        findings.append(
            CHECK.finding(
                namespace=subject.namespace,
                object=subject.object,
                message=f"success rate of {subject.words} is {100.0 * rate:.2f}% {window_words(totals)} "
                f"({round(failed)} of {round(total)} requests failed), below the {100.0 * min_success:.2f}% "
                f"objective (counted at {source})",
                evidence=evidence,
            )
        )
    if not judged:
        if too_few:
            raise SkipCheck(
                f"fewer than {min_requests} requests in the window for every series ({'; '.join(too_few[:3])})"
            )
        raise SkipCheck(f"no requests in the window: {totals.display} is empty ({source})")
    yield from findings
