"""`python -m bench [--size tiny|full] [--only NAME ...]`: run the benchmarks and rewrite docs/BENCHMARKS.md.

Parts: `startup`, `scale` (generated bundle: doctor, log scans, config_dump), `accuracy` and `throughput` (the
reference stack, in the benchmark's own state directory). At `--size tiny` the stack parts are skipped with the
reason written in the report; a part whose tool is missing is skipped the same way. The exit code is 0 when every
part that was asked for ran or was skipped with a reason, 1 when one failed: missed targets never fail the run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, scale, stack_parts, startup
from bench.generate import SIZES
from bench.report import PartResult, Status, render
from bench.settings import REPO, Settings, current_python, default_cache, default_stack_venv

PARTS: dict[str, tuple[str, Callable[[Settings], PartResult]]] = {
    "startup": ("Start-up", startup.run),
    "scale": ("Doctor at scale", scale.run),
    "accuracy": ("Timing accuracy", stack_parts.accuracy),
    "throughput": ("Prober throughput and latency", stack_parts.throughput),
}
STACK_PARTS = ("accuracy", "throughput")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(PARTS),
        default=[],
        help="run only this part (repeatable); the others are listed as not run",
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="generated data and the stack state (default $MLOPS_TRACE_BENCH_CACHE or ~/.cache/mlops-trace/bench)",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each timed command (start-up: 5× this)")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="an older source tree (e.g. `git archive` of a commit): adds a before/after table",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(
        size=SIZES[args.size],
        cache=(args.cache or default_cache()).expanduser().resolve(),
        runs=max(1, args.runs),
        python=current_python(),
        baseline_tree=args.baseline_tree.resolve() if args.baseline_tree else None,
        stack_venv=default_stack_venv(),
    )
    settings.cache.mkdir(parents=True, exist_ok=True)
    wanted = args.only or list(PARTS)
    started = time.perf_counter()
    results: list[PartResult] = []
    failed = False
    for name, (title, function) in PARTS.items():
        if name not in wanted:
            results.append(
                PartResult(name, title, Status.SKIPPED, f"not asked for (`--only {' --only '.join(wanted)}`)")
            )
            continue
        if name in STACK_PARTS and settings.tiny:
            results.append(
                PartResult(
                    name,
                    title,
                    Status.SKIPPED,
                    "not run at `--size tiny`: it starts the reference stack (use `--size full`)",
                )
            )
            continue
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        part_started = time.perf_counter()
        try:
            result = function(settings)
        except stack_parts.StackUnavailable as exc:
            result = PartResult(name, title, Status.SKIPPED, f"reference stack unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others' figures
            traceback.print_exc()
            result = PartResult(name, title, Status.FAILED, f"{type(exc).__name__}: {exc}")
            failed = True
        result.seconds = result.seconds or time.perf_counter() - part_started
        print(f"bench: {name} {result.status.value} in {result.seconds:.1f}s", file=sys.stderr, flush=True)
        results.append(result)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    text = render(
        results,
        machine.describe(settings.stack_venv),
        command.strip(),
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings.size.name,
        time.perf_counter() - started,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"bench: wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0
