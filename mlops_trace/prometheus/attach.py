"""Query a live Prometheus and put the results into a Snapshot (for `doctor --prometheus` and `smoke`).

The results go through the bundle format on purpose: they are written to a temporary `prometheus/` folder and read
back with the bundle reader's own loader, so a live run and an offline bundle give the checks identical input.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from mlops_trace.prometheus.client import PrometheusClient, PrometheusConfig, QuerySource
from mlops_trace.prometheus.collect import Collection, collect_queries, present_metrics, wait_for_scrape
from mlops_trace.promql.plan import Purpose, plan_queries
from mlops_trace.snapshot.prometheus import load_prometheus_dir, parse_result
from mlops_trace.snapshot.snapshot import Snapshot


def query_into(
    snap: Snapshot,
    source: QuerySource,
    window: str,
    *,
    source_name: str = "",
    fresh_after: float | None = None,
    wait_s: float = 0.0,
    poll_s: float = 0.5,
) -> Collection:
    """Run the service-level queries against `source` and attach them to `snap`. With `fresh_after` (a wall-clock
    time), first wait up to `wait_s` for a scrape newer than it."""
    notes: list[str] = []
    if fresh_after is not None and wait_s > 0:
        _, _, found = present_metrics(source)
        plan = plan_queries(found, window)
        chosen = {q.metric for q in plan.queries}
        deadline = time.monotonic() + wait_s
        if chosen and not wait_for_scrape(source, chosen, fresh_after, wait_s, poll_s=poll_s):
            notes.append(
                f"prometheus: no scrape newer than the request run within {wait_s:g}s; the counters may "
                "miss its last requests"
            )
        elif chosen:
            # A series born during the run has one sample after it; rate() needs two. Wait (within the same budget)
            # until every planned query answers, so a busy machine's late scrape does not read as "no requests".
            answered = [q.promql for q in plan.queries if q.purpose is not Purpose.SUCCESS_FAILURES]  # none may be due
            _wait_for_answers(source, answered, deadline, poll_s)
    folder = Path(tempfile.mkdtemp(prefix="mlops-trace-prometheus-"))
    try:
        collection = collect_queries(source, window, folder, source_name)
        snap.attach_prometheus(load_prometheus_dir(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Collection(collection.plan, collection.files, collection.source, tuple(notes))


def _wait_for_answers(source: QuerySource, queries: list[str], deadline: float, poll_s: float) -> bool:
    pending = list(queries)
    while True:
        pending = [promql for promql in pending if not parse_result(source.query(promql))]
        if not pending or time.monotonic() >= deadline:
            return not pending
        time.sleep(poll_s)


def query_prometheus_into(
    snap: Snapshot, config: PrometheusConfig, window: str, *, fresh_after: float | None = None, wait_s: float = 0.0
) -> list[str]:
    """`query_into` over HTTP; returns the lines to tell the user (what was found, what each check uses)."""
    with PrometheusClient(config) as client:
        collection = query_into(
            snap, client, window, source_name=config.base_url, fresh_after=fresh_after, wait_s=wait_s
        )
    return collection.notes()


def wait_for_first_scrapes(config: PrometheusConfig, timeout_s: float, *, poll_s: float = 0.5) -> bool:
    """Before a request run: wait until Prometheus has scraped every target at least once (a fresh deployment or
    the reference stack just started), so the run falls between two scrapes and `increase()` sees it: a counter's
    first sample is its baseline, not a rise from 0. Without a targets API, wait until some known serving metric
    exists instead. False when `timeout_s` passed first."""
    import time

    deadline = time.monotonic() + timeout_s
    with PrometheusClient(config) as client:
        while True:
            scraped = client.all_targets_scraped()
            if scraped is None:
                _, _, found = present_metrics(client)
                scraped = bool(found)
            if scraped or time.monotonic() >= deadline:
                return scraped
            time.sleep(poll_s)


def wait_for_baseline(config: PrometheusConfig, window: str, after: float, timeout_s: float) -> bool:
    """After warm-up requests: wait until Prometheus scraped the serving metrics after the wall-clock time `after`.
    A series born during a measured run (Envoy creates a cluster's latency histogram on its first request) would
    otherwise enter Prometheus already holding the whole run, and rate() over it stays 0."""
    with PrometheusClient(config) as client:
        _, _, found = present_metrics(client)
        chosen = {q.metric for q in plan_queries(found, window).queries}
        return bool(chosen) and wait_for_scrape(client, chosen, after, timeout_s)


def write_prometheus_dir(config: PrometheusConfig, window: str, bundle_root: Path) -> Collection:
    """Query Prometheus into `<bundle_root>/prometheus/` (for a collected bundle)."""
    with PrometheusClient(config) as client:
        return collect_queries(client, window, bundle_root, config.base_url)
