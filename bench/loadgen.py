"""Drive `wrk`, `hey` and `mlops-trace request --count` at one endpoint and read the same three numbers from each:
requests per second, P50 and P99 latency (ms)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import timing


@dataclass(frozen=True)
class Target:
    url: str  # full URL of the inference path
    host: str | None
    headers: tuple[tuple[str, str], ...]
    body: Path


@dataclass(frozen=True)
class Load:
    tool: str
    requests: int
    ok: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    wall_s: float
    note: str = ""


def median_of(rounds: list[Load]) -> Load:
    """One Load from several rounds of the same tool: summed requests, the median of each rate and percentile (the
    stack's latency drifts over a run, so rounds of the tools are interleaved and their medians compared)."""
    first = rounds[0]
    if len(rounds) == 1:
        return first

    def middle(values: list[float | None]) -> float | None:
        present = sorted(value for value in values if value is not None)
        return statistics.median(present) if present else None

    return Load(
        first.tool,
        sum(load.requests for load in rounds),
        sum(load.ok for load in rounds),
        middle([load.rps for load in rounds]) or 0.0,
        middle([load.p50_ms for load in rounds]),
        middle([load.p99_ms for load in rounds]),
        sum(load.wall_s for load in rounds),
        "; ".join(sorted({load.note for load in rounds if load.note})),
    )


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def _lua_string(text: str) -> str:
    """A Lua long-bracket string. Used as a table key it needs spaces around it: `t[[[x]]]` would be a call."""
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def wrk(target: Target, connections: int, seconds: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="mlops-bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
        if target.host:
            lines.append(f'wrk.headers["Host"] = {_lua_string(target.host)}')
        lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in target.headers]
        lines.append(f"wrk.body = {_lua_string(target.body.read_text(encoding='utf-8'))}")
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        run = timing.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), target.url],
            capture=True,
        )
    text = run.stdout
    total = re.search(r"(\d+) requests in", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    count = int(total.group(1)) if total else 0
    bad = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(g) for g in errors.groups()) if errors else 0)
    return Load(
        "wrk",
        count,
        count - bad,
        _number(r"Requests/sec:\s+([\d.]+)", text) or 0.0,
        _wrk_latency(text, "50%"),
        _wrk_latency(text, "99%"),
        run.wall_s,
    )


def _wrk_latency(text: str, quantile: str) -> float | None:
    found = re.search(rf"^\s*{re.escape(quantile)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if found is None:
        return None
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def hey(target: Target, connections: int, count: int) -> Load:
    argv = [
        "hey",
        "-n",
        str(count),
        "-c",
        str(connections),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(target.body),
    ]
    if target.host:
        argv += ["-host", target.host]
    for name, value in target.headers:
        argv += ["-H", f"{name}: {value}"]
    run = timing.run([*argv, target.url], capture=True)
    text = run.stdout
    ok = sum(int(n) for n in re.findall(r"\[2\d\d\]\s+(\d+) responses", text))
    p50 = _number(r"50% in ([\d.]+) secs", text)
    p99 = _number(r"99% in ([\d.]+) secs", text)
    return Load(
        "hey",
        count,
        ok,
        _number(r"Requests/sec:\s+([\d.]+)", text) or 0.0,
        p50 * 1000 if p50 is not None else None,
        p99 * 1000 if p99 is not None else None,
        run.wall_s,
    )


def prober(cli: list[str], env: dict[str, str], connections: int, count: int, extra: list[str]) -> Load:
    """`mlops-trace request --count`: its own rate (sending loop only) and percentiles; `wall_s` is the whole
    command (payload, log reading, path reconstruction included)."""
    run = timing.run(
        [*cli, "request", "--count", str(count), "--concurrency", str(connections), "-o", "json", *extra],
        env=env,
        capture=True,
        timeout_s=600,
    )
    try:
        document = json.loads(run.stdout)
    except ValueError:
        return Load(
            "mlops-trace request",
            count,
            0,
            0.0,
            None,
            None,
            run.wall_s,
            note=f"exit {run.returncode}, no JSON: {run.stdout[-200:]!r}",
        )
    latency = document.get("latency_ms") or {}
    return Load(
        "mlops-trace request",
        int(document.get("count", 0)),
        int(document.get("succeeded", 0)),
        float(document.get("rate_rps") or 0.0),
        latency.get("p50"),
        latency.get("p99"),
        run.wall_s,
        note=f"exit {run.returncode}",
    )


def _number(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


FAST_BODY = '{"model_name":"fast","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[0]}]}'


def start_fast_envoy(envoy: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """An Envoy on 127.0.0.1 whose only route answers 200 with a fixed V2 response (direct_response): the fastest
    endpoint this machine can offer, to find the prober's own ceiling."""
    port = free_port()
    config = {
        "static_resources": {
            "listeners": [
                {
                    "name": "fast",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                                        "HttpConnectionManager",
                                        "stat_prefix": "fast",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "fast",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "direct_response": {
                                                                "status": 200,
                                                                "body": {"inline_string": FAST_BODY},
                                                            },
                                                            "response_headers_to_add": [
                                                                {
                                                                    "header": {
                                                                        "key": "content-type",
                                                                        "value": "application/json",
                                                                    }
                                                                }
                                                            ],
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                # Read the whole body before answering: a direct_response sent
                                                # while the request body is still arriving closes the connection,
                                                # which would make this a benchmark of TCP set-up.
                                                "name": "envoy.filters.http.buffer",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http."
                                                    "buffer.v3.Buffer",
                                                    "max_request_bytes": 1048576,
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    bootstrap = workdir / "fast-envoy.json"
    bootstrap.write_text(json.dumps(config), encoding="utf-8")
    log = (workdir / "fast-envoy.log").open("wb")
    proc = subprocess.Popen(
        [str(envoy), "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    _wait_for_port(port, proc)
    return proc, port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the fast Envoy exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the fast Envoy did not listen on 127.0.0.1:{port} within {timeout_s:g}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
