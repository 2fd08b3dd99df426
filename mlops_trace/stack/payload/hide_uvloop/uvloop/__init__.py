# mypy: ignore-errors
"""Hides uvloop from the stack's MLServer under the worker-crash fault (this folder goes first on its PYTHONPATH).

MLServer 1.7.1's inference workers cannot start under uvloop 0.22 and newer (`RuntimeError: There is no current event
loop in thread 'MainThread'` in `Worker._ignore_signals`, then `stopped unexpectedly with exit code 256` again and
again). MLServer and uvicorn both fall back to asyncio's own loop when `import uvloop` fails, so with this module the
one worker the fault needs starts and serves, and the fault's SIGKILL is the only thing that stops it.
"""

raise ImportError("uvloop is hidden from this MLServer by the stack (worker-crash fault): asyncio's loop is used")
