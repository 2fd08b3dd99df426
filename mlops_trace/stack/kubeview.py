"""The stack's Kubernetes API: `bundle serve` over the stack's bundle directory, plus a thread that keeps the Envoy
admin output of the bundle (`envoy/<ns>/<pod>/config_dump.json`, `stats.txt`) fresh from Envoy's real admin port.

Run as `python -m mlops_trace.stack.kubeview CONFIG.json`. Container logs need no copying: the stack's processes
write straight into `logs/<ns>/<pod>/<container>.log`, which `bundle serve` reads at request time.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_trace.stack.daemon import load_config

REFRESH_SECONDS = 2.0


def _fetch(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bytes(response.read()) if response.status == 200 else None
    except (OSError, urllib.error.URLError):
        return None


def _replace(path: Path, body: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def refresh_admin(admin_url: str, envoy_dir: Path) -> bool:
    """Write config_dump.json and stats.txt from Envoy's admin; False when Envoy did not answer."""
    dump = _fetch(f"{admin_url}/config_dump")
    if dump is None:
        return False
    envoy_dir.mkdir(parents=True, exist_ok=True)
    _replace(envoy_dir / "config_dump.json", dump)
    stats = _fetch(f"{admin_url}/stats")
    if stats is not None:
        _replace(envoy_dir / "stats.txt", stats)
    return True


def _refresh_loop(admin_url: str, envoy_dir: Path, stop: threading.Event) -> None:
    while not stop.wait(REFRESH_SECONDS):
        refresh_admin(admin_url, envoy_dir)


def main() -> None:
    from mlops_trace.serve.server import serve_bundle

    config: dict[str, Any] = load_config()
    stop = threading.Event()
    thread = threading.Thread(
        target=_refresh_loop, args=(str(config["admin_url"]), Path(config["envoy_dir"]), stop), daemon=True
    )
    thread.start()
    try:
        serve_bundle(Path(config["bundle"]), port=int(config["port"]), kubeconfig_out=Path(config["kubeconfig"]),
                     request_log=Path(config["request_log"]))
    finally:
        stop.set()


if __name__ == "__main__":
    main()
