"""Many clients at once against `mlops-trace bundle serve`: latency percentiles and the kernel's listen overflows.

Not a test (pytest does not collect it): a measurement to run by hand, before and after a change to the server.

    python3 -m tests.serve.load_probe fixtures/scenarios/healthy-ab --clients 200 --requests 5

It starts the server as a subprocess on a free port (stopped by its PID at the end, whatever happens), lets every
client connect at the same moment, and has each send `--requests` GETs, each on a new connection (like a loop of
curl), so the accept backlog is what is measured. It prints p50/p99/max latency, failures, and the `ListenOverflows`
and `ListenDrops` delta of /proc/net/netstat (TcpExt); those counters are machine-wide, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.serve_process import bundle_server

PATHS = (
    "/api/v1/pods",
    "/api/v1/namespaces/fraud-serving/pods",
    "/apis/mlops.seldon.io/v1alpha1/namespaces/fraud-serving/models",
    "/api/v1/namespaces/fraud-serving/pods/seldon-scheduler-0/log?container=scheduler&tailLines=50",
    "/api",
)


def tcp_ext() -> dict[str, int]:
    """The TcpExt counters of /proc/net/netstat (a header line of names, then a line of values)."""
    lines = Path("/proc/net/netstat").read_text(encoding="ascii").splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
    return {}


async def one_get(port: int, path: str, timeout: float) -> float | None:
    """Seconds from connect to the end of the answer, or None when it failed or was not a 200."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            answer = await asyncio.wait_for(reader.read(), timeout)
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError):
        return None
    return time.perf_counter() - started if answer.startswith(b"HTTP/1.1 200 ") else None


async def client(port: int, requests: int, start: asyncio.Event, index: int, timeout: float) -> list[float | None]:
    await start.wait()
    return [await one_get(port, PATHS[(index + i) % len(PATHS)], timeout) for i in range(requests)]


async def load(port: int, clients: int, requests: int, timeout: float) -> tuple[list[float | None], float]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(client(port, requests, start, i, timeout)) for i in range(clients)]
    await asyncio.sleep(0.2)  # every client is parked on the event: they all connect in the same instant
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    return [latency for per_client in results for latency in per_client], time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5, help="GETs per client, each on a new connection")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one GET may take before it counts as failed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="load-probe-") as tmp:
        with bundle_server(args.bundle, Path(tmp), duration=300) as served:
            before = tcp_ext()
            latencies, wall = asyncio.run(load(served.port, args.clients, args.requests, args.timeout))
            after = tcp_ext()
        server_stderr = served.stderr.read_text(encoding="utf-8", errors="replace")
    ok = sorted(latency for latency in latencies if latency is not None)
    if not ok:
        print(f"all {len(latencies)} GETs failed")
        return 1
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))]
    print(
        f"{args.clients} clients x {args.requests} GETs: {len(ok)} ok, {len(latencies) - len(ok)} failed, "
        f"{wall:.2f} s wall; p50 {statistics.median(ok) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {ok[-1] * 1000:.1f} ms; ListenOverflows +{after.get('ListenOverflows', 0) - before.get('ListenOverflows', 0)}, "
        f"ListenDrops +{after.get('ListenDrops', 0) - before.get('ListenDrops', 0)}; server stderr: "
        f"{len(server_stderr.splitlines())} lines, {server_stderr.count('Traceback')} tracebacks"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
