"""The parts that need the reference stack: timing accuracy (injected delays against the hop time `request --count`
attributes) and prober throughput and latency (against wrk and hey on the same endpoint, then against an Envoy
direct_response endpoint for the prober's own ceiling). The stack runs in the benchmark's own state directory and
is taken down at the end."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.machine import stack_binaries
from bench.report import Headline, PartResult, Status, Table, ratio_text, secs
from bench.settings import Settings

DELAYS_MS = (2, 5, 20)
SLOW_FAULTS = ("slow-model", "slow-envoy")
HOP_OF_FAULT = {"slow-model": 7, "slow-envoy": 4}


class StackUnavailable(Exception):
    """The reference stack could not be started: the part is skipped with this reason."""


def _env(settings: Settings) -> dict[str, str]:
    env = settings.child_env()
    env["MLOPS_TRACE_STACK_DIR"] = str(settings.cache / "stack")
    if settings.stack_venv is not None:
        env["MLOPS_TRACE_STACK_VENV"] = str(settings.stack_venv)
    return env


def _stack(settings: Settings, *args: str, timeout: float = 1800.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*settings.mlops_trace(), "stack", *args],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def running_stack(settings: Settings, faults: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    _stack(settings, "down")
    argv = ["up", "-o", "json"]
    for fault in faults:
        argv += ["--fault", fault]
    up = _stack(settings, *argv)
    if up.returncode != 0:
        _stack(settings, "down")
        tail = (up.stderr or up.stdout).strip().splitlines()[-3:]
        raise StackUnavailable(
            f"`mlops-trace stack up {' '.join(argv[3:])}` exited {up.returncode}: " + " / ".join(tail)
        )
    try:
        status = _stack(settings, "status", "-o", "json")
        yield json.loads(status.stdout)
    finally:
        _stack(settings, "down")


def _request(settings: Settings, count: int, concurrency: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            *settings.mlops_trace(),
            "request",
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--log-wait",
            "2",
            "-o",
            "json",
        ],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        raise StackUnavailable(
            f"`request --count` printed no JSON (exit {done.returncode}): {done.stderr.strip()[-200:]}"
        ) from exc
    return document


def _hop(document: dict[str, Any], number: int) -> dict[str, Any]:
    return next((hop for hop in document.get("hops", []) if hop.get("hop") == number), {})


# --- timing accuracy -----------------------------------------------------------------------------------------------


def accuracy(settings: Settings) -> PartResult:
    part = PartResult("accuracy", "Timing accuracy")
    started = time.perf_counter()
    count = 200
    measured: dict[str, dict[str, Any]] = {}
    configs: list[tuple[str, tuple[str, ...]]] = [("healthy", ())]
    configs += [(f"{fault}={delay}ms", (f"{fault}={delay}ms",)) for fault in SLOW_FAULTS for delay in DELAYS_MS]
    for label, faults in configs:
        with running_stack(settings, faults):
            _request(settings, 20, 1)  # warm the path: connections, MLServer, Envoy's clusters
            measured[label] = _request(settings, count, 1)
    base = measured["healthy"]
    rows = []
    worst: dict[str, float] = {}
    gap: dict[str, float] = {}
    worst_seen: dict[str, tuple[int, float | None]] = {}
    for fault in SLOW_FAULTS:
        hop = HOP_OF_FAULT[fault]
        for delay in DELAYS_MS:
            document = measured[f"{fault}={delay}ms"]
            # Means, not medians: a mean difference is additive over hops and, over 200 requests, not thrown about
            # by the whole-millisecond steps of the access logs as a median is.
            attributed = _hop(document, hop).get("mean")
            before = _hop(base, hop).get("mean")
            total = (document.get("latency_ms") or {}).get("mean")
            total_before = (base.get("latency_ms") or {}).get("mean")
            if attributed is None or before is None:
                rows.append(
                    (
                        fault,
                        f"{delay} ms",
                        f"hop {hop}",
                        "not timed",
                        "",
                        "",
                        "",
                        _hop(document, hop).get("untimed_reason") or "",
                        "",
                    )
                )
                continue
            added = attributed - before
            error = added - delay
            seen = (total - total_before) if total is not None and total_before is not None else None
            if abs(error) / delay >= worst.get(fault, 0.0):
                worst[fault] = abs(error) / delay
                worst_seen[fault] = (delay, seen)
            if seen is not None:
                gap[fault] = max(gap.get(fault, 0.0), abs(added - seen))
            rows.append(
                (
                    fault,
                    f"{delay} ms",
                    f"hop {hop} {_hop(document, hop).get('name', '')}",
                    f"{before:.2f} → {attributed:.2f} ms",
                    f"{added:+.2f} ms",
                    f"{error:+.2f} ms",
                    f"{100 * error / delay:+.0f} %",
                    f"{seen:+.2f} ms" if seen is not None else "–",
                    f"{added - seen:+.2f} ms" if seen is not None else "–",
                )
            )
    part.tables.append(
        Table(
            (
                "fault",
                "injected",
                "hop",
                "hop mean healthy → faulty",
                "attributed added",
                "error",
                "error %",
                "client mean added",
                "attributed − client added",
            ),
            tuple(rows),
            caption=f"`request --count {count} --concurrency 1` after 20 warm-up requests, one stack start per row "
            "(own state directory). The healthy run is the anchor: attributed added = the hop's mean with the fault "
            "minus its mean healthy; error = attributed added minus the injected delay. The last column compares the "
            "attribution with what the client itself saw added (mean total latency), which also holds the fault's "
            "own overshoot.",
        )
    )
    sources = {f"hop {n}": _hop(base, n).get("source", "") for n in (4, 7)}
    part.notes += [f"{hop} source: {source}" for hop, source in sources.items()]
    part.notes.append(
        "Envoy's share (hop 4) comes from NGINX's `$upstream_response_time` minus Envoy's "
        "`x-envoy-upstream-service-time`, both in whole milliseconds, so ±1 ms is the resolution. "
        "The model time (hop 7) is MLServer's request-duration metric: a mean over the run, not "
        "per request. The slow-model fault sleeps on a thread (the event loop's own timers would add up to a "
        "millisecond); Envoy's fault filter delays on Envoy's timer."
    )
    for fault, share in worst.items():
        delay, seen = worst_seen[fault]
        client = f" (the client saw {seen:+.2f} ms for that {delay} ms)" if seen is not None else ""
        part.headlines.append(
            Headline(
                f"timing accuracy, {fault} (2/5/20 ms)",
                1.0 + share,
                "injected delay",
                detail=f"worst error {100 * share:.0f} % of the delay{client}; attribution within "
                f"{gap.get(fault, 0.0):.2f} ms of what the client saw added",
            )
        )
    part.seconds = time.perf_counter() - started
    return part


# --- throughput ----------------------------------------------------------------------------------------------------


def throughput(settings: Settings) -> PartResult:
    part = PartResult("throughput", "Prober throughput and latency")
    started = time.perf_counter()
    missing = loadgen.missing_tools("wrk", "hey")
    if missing:
        part.status = Status.SKIPPED
        part.reason = f"{', '.join(missing)} not installed (Debian packages `wrk`, `hey`): `apt-get install -y wrk hey`"
        return part
    seconds, count, rounds = 2, 600, 7
    with running_stack(settings) as status:
        experiment = status["experiment"]
        target = loadgen.Target(
            url=f"{status['ingress_url']}/v2/models/{experiment['name']}/infer",
            host=status.get("host"),
            headers=tuple(experiment.get("header", {}).items()),
            body=Path(status["request_file"]),
        )
        loadgen.hey(target, 4, 200)  # warm-up
        env = _env(settings)
        rows = []
        for concurrency in (1, 8):
            runs = _interleaved(
                rounds,
                lambda: loadgen.wrk(target, concurrency, seconds),
                lambda: loadgen.prober(settings.mlops_trace(), env, concurrency, count, ["--log-wait", "2"]),
                lambda: loadgen.hey(target, concurrency, count),
            )
            wrk, ours, hey = (loadgen.median_of(results) for results in runs)
            rows += _rows([wrk, ours, hey], concurrency)
            if concurrency == 8:
                ratio = _paired(runs[1], runs[0], "rps")
                part.headlines.append(
                    Headline(
                        "prober rate on the stack, concurrency 8",
                        ratio,
                        "wrk's rate",
                        target="≥ 0.9×",
                        met=ratio is not None and ratio >= 0.9,
                        detail=f"median of {rounds} paired rounds; {ours.rps:.0f} vs {wrk.rps:.0f} req/s; "
                        f"hey {hey.rps:.0f} ({_ratio_text(_paired(runs[2], runs[0], 'rps'))})",
                    )
                )
            else:
                p50 = _paired(runs[1], runs[0], "p50_ms")
                part.headlines.append(
                    Headline(
                        "prober P50 on the stack, concurrency 1",
                        p50,
                        "wrk's P50",
                        target="within 10 %",
                        met=p50 is not None and abs(p50 - 1) <= 0.1,
                        detail=f"median of {rounds} paired rounds; {_ms(ours.p50_ms)} vs {_ms(wrk.p50_ms)}; "
                        f"hey {_ms(hey.p50_ms)} ({_ratio_text(_paired(runs[2], runs[0], 'p50_ms'))})",
                    )
                )
                part.headlines.append(
                    Headline(
                        "prober P99 on the stack, concurrency 1",
                        _paired(runs[1], runs[0], "p99_ms"),
                        "wrk's P99",
                        detail=f"{_ms(ours.p99_ms)} vs {_ms(wrk.p99_ms)}; hey {_ms(hey.p99_ms)} "
                        f"({_ratio_text(_paired(runs[2], runs[0], 'p99_ms'))})",
                    )
                )
    part.tables.append(
        Table(
            ("endpoint", "concurrency", "tool", "requests (ok)", "req/s", "vs wrk", "P50 ms", "P99 ms", "wall"),
            tuple(rows),
            caption=f"The stack's ingress (NGINX → Envoy → agent → MLServer) with the Experiment "
            f"header; {rounds} interleaved rounds per tool (wrk {seconds} s, hey and the prober {count} requests "
            f"each, the order reversed every other round); requests are summed, req/s and percentiles are the "
            f"median of the rounds. The headline ratios are medians of per-round ratios against the wrk round "
            f"next to it, because the stack's own latency drifts within seconds on this machine.",
        )
    )
    _fast(settings, part)
    part.notes.append(
        "The prober's req/s is its own (the sending loop); its wall time also covers fetching the "
        "payload, reading the access logs afterwards and rebuilding the path. Every client shares the "
        "2 cores with the stack it measures, so a client that spends more CPU per request leaves "
        "less to the server."
    )
    part.seconds = time.perf_counter() - started
    return part


def _interleaved(rounds: int, *tools: Callable[[], loadgen.Load]) -> list[list[loadgen.Load]]:
    """Each tool's results over `rounds` rounds, run in turn (reversed every other round) so a drift of the stack
    falls on all of them alike."""
    runs: list[list[loadgen.Load]] = [[] for _ in tools]
    order = list(range(len(tools)))
    for number in range(rounds):
        for index in order if number % 2 == 0 else reversed(order):
            runs[index].append(tools[index]())
    return runs


def _paired(ours: list[loadgen.Load], anchor: list[loadgen.Load], metric: str) -> float | None:
    """Median over rounds of ours/anchor for one metric (rps, p50_ms, p99_ms)."""
    ratios = []
    for mine, theirs in zip(ours, anchor, strict=True):
        value, reference = getattr(mine, metric), getattr(theirs, metric)
        if value and reference:
            ratios.append(value / reference)
    return statistics.median(ratios) if ratios else None


def _ratio_text(ratio: float | None) -> str:
    return ratio_text(ratio) + " of wrk" if ratio is not None else "no ratio"


def _ms(value: float | None) -> str:
    return f"{value:.2f} ms" if value is not None else "–"


def _rows(results: list[loadgen.Load], concurrency: int, endpoint: str = "stack ingress") -> list[tuple[str, ...]]:
    wrk = results[0]
    rows: list[tuple[str, ...]] = []
    for load in results:
        rows.append(
            (
                endpoint,
                str(concurrency),
                load.tool,
                f"{load.requests} ({load.ok})",
                f"{load.rps:.0f}",
                ratio_text(load.rps / wrk.rps if wrk.rps else None),
                f"{load.p50_ms:.2f}" if load.p50_ms is not None else "–",
                f"{load.p99_ms:.2f}" if load.p99_ms is not None else "–",
                secs(load.wall_s),
            )
        )
    return rows


def _fast(settings: Settings, part: PartResult) -> None:
    envoy = stack_binaries(settings.stack_venv).get("envoy")
    if envoy is None:
        part.notes.append(
            "No Envoy binary (reference-stack venv) for the direct_response endpoint: peak rate not measured."
        )
        return
    proc, port = loadgen.start_fast_envoy(envoy, settings.cache / "fast-envoy")
    try:
        body = settings.cache / "fast-envoy" / "request.json"
        body.write_text(
            json.dumps({"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 1], "data": [0.5]}]}),
            encoding="utf-8",
        )
        target = loadgen.Target(f"http://127.0.0.1:{port}/v2/models/fast/infer", None, (), body)
        extra = [
            "--no-stack",
            "--url",
            f"http://127.0.0.1:{port}",
            "--model",
            "fast",
            "--data",
            str(body),
            "--log-wait",
            "0",
        ]
        rows = []
        peak: dict[str, float] = {}
        for concurrency in (8, 32):
            results = [
                loadgen.wrk(target, concurrency, 5),
                loadgen.prober(settings.mlops_trace(), settings.child_env(), concurrency, 5000, extra),
                loadgen.hey(target, concurrency, 5000),
            ]
            rows += _rows(results, concurrency, "Envoy direct_response")
            for load in results:
                peak[load.tool] = max(peak.get(load.tool, 0.0), load.rps)
        part.tables.append(
            Table(
                ("endpoint", "concurrency", "tool", "requests (ok)", "req/s", "vs wrk", "P50 ms", "P99 ms", "wall"),
                tuple(rows),
                caption="An Envoy (from the stack's venv, 1 worker) answering 200 with a fixed V2 "
                "response: the ceiling of each client on this machine.",
            )
        )
        ours, wrk = peak.get("mlops-trace request", 0.0), peak.get("wrk", 0.0)
        part.headlines.append(
            Headline(
                "prober peak rate, Envoy direct_response",
                ours / wrk if wrk else None,
                "wrk's peak rate",
                detail=f"{ours:.0f} vs {wrk:.0f} req/s; hey {peak.get('hey', 0.0):.0f}",
            )
        )
    finally:
        loadgen.stop(proc)
