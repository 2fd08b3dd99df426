"""Stored per-hop latency of a smoke run (`--save-baseline FILE`) and the comparison with it (`--baseline FILE`).

A hop regresses when its P95 now is above `baseline × (1 + margin) + floor`: the margin (default 20 %) is the
relative slack, the floor (default 1 ms) keeps sub-millisecond hops from failing on noise (0.3 ms → 0.5 ms is +66 %
and means nothing). Hops timed in only one of the two runs are skipped with the reason, never passed silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_trace.errors import InputError, UsageError
from mlops_trace.smoke.gates import GateResult, GateStatus

KIND = "mlops-trace-smoke-baseline"
SCHEMA_VERSION = 1
TOTAL = "total"


@dataclass(frozen=True)
class HopLatency:
    key: str  # "total" or the hop number as text
    name: str
    p95: float
    samples: int


@dataclass(frozen=True)
class Baseline:
    target: str
    created_at: str
    hops: Mapping[str, HopLatency]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "created_at": self.created_at,
            "target": self.target,
            "p95_ms": {
                key: {"name": hop.name, "p95": hop.p95, "samples": hop.samples} for key, hop in self.hops.items()
            },
        }


def from_summary(summary: Mapping[str, Any], target: str) -> Baseline:
    """Per-hop and total P95 of a request run (`RunSummary.to_dict()`); hops without a P95 are left out."""
    hops: dict[str, HopLatency] = {}
    latency = summary.get("latency_ms")
    if isinstance(latency, Mapping) and isinstance(latency.get("p95"), int | float):
        hops[TOTAL] = HopLatency(TOTAL, "client total", float(latency["p95"]), int(latency.get("count") or 0))
    for hop in summary.get("hops") or []:
        if isinstance(hop, Mapping) and isinstance(hop.get("p95"), int | float):
            key = str(hop.get("hop"))
            hops[key] = HopLatency(key, str(hop.get("name") or key), float(hop["p95"]), int(hop.get("samples") or 0))
    return Baseline(target, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), hops)


def save(baseline: Baseline, path: Path) -> None:
    if not baseline.hops:
        raise UsageError(f"--save-baseline {path}: the run timed nothing (no successful request)")
    try:
        path.write_text(json.dumps(baseline.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--save-baseline {path}: cannot write ({exc.strerror or exc})") from exc


def load(path: Path) -> Baseline:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--baseline {path}: cannot read ({exc})") from exc
    if not isinstance(document, Mapping) or document.get("kind") != KIND:
        raise InputError(f"--baseline {path}: not a smoke baseline (write one with --save-baseline)")
    hops: dict[str, HopLatency] = {}
    for key, item in (document.get("p95_ms") or {}).items():
        if not isinstance(item, Mapping) or not isinstance(item.get("p95"), int | float):
            raise InputError(f"--baseline {path}: entry {key!r} has no p95 number")
        hops[str(key)] = HopLatency(str(key), str(item.get("name") or key), float(item["p95"]),
                                    int(item.get("samples") or 0))
    return Baseline(str(document.get("target") or ""), str(document.get("created_at") or ""), hops)


def _label(hop: HopLatency) -> str:
    return "total" if hop.key == TOTAL else f"hop {hop.key} {hop.name}"


def compare(baseline: Baseline, current: Baseline, margin: float, floor_ms: float) -> list[GateResult]:
    """One gate per hop of the baseline (and the total)."""
    gates: list[GateResult] = []
    for key, old in baseline.hops.items():
        name = f"baseline {_label(old)} p95"
        new = current.hops.get(key)
        if new is None:
            gates.append(GateResult(name, GateStatus.SKIP, None, None,
                                    f"not timed in this run (baseline {old.p95:.2f} ms)", "ms"))
            continue
        limit = old.p95 * (1.0 + margin) + floor_ms
        change = (new.p95 - old.p95) / old.p95 * 100.0 if old.p95 > 0 else 0.0
        gates.append(
            GateResult(
                name,
                GateStatus.PASS if new.p95 <= limit else GateStatus.FAIL,
                round(new.p95, 3),
                round(limit, 3),
                f"P95 {new.p95:.2f} ms vs baseline {old.p95:.2f} ms ({change:+.0f}%; limit +{100.0 * margin:g}% "
                f"+ {floor_ms:g} ms = {limit:.2f} ms)",
                "ms",
            )
        )
    for key, new in current.hops.items():
        if key not in baseline.hops:
            gates.append(GateResult(f"baseline {_label(new)} p95", GateStatus.SKIP, round(new.p95, 3), None,
                                    "not in the baseline", "ms"))
    return gates
