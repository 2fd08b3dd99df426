# mypy: ignore-errors
"""Keep KServe's model server on 127.0.0.1: kserve 0.21.0 hard-wires uvicorn's host to 0.0.0.0
(`kserve/protocol/rest/server.py`), and the stack never listens beyond the loopback address."""

from __future__ import annotations

from typing import Any

import uvicorn

_Config = uvicorn.Config


class LoopbackConfig(_Config):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


def install() -> None:
    uvicorn.Config = LoopbackConfig
