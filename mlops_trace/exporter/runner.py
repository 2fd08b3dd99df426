"""The exporter's process: serve `/metrics`, run the catalog on every cluster each `interval`, stop on SIGTERM.

Each cluster's run is `doctor.run_doctor` on a live target (the one pipeline `doctor` uses), in a worker thread
bounded by `run_timeout`: the live read's own deadline ends a slow collection, and a run still going past the
timeout counts as failed (its cluster is skipped until that thread ends, so runs never pile up). The clusters of a
round run `--parallel` at a time through `fleet.bounded_map`, as `doctor --context A --context B` reads them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import TypeVar

from mlops_trace.doctor import DoctorRun, run_doctor
from mlops_trace.errors import MlopsTraceError
from mlops_trace.exporter.probe import ProbeOutcome, ProbeSettings, run_probe
from mlops_trace.exporter.settings import ClusterTarget, ExporterSettings
from mlops_trace.exporter.state import ExporterState, RunOutcome
from mlops_trace.findings import Severity

# A run past its timeout is given this much longer to end on its own before it is called timed out: the live read
# ends at the timeout, and the checks that follow it take a moment more.
TIMEOUT_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2

Log = Callable[[str], None]
T = TypeVar("T")


def run_cluster(settings: ExporterSettings, target: ClusterTarget) -> RunOutcome:
    """One run of the catalog on one cluster (blocking); every failure becomes a failed outcome."""
    started, clock = time.time(), time.monotonic()
    deadline = settings.run_timeout if target.live.deadline is None else min(target.live.deadline, settings.run_timeout)
    run = DoctorRun(
        live=replace(target.live, deadline=deadline),
        limits=settings.limits,
        service_level=settings.service_level,
        only=settings.only,
        skip=settings.skip,
    )
    try:
        report = run_doctor(run).report
    except MlopsTraceError as exc:
        return RunOutcome(target.name, started, time.monotonic() - clock, None, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a long-running service outlives one bad run, which counts as failed
        return RunOutcome(target.name, started, time.monotonic() - clock, None, error=f"{type(exc).__name__}: {exc}")
    return RunOutcome(target.name, started, time.monotonic() - clock, report.findings, report.checks)


class Scheduler:
    """Rounds of runs over the clusters, recording each outcome into `state`."""

    def __init__(
        self,
        settings: ExporterSettings,
        state: ExporterState,
        log: Log,
        run: Callable[[ExporterSettings, ClusterTarget], RunOutcome] = run_cluster,
        grace: float = TIMEOUT_GRACE_SECONDS,
    ) -> None:
        self.settings, self.state, self.log, self._run, self._grace = settings, state, log, run, grace
        self._busy: dict[str, tuple[threading.Thread, float]] = {}  # clusters whose timed-out run goes on
        self._probing: threading.Thread | None = None  # the last probe burst

    def run_round(self, stop: threading.Event) -> list[RunOutcome]:
        """One run of each cluster, `parallel` at a time (fleet's bounded map); the outcomes of the runs that ended
        (fewer when `stop` was set meanwhile)."""
        from mlops_trace.fleet import bounded_map

        def heard(outcome: RunOutcome | None) -> None:
            if outcome is not None:
                self.state.record(outcome)
                self.log(_describe(outcome))

        ended = bounded_map(
            self.settings.clusters, lambda target: self._run_bounded(target, stop), self.settings.parallel, heard
        )
        if self.settings.probe is not None and not stop.is_set():
            self._probe(self.settings.probe, stop)
        return [outcome for outcome in ended if outcome is not None]

    def _probe(self, probe: ProbeSettings, stop: threading.Event) -> None:
        """One probe burst, bounded like a run (a burst still going past the timeout is left to end on its own)."""
        if self._probing is not None and self._probing.is_alive():
            self.log(f"probe {probe.experiment}: the last burst has not ended; skipped")
            return
        started, clock = time.time(), time.monotonic()
        bounded = self._within("exporter-probe", lambda: run_probe(probe), stop)
        if bounded is None:  # stopping
            return
        ended, self._probing = bounded
        outcome = ended[0] if ended else ProbeOutcome(
            probe.experiment, started, time.monotonic() - clock,
            error=f"the burst took longer than {self.settings.run_timeout:g} s (--timeout)",
        )
        self.state.record_probe(outcome)
        self.log(_describe_probe(outcome))

    def _run_bounded(self, target: ClusterTarget, stop: threading.Event) -> RunOutcome | None:
        if stop.is_set():
            return None
        still = self._busy.get(target.name)
        if still is not None:
            thread, since = still
            if thread.is_alive():
                return RunOutcome(target.name, time.time(), 0.0, None,
                                  error=f"the run started {time.time() - since:.0f} s ago has not ended")
            del self._busy[target.name]
        started, clock = time.time(), time.monotonic()
        bounded = self._within(f"exporter-{target.name}", lambda: self._run(self.settings, target), stop)
        if bounded is None:  # stopping
            return None
        ended, thread = bounded
        if ended:
            return ended[0]
        if not thread.is_alive():  # `run` raised what it should have turned into an outcome
            return RunOutcome(target.name, started, time.monotonic() - clock, None, error="the run ended without a result")
        self._busy[target.name] = (thread, started)
        return RunOutcome(target.name, started, time.monotonic() - clock, None,
                          error=f"the run took longer than {self.settings.run_timeout:g} s (--timeout)")

    def _within(self, name: str, work: Callable[[], T], stop: threading.Event) -> tuple[list[T], threading.Thread] | None:
        """`work` in a daemon thread until it ends or the timeout (and grace) passes: ([its result] or [], the
        thread); None when `stop` is set meanwhile."""
        ended: list[T] = []
        thread = threading.Thread(name=name, daemon=True, target=lambda: ended.append(work()))
        thread.start()
        limit = time.monotonic() + self.settings.run_timeout + self._grace
        while thread.is_alive() and time.monotonic() < limit:
            if stop.is_set():
                return None
            thread.join(_POLL_SECONDS)
        return ended, thread


def _describe_probe(outcome: ProbeOutcome) -> str:
    if not outcome.ran:
        return f"probe {outcome.experiment}: failed after {outcome.duration:.1f} s: {outcome.error}"
    answered = ", ".join(f"{model} {count}" for model, count in sorted(outcome.answered.items()))
    return (f"probe {outcome.experiment}: {outcome.succeeded}/{outcome.count} answered in {outcome.duration:.1f} s"
            + (f" ({answered})" if answered else ""))


def _describe(outcome: RunOutcome) -> str:
    if outcome.findings is None:
        return f"cluster {outcome.cluster}: run failed after {outcome.duration:.1f} s: {outcome.error}"
    worst = [s.value for s in Severity if any(f.severity is s for f in outcome.findings)]
    detail = f" (worst {worst[0]})" if worst else ""
    return f"cluster {outcome.cluster}: {len(outcome.findings)} finding(s){detail} in {outcome.duration:.1f} s"


def serve(settings: ExporterSettings, log: Log, stop: threading.Event | None = None) -> bool:
    """Serve `/metrics` and run rounds until `stop` is set (SIGTERM and SIGINT set it) or, with `once`, after one
    round. Whether every run of the last round succeeded; UsageError when the address cannot be bound."""
    from prometheus_client import start_http_server

    from mlops_trace.errors import UsageError
    from mlops_trace.exporter.metrics import registry_for

    stop = stop or threading.Event()
    state = ExporterState()
    try:
        server, thread = start_http_server(settings.port, settings.address, registry_for(state))
    except OSError as exc:
        raise UsageError(f"--address {settings.address} --port {settings.port}: {exc.strerror or exc}") from None
    restore = _stop_on_signals(stop)
    try:
        host = f"[{settings.address}]" if ":" in settings.address else settings.address
        log(f"serving http://{host}:{server.server_port}/metrics; {len(settings.clusters)} cluster(s) every "
            f"{settings.interval:g} s")
        scheduler = Scheduler(settings, state, log)
        succeeded = True
        while not stop.is_set():
            round_start = time.monotonic()
            succeeded = all(outcome.succeeded for outcome in scheduler.run_round(stop))
            probe = state.probe()
            succeeded = succeeded and (settings.probe is None or (probe is not None and probe.ran))
            if settings.once:
                break
            stop.wait(max(0.0, round_start + settings.interval - time.monotonic()))
    finally:
        restore()
        server.shutdown()
        server.server_close()
        thread.join(5)
    log("stopped")
    return succeeded


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM (Kubernetes stopping the pod) and SIGINT set `stop`; returns what puts the old handlers back. Only the
    main thread may install handlers: elsewhere (a test's thread) `stop` is the only way to end."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore
