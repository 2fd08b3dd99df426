"""Every check reads only the inputs it declares (`requires` or `reads`), as istio's analyzer tests hold analyzers to
their declared inputs (`CheckMetadataInputs`).

Each check runs on each of its fixture bundles (`fixtures/checks/<ID>/*`) and on every scenario bundle
(`fixtures/scenarios/*`), through `RecordingSnapshot`: a test-side subclass of `Snapshot` that notes every input a
check touches. The real Snapshot is not changed, so real runs pay nothing. The check runs as the engine runs it: not
at all when a required input is absent (the skip gate reads the inputs, not the check), and `SkipCheck` ends it.

What counts as touching an input (recorded at the accessor a check calls; what that accessor calls inside is not
recorded again, so `covers("Pod", ns)` is `kube:Pod` even though it looks at metadata and other lists):
- `objects_of`, `get`, `has_kind`, `covers` of a kind → `kube:<Kind>`; `existence(kind, …)` → `kube:<Kind>` and
  `kube:Namespace` (a missing namespace proves the object absent); `namespace_labels`, `namespace_exists`,
  `namespace_list_complete`, `namespaces` → `kube:Namespace`; `seldon_namespaces` → each Seldon kind it looks at;
  iterating `snap.objects` → `kube:<Kind>` of each object met.
- `logs_of(role)` → `logs:<role>`, whether or not any log is there (finding none is an answer); `logs_by_pod` →
  `logs:<role>` of each log it returns; iterating `snap.logs` → `logs:<role>` of each log met. An Envoy container's
  log is Envoy's access log, so role `envoy` is recorded as `envoy:access` (as `Snapshot.has` counts it); a log of
  role `other` (no known component) is no declarable input and is not recorded.
- Envoy data is recorded where the check reads it, on the `EnvoySource`: `.config`/`.config_display` →
  `envoy:config_dump`, `.stats`/`.stats_display` → `envoy:stats`, `.access_log` → `envoy:access`; `namespace` and
  `pod` are neutral. `envoy_configs()` → `envoy:config_dump` (it selects by config). `snap.envoys` itself records
  nothing: only what is read on its items does.
- reading `snap.requests` → `requests`; reading `snap.prometheus` → `prometheus`; `has(x)` → each input of `x`.
- `source`, `root`, `metadata`, `problems` are not inputs.
Any other public attribute of Snapshot must be mapped here: `test_recorder_maps_every_accessor` fails on a new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, SupportsIndex, overload

import pytest

from mlops_trace.analysis.catalog import CatalogEntry, load_catalog
from mlops_trace.analysis.check import SkipCheck, declared_inputs, make_check
from mlops_trace.findings import Finding, Severity
from mlops_trace.snapshot.bundle import open_bundle
from mlops_trace.snapshot.kube import KubeObject
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import SELDON_KINDS, EnvoySource, Existence, LogSource, Snapshot
from tests.fixture_walk import FIXTURES, FixtureCase, check_cases, scenario_cases

NEUTRAL_ATTRIBUTES = frozenset({"source", "root", "metadata", "problems", "add_objects", "attach_prometheus"})
_ENVOY_FIELDS = {
    "config": "envoy:config_dump",
    "config_display": "envoy:config_dump",
    "stats": "envoy:stats",
    "stats_display": "envoy:stats",
    "access_log": "envoy:access",
}


def log_input(role: Role) -> str | None:
    """The input a log of `role` is: Envoy's container log is its access log; a log of no known component (`other`,
    an rclone sidecar) is no input a check can declare, as nothing can require it."""
    if role is Role.OTHER:
        return None
    return "envoy:access" if role is Role.ENVOY else f"logs:{role.value}"


class _Recorder:
    """The inputs touched, and how deep inside an accessor we are (only the outermost call records)."""

    def __init__(self) -> None:
        self.touched: set[str] = set()
        self.depth = 0

    def note(self, *inputs: str | None) -> None:
        if self.depth == 0:
            self.touched.update(item for item in inputs if item is not None)


class _RecordingList(list[Any]):
    """A list that records an input for each item a check meets in it (iterating, indexing)."""

    def __init__(self, items: Iterable[Any], recorder: _Recorder, input_of: Callable[[Any], str | None]) -> None:
        super().__init__(items)
        self._recorder = recorder
        self._input_of = input_of

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self._recorder.note(self._input_of(item))
            yield item

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        found = super().__getitem__(index)
        for item in found if isinstance(index, slice) else [found]:
            self._recorder.note(self._input_of(item))
        return found


class _RecordingEnvoy(EnvoySource):
    """An EnvoySource that records which of its parts (config_dump, stats, access log) a check reads."""

    def __getattribute__(self, name: str) -> Any:
        if name in _ENVOY_FIELDS:
            object.__getattribute__(self, "_recorder").note(_ENVOY_FIELDS[name])
        return object.__getattribute__(self, name)

    # dataclass equality and hashing read every field: compare the wrapped source instead, recording nothing.
    def __eq__(self, other: object) -> bool:
        mine = object.__getattribute__(self, "_source")
        theirs = object.__getattribute__(other, "_source") if isinstance(other, _RecordingEnvoy) else other
        return bool(mine == theirs)

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_source"))


def _wrap_envoy(source: EnvoySource, recorder: _Recorder) -> EnvoySource:
    values = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)}
    wrapped = _RecordingEnvoy(**values)
    object.__setattr__(wrapped, "_recorder", recorder)
    object.__setattr__(wrapped, "_source", source)
    return wrapped


class RecordingSnapshot(Snapshot):
    """A Snapshot that records the inputs a check touches (see the module docstring for what counts)."""

    recorder: _Recorder

    @classmethod
    def of(cls, snap: Snapshot) -> RecordingSnapshot:
        recording = cls.__new__(cls)
        recording.__dict__.update(snap.__dict__)
        recording.__dict__["recorder"] = _Recorder()
        recording.__dict__["_wrapped_envoys"] = [_wrap_envoy(e, recording.recorder) for e in snap.envoys]
        return recording

    @property
    def touched(self) -> set[str]:
        return self.recorder.touched

    def __getattribute__(self, name: str) -> Any:
        if name in ("objects", "logs", "envoys", "requests", "prometheus"):
            recorder: _Recorder = object.__getattribute__(self, "recorder")
            value = object.__getattribute__(self, name)
            if recorder.depth > 0:
                return value
            if name == "objects":
                return _RecordingList(value, recorder, lambda obj: f"kube:{obj.kind}")
            if name == "logs":
                return _RecordingList(value, recorder, lambda log: log_input(log.role))
            if name == "envoys":
                return list(object.__getattribute__(self, "_wrapped_envoys"))
            recorder.note(name)
        return object.__getattribute__(self, name)

    @contextmanager
    def _reading(self, *inputs: str | None) -> Iterator[None]:
        """Record `inputs` (at the outermost accessor only), and nothing the accessor reads inside."""
        self.recorder.note(*inputs)
        self.recorder.depth += 1
        try:
            yield
        finally:
            self.recorder.depth -= 1

    def _envoys_of(self, found: list[EnvoySource]) -> list[EnvoySource]:
        wrapped = {id(object.__getattribute__(w, "_source")): w for w in self.__dict__["_wrapped_envoys"]}
        return [wrapped[id(source)] for source in found]

    # --- objects -------------------------------------------------------------------------------------------------

    def objects_of(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        with self._reading(f"kube:{kind}"):
            return super().objects_of(kind, namespace)

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        with self._reading(f"kube:{kind}"):
            return super().get(kind, namespace, name)

    def has_kind(self, kind: str) -> bool:
        with self._reading(f"kube:{kind}"):
            return super().has_kind(kind)

    def covers(self, kind: str, namespace: str | None) -> bool:
        with self._reading(f"kube:{kind}"):
            return super().covers(kind, namespace)

    def existence(self, kind: str, namespace: str | None, name: str) -> Existence:
        with self._reading(f"kube:{kind}", "kube:Namespace"):
            return super().existence(kind, namespace, name)

    def namespaces(self) -> list[str]:
        with self._reading("kube:Namespace"):
            return super().namespaces()

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        with self._reading("kube:Namespace"):
            return super().namespace_labels(namespace)

    def namespace_exists(self, namespace: str) -> Existence:
        with self._reading("kube:Namespace"):
            return super().namespace_exists(namespace)

    def namespace_list_complete(self) -> bool:
        with self._reading("kube:Namespace"):
            return super().namespace_list_complete()

    def seldon_namespaces(self) -> list[str]:
        with self._reading(*(f"kube:{kind}" for kind in SELDON_KINDS)):
            return super().seldon_namespaces()

    def summary(self) -> dict[str, int]:
        with self._reading(*sorted({f"kube:{obj.kind}" for obj in self.__dict__["objects"]})):
            return super().summary()

    # --- logs ----------------------------------------------------------------------------------------------------

    def logs_of(self, role: Role, namespace: str | None = None) -> list[LogSource]:
        with self._reading(log_input(role)):
            return super().logs_of(role, namespace)

    def logs_by_pod(self, namespace: str, pod: str) -> list[LogSource]:
        with self._reading():
            found = super().logs_by_pod(namespace, pod)
        self.recorder.note(*(log_input(log.role) for log in found))
        return found

    # --- envoy and requirements ------------------------------------------------------------------------------------

    def envoy_configs(self, namespace: str | None = None) -> list[EnvoySource]:
        with self._reading("envoy:config_dump"):
            return self._envoys_of(super().envoy_configs(namespace))

    def has(self, requirement: str) -> bool:
        with self._reading(*(part.strip() for part in requirement.split("|"))):
            return super().has(requirement)


def undeclared_reads(entry: CatalogEntry, snap: Snapshot) -> tuple[set[str], str]:
    """(inputs the check touched but does not declare, how it ended) on one Snapshot, run as the engine runs it."""
    check = entry.check
    if not all(snap.has(requirement) for requirement in check.requires):
        return set(), "skip (a required input is absent)"
    recording = RecordingSnapshot.of(snap)
    try:
        findings = list(entry.run(recording))
        ended = f"{len(findings)} finding(s)"
    except SkipCheck as skip:
        ended = f"skip ({skip})"
    return recording.touched - declared_inputs(check), ended


def _cases() -> list[FixtureCase]:
    return check_cases() + scenario_cases()


def _checks_for(case: FixtureCase) -> tuple[CatalogEntry, ...]:
    """A check fixture runs its own check; a scenario bundle runs every check."""
    if case.path.is_relative_to(FIXTURES / "checks"):
        check_id = case.path.relative_to(FIXTURES / "checks").parts[0]
        return tuple(e for e in load_catalog() if e.check.id == check_id)
    return load_catalog()


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.label)
def test_checks_read_only_declared_inputs(case: FixtureCase) -> None:
    entries = _checks_for(case)
    assert entries, f"no check for fixture {case.label}"
    problems: list[str] = []
    with open_bundle(case.path) as snap:
        for entry in entries:
            undeclared, ended = undeclared_reads(entry, snap)
            if undeclared:
                check = entry.check
                problems.append(
                    f"{check.id} {check.slug} read {', '.join(sorted(undeclared))}, declared in neither requires "
                    f"{check.requires} nor reads {check.reads} (it ended: {ended}); add them to its reads=(...)"
                )
    assert not problems, "\n".join(problems)


# --- the recorder itself ---------------------------------------------------------------------------------------------


def _sneaky_check(reads: tuple[str, ...]) -> CatalogEntry:
    """A check that requires Models and also looks at Services, agent logs, Envoy access logs and requests."""
    check = make_check(
        id="MT999",
        slug="sneaky",
        title="reads more than it requires",
        severity=Severity.INFO,
        requires=("kube:Model",),
        playbook="none",
        fix="declare it",
        reads=reads,
    )

    def run(snap: Snapshot) -> Iterator[Finding]:
        snap.objects_of("Model")
        snap.covers("Service", None)
        snap.logs_of(Role.AGENT)
        for env in snap.envoys:
            _ = (env.namespace, env.access_log)
        _ = snap.requests
        return iter(())

    return CatalogEntry(check=check, run=run, module_path=Path("sneaky.py"), doc_path=Path("sneaky.md"))


def _model_bundle() -> Path:
    """A fixture bundle with Models, Envoy data and agent logs, for the self-tests."""
    for case in check_cases():
        with open_bundle(case.path) as snap:
            if snap.has("kube:Model") and snap.envoys and snap.logs_of(Role.AGENT):
                return case.path
    raise AssertionError("no fixture bundle with Models, Envoy data and agent logs")


def test_undeclared_read_is_caught() -> None:
    with open_bundle(_model_bundle()) as snap:
        undeclared, _ = undeclared_reads(_sneaky_check(()), snap)
        assert undeclared == {"kube:Service", "logs:agent", "envoy:access", "requests"}
        declared = _sneaky_check(("kube:Service", "logs:agent", "envoy:access", "requests"))
        assert undeclared_reads(declared, snap)[0] == set()


def test_recorder_attributes_envoy_parts_and_leaves_behaviour_alone() -> None:
    with open_bundle(_model_bundle()) as snap:
        recording = RecordingSnapshot.of(snap)
        assert [e.pod for e in recording.envoy_configs()] == [e.pod for e in snap.envoy_configs()]
        assert recording.touched == {"envoy:config_dump"}
        recording.touched.clear()
        names = [(e.namespace, e.pod) for e in recording.envoys]
        assert names == [(e.namespace, e.pod) for e in snap.envoys] and recording.touched == set()
        assert recording.envoys[0] == recording.envoys[0] and recording.touched == set()
        _ = recording.envoys[0].stats
        assert recording.touched == {"envoy:stats"}
        recording.touched.clear()
        assert recording.covers("Pod", None) == snap.covers("Pod", None)
        assert recording.existence("Service", "nowhere", "x") == snap.existence("Service", "nowhere", "x")
        assert recording.touched == {"kube:Pod", "kube:Service", "kube:Namespace"}
        recording.touched.clear()
        assert len(recording.logs_of(Role.AGENT)) == len(snap.logs_of(Role.AGENT))
        assert [log.role for log in recording.logs] == [log.role for log in snap.logs]
        assert recording.touched == {log_input(log.role) for log in snap.logs} | {"logs:agent"}
    assert type(snap) is Snapshot  # the real one is untouched: recording is a test-side copy


def test_recorder_maps_every_accessor() -> None:
    """A new public Snapshot method or field must be mapped to an input (overridden above) or named neutral."""
    public = {name for name in dir(Snapshot) if not name.startswith("_")}
    public |= {f.name for f in dataclasses.fields(Snapshot) if not f.name.startswith("_")}
    mapped = {name for name in vars(RecordingSnapshot) if not name.startswith("_")}
    mapped |= {"objects", "logs", "envoys", "requests", "prometheus"}
    assert public - mapped - NEUTRAL_ATTRIBUTES == set()
    assert {f.name for f in dataclasses.fields(EnvoySource)} == {"namespace", "pod", *_ENVOY_FIELDS}


@pytest.mark.parametrize(
    ("requires", "reads"),
    [
        (("kube:Sevice",), ()),  # a misspelt kind
        (("kube:Model",), ("logs:schedular",)),  # a misspelt role
        (("kube:Model",), ("logs:envoy",)),  # Envoy's container log is envoy:access
        (("kube:Model",), ("envoy:config",)),
        (("kube:Model",), ("kube:Secret",)),  # never collected
        (("kube:Model",), ("prometheus:latency",)),
        (("kube:Model",), ("kube:Pod|kube:Service",)),  # either-or is a requirement, not a read
        (("kube:Model",), ("kube:Model",)),  # already required
        (("kube:Model",), ("kube:Pod", "kube:Pod")),
    ],
)
def test_make_check_rejects_unknown_or_doubled_inputs(requires: tuple[str, ...], reads: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="MT999"):
        make_check(
            id="MT999",
            slug="typo",
            title="t",
            severity=Severity.INFO,
            requires=requires,
            playbook="none",
            fix="f",
            reads=reads,
        )


def test_every_catalog_check_declares_valid_inputs() -> None:
    """Loading the catalog validated them; `declared_inputs` splits `a|b` and adds reads."""
    for entry in load_catalog():
        declared = declared_inputs(entry.check)
        assert set(entry.check.reads) <= declared
        assert all("|" not in item for item in declared)
