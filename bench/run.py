"""`python -m bench [--size tiny|full] [--only NAME ...]`: run the benchmarks and rewrite docs/BENCHMARKS.md.

Parts: `startup`, `scale` (generated bundle: doctor, log scans, config_dump), `fleet` (`doctor --all-contexts` over 20
served bundles), `accuracy` and `throughput` (the reference stack, in the benchmark's own state directory). At
`--size tiny` the stack parts are skipped with the
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

from bench import fleet, machine, scale, stack_parts, startup
from bench.generate import SIZES
from bench.report import PartResult, Status, render
from bench.settings import REPO, Settings, current_python, default_cache, default_stack_venv

PARTS: dict[str, tuple[str, Callable[[Settings], PartResult]]] = {
    "startup": ("Start-up", startup.run),
    "scale": ("Doctor at scale", scale.run),
    "fleet": ("Many clusters in one run", fleet.run),
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
    parser.add_argument(
        "--fuzz",
        type=int,
        default=None,
        metavar="N",
        help="run only a fuzz campaign of N mutated bundles (bench/fuzz.py) and rewrite its section of the report",
    )
    parser.add_argument("--fuzz-seed", type=int, default=None, help="the campaign's seed (default: from the clock)")
    return parser.parse_args(list(argv))


def run_fuzz(count: int, seed: int | None, output: Path) -> int:
    """A long fuzz campaign; its figures replace the `## Fuzzing` section of the report (the rest is kept)."""
    import tempfile

    from bench.fuzz import campaign, describe

    seed = seed if seed is not None else int(time.time())

    def progress(done: int) -> None:
        print(f"bench: fuzz {done}/{count}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="mlops-trace-fuzz-") as work:
        result = campaign(count, seed, Path(work), progress)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"{FUZZ_HEADING}\n\n"
        f"`python -m bench --fuzz {count} --fuzz-seed {seed}`, {when}. Each case mutates a copy of one fixture bundle "
        "(a value, a shape, bytes, deep nesting, YAML aliases, a long log line, a symbolic link, a FIFO, a junk "
        "file; 15 % of cases as a .tar.gz), then reads it, runs every check and renders it; a case fails when "
        "anything but a one-line InputError escapes, a check errors, a bad file is not named, a file from outside "
        "the bundle reaches the output, or it takes longer than its bound. The CI test (tests/test_fuzz.py) runs "
        "2,000 derandomised cases of the same kind.\n\n" + describe(result, seed) + "\n"
    )
    text = output.read_text(encoding="utf-8") if output.is_file() else "# Benchmarks\n"
    if FUZZ_HEADING in text:
        before, _, after = text.partition(FUZZ_HEADING)
        rest = after.split("\n## ", 1)
        text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text, encoding="utf-8")
    print(describe(result, seed))
    print(f"bench: wrote the fuzzing section of {output}", file=sys.stderr)
    return 1 if result.failures else 0


FUZZ_HEADING = "## Fuzzing"


def _keep_fuzz_section(output: Path, text: str) -> str:
    """A full run rewrites the report; the last fuzz campaign's section (its own command) is carried over."""
    old = output.read_text(encoding="utf-8") if output.is_file() else ""
    if FUZZ_HEADING not in old or FUZZ_HEADING in text:
        return text
    section = FUZZ_HEADING + old.partition(FUZZ_HEADING)[2].split("\n## ", 1)[0]
    return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.fuzz is not None:
        return run_fuzz(args.fuzz, args.fuzz_seed, args.output)
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
    text = _keep_fuzz_section(args.output, text)
    args.output.write_text(text, encoding="utf-8")
    print(f"bench: wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0
