"""The per-hop tally of a run of many requests, shared by the runners of both serving paths (Seldon's
`trace.runner`, KServe's `trace.kserve.runner`): total latency of the answered requests, each hop's durations and
most common source, why an untimed hop was not timed, and the failures counted by hop and outcome. Each runner
adds its requests' hops as it attributes them, then reads the `HopStats` rows in its own hop order."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_trace.analysis.stats import LatencyHistogram
from mlops_trace.trace.record import Exchange, Failure, HopStats, HopTiming


@dataclass
class HopTally:
    totals: LatencyHistogram = field(default_factory=LatencyHistogram)
    per_hop: dict[int, LatencyHistogram] = field(default_factory=lambda: defaultdict(LatencyHistogram))
    sources: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reasons: dict[int, str] = field(default_factory=dict)
    components: dict[int, str] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, exchange: Exchange, hops: Iterable[HopTiming], failure: Failure | None, failed_hop_name: str) -> None:
        """One request: its total when answered, each hop's duration or untimed reason, its failure's hop."""
        if exchange.ok and exchange.total_ms is not None:
            self.totals.record(exchange.total_ms)
        if failure is not None:
            self.errors[f"hop {failure.hop} {failed_hop_name}"][f"{exchange.outcome()} {failure.code}"] += 1
        for hop in hops:
            self.components.setdefault(hop.hop, hop.component)
            if hop.duration_ms is not None and exchange.ok:
                self.per_hop[hop.hop].record(hop.duration_ms)
                self.sources[hop.hop][hop.source] += 1
            elif hop.untimed_reason:
                self.reasons.setdefault(hop.hop, hop.untimed_reason)

    def hop_stats(
        self, names: Sequence[tuple[int, str]], probe_ms: Mapping[int, float | None] | None = None
    ) -> tuple[HopStats, ...]:
        """A row per (hop number, name), in the order given; `probe_ms`: a direct probe's estimate per hop."""
        probes = probe_ms or {}
        rows: list[HopStats] = []
        for number, name in names:
            histogram = self.per_hop.get(number)
            summary = histogram.summary() if histogram is not None else None
            rows.append(
                HopStats(
                    hop=number,
                    name=name,
                    component=self.components.get(number, ""),
                    source=self.sources[number].most_common(1)[0][0] if self.sources[number] else "not timed",
                    samples=summary.count if summary else 0,
                    p50=summary.p50 if summary else None,
                    p95=summary.p95 if summary else None,
                    p99=summary.p99 if summary else None,
                    mean=summary.mean if summary else None,
                    untimed_reason=None if summary else self.reasons.get(number),
                    probe_ms=probes.get(number),
                )
            )
        return tuple(rows)

    def latency(self) -> dict[str, Any] | None:
        summary = self.totals.summary()
        return summary.to_dict() if summary is not None else None

    def error_counts(self) -> dict[str, dict[str, int]]:
        return {hop: dict(counts) for hop, counts in self.errors.items()}
