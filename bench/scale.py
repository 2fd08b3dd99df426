"""Doctor at scale on a generated bundle: the log scans against `grep -c`, the config_dump load against `jq`, and
the whole `doctor` run, with wall time and peak RSS of each child process."""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import timing
from bench.generate import LOG_MIX, THRASH_BURSTS, THRASH_ROUNDS, GeneratedBundle, generate
from bench.report import Headline, PartResult, Table, mib, ratio_text, secs
from bench.settings import REPO, Settings

# The substrings each scheduler-log check cannot match without (the same as in the check modules), as grep sees them.
GREP_PATTERNS = {
    "MT102": "remove routes for model|trying to setup experiment for| sync - calling for ",
    "MT106": "failed to schedule model|no matching server|sending load model request for |scheduled model onto server"
    "|updating state for model ",
}
LOG_TARGET = 3.0  # log scan within 3x of grep
# jq reads the whole document (it does not stream by default) and counts what the parser builds: routes.
JQ_ROUTES = (
    '[.configs[] | select(."@type" | endswith("RoutesConfigDump")) '
    "| .dynamic_route_configs[].route_config.virtual_hosts[].routes | length] | add"
)


@dataclass(frozen=True)
class _Timed:
    wall_s: float  # median
    walls: tuple[float, ...]
    peak_rss_mib: float
    output: str


def _timed(argv: Sequence[str], runs: int, env: dict[str, str] | None = None, cwd: Path | None = None) -> _Timed:
    results = [timing.run(argv, env=env, cwd=cwd, capture=True) for _ in range(runs)]
    walls = tuple(r.wall_s for r in results)
    return _Timed(statistics.median(walls), walls, max(r.peak_rss_mib for r in results), results[-1].stdout)


def _child(settings: Settings, args: Sequence[str], runs: int, tree: Path | None = None) -> tuple[_Timed, Any]:
    timed = _timed(
        [str(settings.python), "-m", "bench.child", *args], runs, env=settings.child_env(tree), cwd=tree or REPO
    )
    try:
        document = json.loads(timed.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        document = {"error": timed.output[-300:]}
    return timed, document


def _spread(timed: _Timed) -> str:
    if len(timed.walls) < 2:
        return "1 run"
    return f"{secs(min(timed.walls))} – {secs(max(timed.walls))}"


def run(settings: Settings) -> PartResult:
    part = PartResult("scale", "Doctor at scale")
    started = time.perf_counter()
    bundle = generate(settings.cache, settings.size)
    generated = time.perf_counter() - started
    runs = 1 if settings.tiny else max(1, min(settings.runs, 3))
    _describe_bundle(part, bundle, generated)
    log = bundle.scheduler_log
    dump = bundle.config_dump
    # Warm the page cache once, so every contender reads from memory.
    for path in (log, dump):
        timing.run(["cat", str(path)])

    rows = []
    anchors: dict[str, float] = {}
    for check, pattern in GREP_PATTERNS.items():
        grep = _timed(["grep", "-c", "-i", "-E", pattern, str(log)], runs)
        anchors.setdefault("grep", grep.wall_s)
        ours, result = _child(settings, ["log-scan", str(log), check], runs)
        ratio = ours.wall_s / grep.wall_s
        rows.append(
            (
                f"{check} scan (`python -m bench.child log-scan`)",
                secs(ours.wall_s),
                _spread(ours),
                f"{secs(float(result.get('scan_s', 0.0)))}",
                mib(ours.peak_rss_mib),
                ratio_text(ratio),
                f"{result.get('status')}: {result.get('reason')}",
            )
        )
        rows.append(
            (
                "`grep -c -i -E` (its needles)",
                secs(grep.wall_s),
                _spread(grep),
                "",
                mib(grep.peak_rss_mib),
                "1.00×",
                f"{grep.output.strip()} matching lines",
            )
        )
        part.headlines.append(
            Headline(
                f"scheduler-log scan {check} ({_size(log)})",
                ratio,
                "`grep -c -i -E`",
                target=f"≤ {LOG_TARGET:.0f}×",
                met=ratio <= LOG_TARGET,
                detail=f"{secs(ours.wall_s)} vs {secs(grep.wall_s)}; peak RSS {mib(ours.peak_rss_mib)}",
            )
        )
    part.tables.append(
        Table(
            ("log scan", "wall (median)", "range", "of which the check", "peak RSS", "vs grep", "result"),
            tuple(rows),
            caption=f"Scheduler log {_size(log)}, {runs} run(s) each, page cache warm. The ratio "
            "uses the whole child process (interpreter start, catalog load, the check's scan and "
            "its findings); the check alone is timed inside it.",
        )
    )

    jq_available = shutil.which("jq") is not None
    ours, result = _child(settings, ["config-dump", str(dump)], runs)
    dump_rows = [
        (
            "`load_config_dump` (`python -m bench.child config-dump`)",
            secs(ours.wall_s),
            _spread(ours),
            mib(ours.peak_rss_mib),
            "",
            (f"{result.get('routes')} routes, {result.get('clusters')} clusters, {result.get('endpoints')} endpoints"),
        )
    ]
    if jq_available:
        jq = _timed(["jq", JQ_ROUTES, str(dump)], runs)
        anchors["jq"] = jq.wall_s
        ratio = ours.wall_s / jq.wall_s
        dump_rows[0] = (*dump_rows[0][:4], ratio_text(ratio), dump_rows[0][5])
        dump_rows.append(
            (
                "`jq` (count the routes)",
                secs(jq.wall_s),
                _spread(jq),
                mib(jq.peak_rss_mib),
                "1.00×",
                f"{jq.output.strip()} routes",
            )
        )
        part.headlines.append(
            Headline(
                f"config_dump load ({_size(dump)})",
                ratio,
                "`jq` over the same file",
                detail=f"{secs(ours.wall_s)} vs {secs(jq.wall_s)}",
            )
        )
        part.headlines.append(
            Headline(
                f"config_dump peak memory ({_size(dump)})",
                ours.peak_rss_mib / jq.peak_rss_mib,
                "`jq` peak RSS",
                target="bounded (streamed)",
                met=None if settings.tiny else ours.peak_rss_mib < dump.stat().st_size / 2**20,
                detail=f"{mib(ours.peak_rss_mib)} vs {mib(jq.peak_rss_mib)}; file {_size(dump)}",
            )
        )
    else:
        part.notes.append("jq is not installed: the config_dump figure has no anchor (`apt-get install jq`).")
    part.tables.append(
        Table(
            ("config_dump", "wall (median)", "range", "peak RSS", "vs jq", "result"),
            tuple(dump_rows),
            caption=f"The big Envoy config_dump, {_size(dump)}.",
        )
    )

    _doctor(settings, part, bundle, runs, anchors)
    if settings.baseline_tree is not None:
        _baseline(settings, part, bundle)
    part.seconds = time.perf_counter() - started
    return part


def _doctor(
    settings: Settings, part: PartResult, bundle: GeneratedBundle, runs: int, anchors: dict[str, float]
) -> None:
    cli = settings.mlops_trace()
    whole = _timed([*cli, "doctor", "--bundle", str(bundle.root), "-o", "json"], runs, env=settings.child_env())
    _, profile = _child(settings, ["doctor", str(bundle.root)], 1)
    try:
        report = json.loads(whole.output)
        findings = len(report.get("findings", []))
    except ValueError:
        findings = -1
    anchor = sum(anchors.values())
    ratio = whole.wall_s / anchor if anchor else None
    part.headlines.append(
        Headline(
            f"`doctor --bundle` on {bundle.size.models:,} Models / {bundle.size.namespaces} namespaces",
            ratio,
            "`grep -c` on the log + `jq` on the dump",
            target="memory bounded",
            met=None if settings.tiny else whole.peak_rss_mib * 2**20 < bundle.bytes / 4,
            detail=f"{secs(whole.wall_s)}, peak RSS {mib(whole.peak_rss_mib)} for {_size_bytes(bundle.bytes)} of input",
        )
    )
    rows = [
        (
            "`mlops-trace doctor --bundle … -o json`",
            secs(whole.wall_s),
            _spread(whole),
            mib(whole.peak_rss_mib),
            f"{findings} findings",
        ),
        (
            "anchor: `grep -c` (MT102 needles) on the big log + `jq` on the big dump",
            secs(anchor),
            "",
            "",
            " + ".join(f"{name} {secs(value)}" for name, value in anchors.items()),
        ),
    ]
    part.tables.append(Table(("doctor", "wall (median)", "range", "peak RSS", "result"), tuple(rows)))
    if "per_check_s" in profile:
        slowest = sorted(profile["per_check_s"].items(), key=lambda item: -item[1])
        breakdown = [("loading the bundle", secs(profile["load_s"]), mib(profile["rss_after_load_mib"]) + " after")]
        breakdown += [(f"{check} ({profile['status'][check]})", secs(seconds), "") for check, seconds in slowest[:8]]
        breakdown.append(("all other checks", secs(sum(s for _, s in slowest[8:])), ""))
        part.tables.append(
            Table(
                ("phase (one in-process run)", "time", "RSS"),
                tuple(breakdown),
                caption=f"Where the time goes ({profile['objects']:,} objects, {profile['models']:,} "
                f"Models, {profile['namespaces']} namespaces; peak RSS "
                f"{mib(profile['peak_rss_mib'])}).",
            )
        )


def _baseline(settings: Settings, part: PartResult, bundle: GeneratedBundle) -> None:
    """The same children with an older source tree, for a before/after table."""
    tree = settings.baseline_tree
    assert tree is not None
    rows = []
    pairs: list[tuple[str, list[str]]] = [
        ("MT102 scan", ["log-scan", str(bundle.scheduler_log), "MT102"]),
        ("MT106 scan", ["log-scan", str(bundle.scheduler_log), "MT106"]),
        ("config_dump load", ["config-dump", str(bundle.config_dump)]),
        ("doctor (in-process, all checks)", ["doctor", str(bundle.root)]),
    ]
    for label, args in pairs:
        before, _ = _child(settings, args, 1, tree=tree)
        after, _ = _child(settings, args, 1)
        rows.append(
            (
                label,
                secs(before.wall_s),
                mib(before.peak_rss_mib),
                secs(after.wall_s),
                mib(after.peak_rss_mib),
                ratio_text(before.wall_s / after.wall_s),
            )
        )
    part.tables.append(
        Table(
            ("before → after", "before wall", "before RSS", "after wall", "after RSS", "speed-up"),
            tuple(rows),
            caption=f"Baseline tree: `{tree}` (one run each).",
        )
    )


def _describe_bundle(part: PartResult, bundle: GeneratedBundle, generated_s: float) -> None:
    size = bundle.size
    total = sum(weight for weight, _ in LOG_MIX)
    mix = ", ".join(f"{100 * weight / total:.0f} % `{_msg(template)}`" for weight, template in LOG_MIX)
    part.tables.append(
        Table(
            ("generated bundle", ""),
            (
                ("where", f"`{bundle.root}` (cache, not in git; rebuilt when the generator changes)"),
                (
                    "namespaces / Models",
                    (
                        f"{size.namespaces} / {size.models:,} ({int(size.models * size.big_share):,} in "
                        "`ml-prod`, the rest spread evenly)"
                    ),
                ),
                ("files / bytes", f"{bundle.files:,} / {_size_bytes(bundle.bytes)}"),
                (
                    "big config_dump",
                    (
                        f"{_size(bundle.config_dump)}: Seldon-shaped listener, routes, clusters "
                        f"({size.big_replicas} endpoints each), EDS"
                    ),
                ),
                ("big scheduler log", f"{_size(bundle.scheduler_log)}, logrus text"),
                ("generation", f"{secs(generated_s)} (0 when cached)"),
            ),
        )
    )
    part.notes.append(
        f"Scheduler log mix (routine lines): {mix}; plus {THRASH_BURSTS} route-thrash bursts of "
        f"{THRASH_ROUNDS} rounds (MT102) and scheduling failures for 3 Models (MT106)."
    )


def _msg(template: str) -> str:
    start = template.find('msg="') + 5
    return (
        template[start : template.find('"', start)]
        .replace("{m}", "<m>")
        .replace("{e}", "<e>")
        .replace("{n}", "<n>")
        .replace("{r}", "<r>")
        .replace("{i}", "<i>")
    )


def _size(path: Path) -> str:
    return _size_bytes(path.stat().st_size)


def _size_bytes(count: int) -> str:
    if count >= 10**9:
        return f"{count / 10**9:.2f} GB"
    if count >= 10**6:
        return f"{count / 10**6:.0f} MB"
    return f"{count / 10**3:.0f} kB"
