"""Several clusters in one run: `doctor` and `collect` over many kubeconfig contexts (`--context A --context B`,
`--all-contexts`), a bounded number at a time (`--parallel N`).

Each context runs the one-cluster pipeline (`doctor.run_doctor`, `collect.bundle_writer.collect_bundle`) in a worker
thread: a live read is I/O-bound, and every context gets its own `ApiClient` (`collect.client.connect` builds one per
call, from a `Configuration` of its own, never the client's global default). A context that cannot be read (no such
context, a dead API server, a refused credential, even a bug) is that context's row with the reason; the others go
on. Memory stays bounded whatever the number of contexts: a worker's Snapshot and temporary bundle are gone when its
checks have run, only its `Report` is kept, and at most `parallel` Snapshots exist at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from mlops_trace.collect.bundle_writer import TARBALL_SUFFIXES, CollectResult, collect_bundle
from mlops_trace.collect.target import LiveTarget, with_default_namespace
from mlops_trace.doctor import DoctorRun, run_doctor
from mlops_trace.errors import InputError, MlopsTraceError, UsageError
from mlops_trace.findings import InputProblem
from mlops_trace.fleet_report import ClusterOutcome, FleetReport

DEFAULT_PARALLEL = 4
MAX_PARALLEL = 64

T = TypeVar("T")
R = TypeVar("R")


def fleet_contexts(kubeconfig: str | None, named: Sequence[str], all_contexts: bool) -> tuple[str, ...]:
    """The contexts to read, each once, in the order given (`--all-contexts`: the kubeconfig's order)."""
    if all_contexts and named:
        raise UsageError("--all-contexts reads every context of the kubeconfig; it does not go with --context")
    if all_contexts:
        from mlops_trace.collect.client import kubeconfig_contexts

        return kubeconfig_contexts(kubeconfig)
    empty = [name for name in named if not name.strip()]
    if empty:
        raise UsageError("--context needs a context name (got an empty one)")
    return tuple(dict.fromkeys(named))


def check_parallel(parallel: int) -> int:
    if not 1 <= parallel <= MAX_PARALLEL:
        raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL} (got {parallel})")
    return parallel


def check_live_only(target: LiveTarget, prometheus: bool) -> None:
    """Refuse what names one cluster's endpoint (a Prometheus, an Envoy admin) in a run over several contexts."""
    if prometheus:
        raise UsageError("--prometheus names one Prometheus; it does not go with several contexts")
    if target.envoy_admin:
        raise UsageError("--envoy-admin names one cluster's Envoy; it does not go with several contexts")


def bounded_map(
    items: Sequence[T], work: Callable[[T], R], parallel: int, on_done: Callable[[R], None] | None = None
) -> list[R]:
    """`work` over `items`, at most `parallel` at a time, results in the order of `items`; `on_done` hears each result
    in this thread as it arrives. `work` must not raise (it turns its own failure into its result). On an interrupt
    (Ctrl-C, SIGTERM: raised in this thread) nothing new starts and every live read under way is cut
    (`collect.deadline.stop_live_runs`), so the workers end at once and clean up after themselves."""
    from mlops_trace.collect.deadline import stop_live_runs

    results: dict[int, R] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items))), thread_name_prefix="mlops-trace-fleet")
    try:
        pending: dict[Future[R], int] = {pool.submit(work, item): index for index, item in enumerate(items)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = future.result()
                if on_done is not None:
                    on_done(results[index])
    except (KeyboardInterrupt, SystemExit):
        stop_live_runs()  # for good: the process is ending (a long-lived caller's own errors do not get here)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[index] for index in range(len(items))]


# --- doctor ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterDone:
    """One context's outcome, with what its run wants the user to hear (Prometheus notes, unusable input files)."""

    outcome: ClusterOutcome
    notes: tuple[str, ...] = ()
    problems: tuple[InputProblem, ...] = ()


@dataclass(frozen=True)
class FleetRun:
    """`doctor` over several contexts: the one-cluster run (its live target's context is replaced by each of
    `contexts`; its scope, -n/-A or each context's own namespace, applies to every cluster)."""

    doctor: DoctorRun
    contexts: tuple[str, ...]
    parallel: int = DEFAULT_PARALLEL


def run_fleet(run: FleetRun, on_cluster: Callable[[ClusterDone], None] | None = None) -> FleetReport:
    """Every context examined (or not, with the reason); `on_cluster` hears each as it ends."""
    from mlops_trace.analysis.catalog import select

    base = run.doctor
    if base.bundle is not None or base.live is None:
        raise UsageError("--bundle reads one offline bundle; several contexts are live clusters")
    if not run.contexts:
        raise UsageError("no context to read")
    check_live_only(base.live, base.service_level.prometheus is not None)
    check_parallel(run.parallel)
    select(base.only, base.skip)  # a bad --only is one error for the run, not one per cluster
    done = bounded_map(run.contexts, lambda context: _doctor_one(base, context), run.parallel, on_cluster)
    return FleetReport(tuple(item.outcome for item in done))


def _doctor_one(base: DoctorRun, context: str) -> ClusterDone:
    started = time.monotonic()
    assert base.live is not None  # run_fleet checked
    try:
        live, chosen = with_default_namespace(replace(base.live, context=context))
        result = run_doctor(replace(base, live=live))
    except MlopsTraceError as exc:
        return ClusterDone(ClusterOutcome.could_not_run(context, str(exc), time.monotonic() - started))
    except Exception as exc:  # noqa: BLE001 - one cluster's failure, whatever it is, must not stop the others
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return ClusterDone(ClusterOutcome.could_not_run(context, reason, time.monotonic() - started))
    outcome = ClusterOutcome.examined(context, result.report, chosen, time.monotonic() - started)
    return ClusterDone(outcome, result.notes, result.problems)


# --- collect --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    """One context's bundle: where it went and what it holds, or why there is none."""

    context: str
    destination: Path
    result: CollectResult | None = None
    error: str = ""

    def to_dict(self) -> dict[str, object]:
        if self.result is None:
            return {"context": self.context, "bundle": str(self.destination), "error": self.error}
        return {"context": self.context, **self.result.to_dict(str(self.destination))}


def fleet_destinations(destination: Path, contexts: Sequence[str]) -> dict[str, Path]:
    """Where each context's bundle goes. DEST a directory: `DEST/<context>/`; DEST a `.tar.gz`/`.tgz`:
    `DEST-<context>.tar.gz` beside it. A context's name becomes a file name with every character but letters,
    digits, `.`, `_` and `-` replaced by `_` (`arn:aws:eks:…/prod` → `arn_aws_eks_…_prod`); names that end up the
    same get `-2`, `-3`."""
    names: dict[str, Path] = {}
    used: set[str] = set()
    suffix = next((s for s in TARBALL_SUFFIXES if destination.name.endswith(s)), None)
    for context in contexts:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", context).strip("._-") or "context"
        unique, number = safe, 1
        while unique.lower() in used:
            number += 1
            unique = f"{safe}-{number}"
        used.add(unique.lower())
        if suffix is None:
            names[context] = destination / unique
        else:
            names[context] = destination.with_name(f"{destination.name[: -len(suffix)]}-{unique}{suffix}")
    return names


def collect_fleet(
    target: LiveTarget,
    contexts: Sequence[str],
    destination: Path,
    parallel: int = DEFAULT_PARALLEL,
    on_done: Callable[[Collected], None] | None = None,
) -> list[Collected]:
    """One bundle per context (see `fleet_destinations`); a context that cannot be collected is its row's error."""
    check_live_only(target, prometheus=False)
    check_parallel(parallel)
    if not contexts:
        raise UsageError("no context to read")
    places = fleet_destinations(destination, contexts)
    if not destination.name.endswith(TARBALL_SUFFIXES):
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise UsageError(f"{destination}: exists and is not an empty directory (give a new directory)")
        try:
            destination.mkdir(parents=False, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{destination}: cannot create it: {exc.strerror or exc}") from None
    else:
        taken = [str(path) for path in places.values() if path.exists()]
        if taken:
            raise UsageError(f"{taken[0]}: exists already (give another DEST)")

    def collect_one(context: str) -> Collected:
        place = places[context]
        try:
            scoped, _ = with_default_namespace(replace(target, context=context))
            return Collected(context, place, collect_bundle(scoped, place))
        except MlopsTraceError as exc:
            return Collected(context, place, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one cluster's failure must not stop the others
            return Collected(context, place, error=f"internal error: {type(exc).__name__}: {exc}")

    return bounded_map(contexts, collect_one, parallel, on_done)
