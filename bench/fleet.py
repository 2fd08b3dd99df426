"""Many clusters in one run: `doctor --all-contexts` over 20 served bundles against running `doctor --context C` for
each context one by one, with the wall time and peak RSS of each child; then 50 contexts (the same 20 servers, named
two or three times each) to show that memory stays bounded as the contexts grow.

Each "cluster" is a `mlops-trace bundle serve` process on 127.0.0.1 (bounded by `--duration`, stopped by PID), all
named in one kubeconfig. Every run reads `-A` and prints JSON; the fleet's findings are compared with the one-by-one
runs' findings, so a faster run that found less would show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench import timing
from bench.report import Headline, PartResult, Table, mib, ratio_text, secs
from bench.settings import REPO, Settings

SCENARIOS = REPO / "fixtures" / "scenarios"
BUNDLES = ("four-root-causes", "healthy-ab", "seldon-release-samples", "kserve-quickstart")
SERVED = 20
WIDE = 50
TINY_SERVED, TINY_WIDE = 3, 6  # `--size tiny` (the runner's own test): the same runs, fewer clusters
SERVE_SECONDS = 1800


@contextmanager
def _server(settings: Settings, bundle: Path, workdir: Path) -> Iterator[str]:
    """One `bundle serve`; its URL once it listens; stopped by PID however the part ends."""
    kubeconfig = workdir / "kubeconfig"
    proc = subprocess.Popen(
        [*settings.mlops_trace(), "bundle", "serve", str(bundle), "--port", "0", "--kubeconfig-out", str(kubeconfig),
         "--duration", str(SERVE_SECONDS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=settings.child_env(), cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bundle serve {bundle.name} did not start")
            time.sleep(0.05)
        yield "http://127.0.0.1:" + kubeconfig.read_text(encoding="utf-8").split("server: http://127.0.0.1:")[1].split()[0]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _kubeconfig(servers: dict[str, str], path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in servers.items()],
        "users": [{"name": "reader", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "reader"}} for name in servers],
        "current-context": next(iter(servers)),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _keys(stdout: str) -> list[tuple[str, str, str, str]]:
    try:
        findings: list[dict[str, Any]] = json.loads(stdout)["findings"]
    except (ValueError, KeyError):
        return []
    return sorted((f["id"], f["namespace"] or "", f["object"], f["message"]) for f in findings)


def _doctor(settings: Settings, kubeconfig: Path, args: Sequence[str]) -> timing.Run:
    argv = [*settings.mlops_trace(), "doctor", "--kubeconfig", str(kubeconfig), "-A", "-o", "json", *args]
    return timing.run(argv, env=settings.child_env(), cwd=REPO, capture=True, timeout_s=1800)


def run(settings: Settings) -> PartResult:
    part = PartResult("fleet", "Many clusters in one run")
    work = settings.cache / "fleet"
    work.mkdir(parents=True, exist_ok=True)
    bundles = [SCENARIOS / name for name in BUNDLES if (SCENARIOS / name).is_dir()]
    served_count, wide_count = (TINY_SERVED, TINY_WIDE) if settings.tiny else (SERVED, WIDE)
    started = time.perf_counter()
    with ExitStack() as stack:
        servers: dict[str, str] = {}
        for index in range(served_count):
            place = work / f"serve-{index:02d}"
            place.mkdir(exist_ok=True)
            (place / "kubeconfig").unlink(missing_ok=True)
            bundle = bundles[index % len(bundles)]
            servers[f"c{index:02d}-{bundle.name}"] = stack.enter_context(_server(settings, bundle, place))
        serving_s = time.perf_counter() - started
        kubeconfig = _kubeconfig(servers, work / "kubeconfig-20")
        wide = {f"w{index:02d}": list(servers.values())[index % served_count] for index in range(wide_count)}
        wide_kubeconfig = _kubeconfig(wide, work / "kubeconfig-50")

        alone = [_doctor(settings, kubeconfig, ["--context", name]) for name in servers]
        fleet = _doctor(settings, kubeconfig, ["--all-contexts"])
        serial = _doctor(settings, kubeconfig, ["--all-contexts", "--parallel", "1"])
        wide_run = _doctor(settings, wide_kubeconfig, ["--all-contexts"])

    alone_wall = sum(r.wall_s for r in alone)
    alone_keys = sorted(key for r in alone for key in _keys(r.stdout))
    same = _keys(fleet.stdout) == alone_keys and _keys(serial.stdout) == alone_keys
    codes = sorted({r.returncode for r in alone})
    rows = [
        (f"{served_count} × `doctor --context C -A` one by one", secs(alone_wall), mib(max(r.peak_rss_mib for r in alone)),
         "1.00×", ", ".join(map(str, codes))),
        ("`doctor --all-contexts --parallel 1 -A` (one process)", secs(serial.wall_s), mib(serial.peak_rss_mib),
         ratio_text(serial.wall_s / alone_wall), str(serial.returncode)),
        ("`doctor --all-contexts -A` (default --parallel 4)", secs(fleet.wall_s), mib(fleet.peak_rss_mib),
         ratio_text(fleet.wall_s / alone_wall), str(fleet.returncode)),
        (f"`doctor --all-contexts -A`, {wide_count} contexts on the same {served_count} servers", secs(wide_run.wall_s),
         mib(wide_run.peak_rss_mib), "–", str(wide_run.returncode)),
    ]
    part.tables.append(Table(
        ("run", "wall", "peak RSS", "wall vs one by one", "exit"),
        tuple(rows),
        caption=f"{served_count} `bundle serve` processes on 127.0.0.1 ({', '.join(b.name for b in bundles[:served_count])} in "
        f"turn, "
        f"started in {secs(serving_s)}), one kubeconfig naming each as a context; one run of each command. "
        f"The fleet's findings {'equal' if same else '**differ from**'} those of the one-by-one runs.",
    ))
    part.headlines.append(Headline(
        f"fleet: `doctor --all-contexts`, {served_count} clusters", fleet.wall_s / alone_wall,
        f"{served_count} × `doctor --context C` one by one", detail=f"{secs(fleet.wall_s)} vs {secs(alone_wall)}; peak RSS "
        f"{mib(fleet.peak_rss_mib)} (one cluster alone: {mib(max(r.peak_rss_mib for r in alone))})",
    ))
    part.headlines.append(Headline(
        f"fleet: peak RSS, {wide_count} contexts against {served_count}", wide_run.peak_rss_mib / fleet.peak_rss_mib,
        f"`doctor --all-contexts`, {served_count} contexts", detail=f"{mib(wide_run.peak_rss_mib)} vs "
        f"{mib(fleet.peak_rss_mib)}",
    ))
    part.notes.append(
        "At most `--parallel` clusters are read at once; a cluster's Snapshot and temporary bundle are gone once its "
        "checks ran, only its report is kept, so peak memory follows `--parallel`, not the number of contexts."
    )
    part.notes.append(
        f"The one-by-one runs pay the CLI's start-up (the Kubernetes client's import above all) {served_count} times; "
        "`--parallel 1` in one process separates that from the gain of reading clusters concurrently."
    )
    if not same:
        part.notes.append("The findings differ: the figures above do not compare like with like.")
    return part
