# mypy: ignore-errors
"""Keep KServe's model server on 127.0.0.1: kserve 0.21.0 hard-wires uvicorn's host to 0.0.0.0
(`kserve/protocol/rest/server.py`) and its gRPC listen address to `[::]:<grpc_port>` (`GRPCServer.start` in
`kserve/protocol/grpc/server.py`, no argument for it), and the stack never listens beyond the loopback address."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

_Config = uvicorn.Config
LOOPBACK = "127.0.0.1"


class LoopbackConfig(_Config):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = LOOPBACK
        super().__init__(*args, **kwargs)


class _LoopbackAio:
    """Stands in for the `grpc.aio` module inside kserve 0.21.0's `kserve/protocol/grpc/server.py` only: its
    `server(...)` is grpc.aio's, with `add_insecure_port("[::]:<port>")` turned into `127.0.0.1:<port>`."""

    def __init__(self, aio: Any) -> None:
        self._aio = aio

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aio, name)

    def server(self, *args: Any, **kwargs: Any) -> Any:
        server = self._aio.server(*args, **kwargs)
        add = server.add_insecure_port

        def add_loopback(address: str) -> int:
            port = address.rsplit(":", 1)[-1]
            # kserve logs its own `[::]:<port>` right after this call; this line says where it really listens.
            logging.getLogger("kserve").info("loopback: gRPC bound to %s:%s (not %s)", LOOPBACK, port, address)
            return int(add(f"{LOOPBACK}:{port}"))

        server.add_insecure_port = add_loopback
        return server


def install() -> None:
    uvicorn.Config = LoopbackConfig
    from kserve.protocol.grpc import server as grpc_server

    grpc_server.aio = _LoopbackAio(grpc_server.aio)
