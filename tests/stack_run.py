"""Start the reference stack for a test and always take it down (shared by the stack-marked tests): the stack's venv
is shared through MLOPS_TRACE_STACK_VENV (built on first use), and nothing may still listen afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_trace.stack.faults import parse_faults
from mlops_trace.stack.paths import VENV_ENV, default_state_dir
from mlops_trace.stack.runner import down, up
from mlops_trace.stack.venv import Say


@contextmanager
def running_stack(tmp: Path, *faults: str) -> Iterator[dict[str, Any]]:
    """The stack in state directory `tmp` with `faults`; yields its status."""
    previous = os.environ.get(VENV_ENV)
    os.environ.setdefault(VENV_ENV, str(default_state_dir() / "venv"))
    try:
        yield up(tmp, parse_faults(faults), Say(quiet=True))
    finally:
        result = down(tmp)
        if previous is None:
            os.environ.pop(VENV_ENV, None)
        else:
            os.environ[VENV_ENV] = previous
    assert not result.still_listening
