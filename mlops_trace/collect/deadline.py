"""The two time bounds of a live run: `--request-timeout` for each whole call, `--timeout` for the whole run.

Socket timeouts only bound one read, so a server that sends a byte now and then would keep a call open for ever. Each
call therefore gets an end time (`Clock.call`: the request timeout from now, or the run's end if that comes first)
and a `Watchdog` that shuts the call's socket when that time passes; the blocked read then returns at once and the
call ends in the error of the bound that cut it. `RunDeadlinePassed` means the run's `--timeout` passed: what was
not read by then is recorded as not collected and the run goes on with what it has.

`stop_live_runs` ends every live run of the process at once, as if each one's `--timeout` had passed: a run over
several clusters (`mlops_trace.fleet`) reads them in worker threads, which a Ctrl-C in the main thread does not reach.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mlops_trace.errors import ClusterError, UsageError
from mlops_trace.limits import DEFAULT_LIVE_DEADLINE

# Shortest time a call is given, so that a call started just before its end still gets a socket timeout above 0.
_MIN_CALL_SECONDS = 0.05
# Socket timeouts are only a backstop: they are set this much after the watchdog, which acts first.
SOCKET_GRACE_SECONDS = 1.0

_stopped = threading.Event()  # set once by `stop_live_runs`; the process is ending
_watching_lock = threading.Lock()
_watching: set[Watchdog] = set()  # the calls under way, to cut when the runs stop


def stop_live_runs() -> None:
    """End every live run of this process now: no call starts any more and the calls under way are cut."""
    _stopped.set()
    with _watching_lock:
        under_way = list(_watching)
    for watchdog in under_way:
        watchdog.fire()


class RunDeadlinePassed(ClusterError):
    """The live run's `--timeout` passed before this call could finish (or start)."""

    def __init__(self, run_seconds: float) -> None:
        super().__init__(f"the live run's --timeout of {run_seconds:g} s passed")
        self.run_seconds = run_seconds

    @property
    def not_collected(self) -> str:
        return f"not collected: {self}"


class CallTimedOut(ClusterError):
    """One call did not complete within `--request-timeout` (connect, headers and body together)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail  # "no complete answer within 10 s (--request-timeout)"


@dataclass(frozen=True)
class CallBound:
    """When one call must be over, and which bound set that time."""

    ends_at: float  # time.monotonic()
    by_run: bool  # the run's end comes before the request timeout
    request_timeout: float
    run_seconds: float

    def remaining(self) -> float:
        return max(_MIN_CALL_SECONDS, self.ends_at - time.monotonic())

    def error(self, what: str) -> ClusterError:
        """The error of the bound that cut the call; `what` names the server or URL for a request timeout."""
        if self.by_run:
            return RunDeadlinePassed(self.run_seconds)
        detail = f"no complete answer within {self.request_timeout:g} s (--request-timeout)"
        return CallTimedOut(f"{what}: {detail}", detail)


@dataclass(frozen=True)
class Clock:
    """The time bounds of one live run, started when the run starts."""

    request_timeout: float
    run_seconds: float
    run_ends_at: float  # time.monotonic()

    @classmethod
    def start(cls, request_timeout: float, run_seconds: float | None) -> Clock:
        if request_timeout <= 0:
            raise UsageError(f"--request-timeout must be above 0 seconds (got {request_timeout:g})")
        seconds = DEFAULT_LIVE_DEADLINE if run_seconds is None else run_seconds
        if seconds <= 0:
            raise UsageError(f"--timeout must be above 0 seconds (got {seconds:g})")
        return cls(request_timeout, seconds, time.monotonic() + seconds)

    def passed(self) -> bool:
        return _stopped.is_set() or time.monotonic() >= self.run_ends_at

    def check(self) -> None:
        """Raise `RunDeadlinePassed` once the run's end has passed: nothing new is started after it."""
        if self.passed():
            raise RunDeadlinePassed(self.run_seconds)

    def call(self) -> CallBound:
        """The bound of a call that starts now."""
        self.check()
        by_request = time.monotonic() + self.request_timeout
        if self.run_ends_at < by_request:
            return CallBound(self.run_ends_at, True, self.request_timeout, self.run_seconds)
        return CallBound(by_request, False, self.request_timeout, self.run_seconds)


class Watchdog:
    """Runs `on_expiry` once, from a timer thread, when the bound's end passes before the `with` block ends."""

    def __init__(self, bound: CallBound, on_expiry: Callable[[], None]) -> None:
        self.bound = bound
        self._on_expiry = on_expiry
        self._fired = threading.Event()
        self._timer = threading.Timer(bound.remaining(), self._fire)
        self._timer.daemon = True
        self._timer.name = "mlops-trace-watchdog"

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def fire(self) -> None:
        """Run `on_expiry` now (once), whatever time it is."""
        with _watching_lock:
            if self._fired.is_set():
                return
            self._fired.set()
        self._on_expiry()

    _fire = fire  # the timer's callback

    def __enter__(self) -> Watchdog:
        with _watching_lock:
            _watching.add(self)
        self._timer.start()
        if _stopped.is_set():
            self.fire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._timer.cancel()
        with _watching_lock:
            _watching.discard(self)


class SocketWatch:
    """The sockets of one call, shut down together when its bound passes (`expire`, the Watchdog's callback).

    A connection is watched through its `sock` attribute, so a socket it opens or reconnects later is found too. A
    socket being wrapped in TLS is detached from its Python object during the handshake, so a new socket is kept as
    a duplicate of its descriptor (shutting the duplicate shuts the connection). `close` ends the watch before the
    connection goes back to a pool another call may take it from: an expiry after that shuts nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._duplicates: list[socket.socket] = []
        self._closed = False
        self.expired = False

    def attach(self, connection: Any = None, new_socket: Any = None) -> None:
        duplicate = _duplicate(new_socket)
        with self._lock:
            if self._closed:
                if duplicate is not None:
                    duplicate.close()
                return
            if connection is not None:
                self._connections.append(connection)
            if duplicate is not None:
                self._duplicates.append(duplicate)
            if self.expired:
                shut(duplicate if duplicate is not None else getattr(connection, "sock", None))

    def expire(self) -> None:
        # Shut while holding the lock: `close` (and so the connection's return to its pool) waits for this.
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for connection in self._connections:
                shut(getattr(connection, "sock", None))
            for duplicate in self._duplicates:
                shut(duplicate)

    def close(self) -> bool:
        """Stop watching; returns whether the bound passed first (the connection is shut then: do not reuse it)."""
        with self._lock:
            self._closed = True
            duplicates, self._duplicates = self._duplicates, []
            expired = self.expired
        for duplicate in duplicates:
            duplicate.close()
        return expired


def _duplicate(sock: Any) -> socket.socket | None:
    if not isinstance(sock, socket.socket):
        return None
    try:
        return socket.socket(fileno=os.dup(sock.fileno()))
    except (OSError, ValueError):
        return None


def shut(sock: Any) -> None:
    """Shut a socket down from another thread: unlike close(), this wakes a read blocked on it."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass
