"""Work the benchmark runs in a child process, so its wall time and peak memory are the child's own:

    python -m bench.child doctor BUNDLE          load the bundle, then run every check; seconds per phase and check
    python -m bench.child config-dump FILE       load_config_dump(FILE); what it found
    python -m bench.child log-scan FILE CHECK    one log-scanning check (MT102, MT106) over FILE as a scheduler log

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def doctor(bundle: Path) -> dict[str, Any]:
    from mlops_trace.analysis.catalog import select
    from mlops_trace.analysis.engine import run_checks
    from mlops_trace.snapshot.bundle import load_bundle_dir

    started = time.perf_counter()
    snap = load_bundle_dir(bundle)
    loaded = time.perf_counter()
    rss_loaded = _rss_mib()
    checks: dict[str, float] = {}
    statuses: dict[str, str] = {}
    findings = 0
    for entry in select():
        before = time.perf_counter()
        report = run_checks(snap, [entry])
        checks[entry.check.id] = round(time.perf_counter() - before, 4)
        statuses[entry.check.id] = report.checks[0].status.value
        findings += len(report.findings)
    return {
        "load_s": round(loaded - started, 4),
        "checks_s": round(time.perf_counter() - loaded, 4),
        "per_check_s": checks,
        "status": statuses,
        "findings": findings,
        "objects": len(snap.objects),
        "models": len(snap.objects_of("Model")),
        "namespaces": len(snap.namespaces()),
        "rss_after_load_mib": round(rss_loaded, 1),
        "problems": [f"{p.path}: {p.reason}" for p in snap.problems][:5],
    }


def config_dump(path: Path) -> dict[str, Any]:
    from mlops_trace.parsers.envoy_config import load_config_dump

    started = time.perf_counter()
    config = load_config_dump(path)
    return {
        "load_s": round(time.perf_counter() - started, 4),
        "routes": sum(1 for _ in config.routes()),
        "clusters": len(config.clusters),
        "listeners": len(config.listeners),
        "endpoints": sum(len(c.endpoints) for c in config.clusters),
    }


def log_scan(path: Path, check_id: str) -> dict[str, Any]:
    from mlops_trace.analysis.catalog import find_entry
    from mlops_trace.analysis.engine import run_checks
    from mlops_trace.snapshot.roles import Role
    from mlops_trace.snapshot.snapshot import LogSource, Snapshot

    snap = Snapshot(source=str(path))
    snap.logs.append(LogSource("ml-prod", "seldon-scheduler-0", "scheduler", Role.SCHEDULER, path, path.name))
    started = time.perf_counter()
    report = run_checks(snap, [find_entry(check_id)])
    return {
        "scan_s": round(time.perf_counter() - started, 4),
        "status": report.checks[0].status.value,
        "reason": report.checks[0].reason,
        "findings": [f.object for f in report.findings],
    }


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "doctor":
        result = doctor(Path(args[0]))
    elif command == "config-dump":
        result = config_dump(Path(args[0]))
    elif command == "log-scan":
        result = log_scan(Path(args[0]), args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    result["peak_rss_mib"] = round(_rss_mib(), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
