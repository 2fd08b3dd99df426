"""Several "clusters" for the fleet tests: one `bundle serve` process per bundle (127.0.0.1, bounded in time, stopped by
PID), and one kubeconfig naming each as a context, plus contexts whose API server is a port nothing listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.serve_process import bundle_server


@dataclass(frozen=True)
class Fleet:
    kubeconfig: Path
    servers: Mapping[str, str]  # context -> API server URL


def dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fleet_kubeconfig(servers: Mapping[str, str], namespaces: Mapping[str, str], path: Path) -> Path:
    """One kubeconfig: a cluster, a user and a context per entry of `servers` (namespace from `namespaces`)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in servers.items()],
        "users": [{"name": "reader", "user": {}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": "reader",
                                       **({"namespace": namespaces[name]} if name in namespaces else {})}}
            for name in servers
        ],
        "current-context": next(iter(servers)),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def served_fleet(
    bundles: Mapping[str, Path], dead: tuple[str, ...], namespaces: Mapping[str, str], workdir: Path,
    duration: float = 240,
) -> Iterator[Fleet]:
    """Serve each bundle under its context name; `dead` contexts point at closed ports."""
    with ExitStack() as stack:
        servers: dict[str, str] = {}
        for name, bundle in bundles.items():
            place = workdir / f"serve-{name}"
            place.mkdir()
            served = stack.enter_context(bundle_server(bundle, place, duration=duration))
            servers[name] = f"http://127.0.0.1:{served.port}"
        for name in dead:
            servers[name] = f"http://127.0.0.1:{dead_port()}"
        yield Fleet(fleet_kubeconfig(servers, namespaces, workdir / "fleet-kubeconfig"), servers)
