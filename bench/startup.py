"""Start-up: `mlops-trace --help` and `doctor --bundle fixtures/scenarios/healthy-ab` against `python -c pass`."""

from __future__ import annotations

from bench import timing
from bench.report import Headline, PartResult, Table, mib, ms, ratio_text
from bench.settings import REPO, Settings

SMALL_BUNDLE = REPO / "fixtures" / "scenarios" / "healthy-ab"


def run(settings: Settings) -> PartResult:
    part = PartResult("startup", "Start-up")
    cli = settings.mlops_trace()
    commands = {
        "python -c pass": [str(settings.python), "-c", "pass"],
        "mlops-trace --help": [*cli, "--help"],
        "mlops-trace doctor --bundle healthy-ab -o json": [*cli, "doctor", "--bundle", str(SMALL_BUNDLE), "-o", "json"],
    }
    runs = settings.runs if settings.tiny else max(settings.runs * 5, 10)
    warmup = 1 if settings.tiny else 2
    env = settings.child_env()
    if timing.hyperfine_available():
        samples = timing.hyperfine(commands, runs=runs, warmup=warmup, cwd=REPO, env=env)
        tool = f"hyperfine (-N, --warmup {warmup})"
    else:
        samples = {
            label: timing.repeat(label, argv, runs=runs, warmup=warmup, env=env, cwd=REPO)
            for label, argv in commands.items()
        }
        tool = "repeated timed runs (hyperfine not installed)"
    anchor = samples["python -c pass"]
    rows = []
    for label, sample in samples.items():
        ratio = sample.median / anchor.median
        rows.append(
            (
                f"`{label}`",
                ms(sample.median),
                f"±{sample.spread * 100:.0f} %",
                f"{ms(sample.low)} – {ms(sample.high)}",
                mib(sample.peak_rss_mib),
                ratio_text(ratio),
            )
        )
        if label != "python -c pass":
            part.headlines.append(
                Headline(f"start-up: `{label}`", ratio, "`python -c pass`", detail=f"{ms(sample.median)} median")
            )
    part.tables.append(
        Table(
            ("command", "median", "spread (IQR/2)", "range", "peak RSS", "vs python -c pass"),
            tuple(rows),
            caption=f"{runs} runs each, {tool}; the CLI is the console script "
            "beside the interpreter (no shell, no pyenv shim).",
        )
    )
    part.notes.append("Exit codes are not judged here (hyperfine runs with `-i`).")
    return part
