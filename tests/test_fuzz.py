"""The standing fuzz test: mutated fixture bundles through the reader, every check and every renderer (bench/fuzz.py).

Hypothesis draws the bundle, the mutation and its seed; the budget and the seed are fixed (derandomised), so CI
runs the same cases every time. `python -m bench --fuzz N` runs a long random campaign with the same invariants.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import MUTATIONS, fixture_bundles, run_case

BUNDLES = fixture_bundles()
# 2,000 cases in about 90 s on the 2-core CI machine (each case copies, reads, checks and renders a bundle).
EXAMPLES = 2_000


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,  # each case bounds its own time (bench.fuzz.CASE_SECONDS) and reports it as a failure
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    bundle=st.sampled_from(BUNDLES),
    kind=st.sampled_from(MUTATIONS),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    as_archive=st.booleans(),
)
def test_mutated_bundles_keep_every_invariant(bundle: Path, kind: str, seed: int, as_archive: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-trace-fuzz-") as work:
        result = run_case(Path(work), bundle, kind, seed, as_archive)
    assert result.failure is None, f"{result.case.describe()} (seed {seed}): {result.failure}"


def test_the_fuzzer_reaches_every_fixture_and_mutation() -> None:
    assert len(BUNDLES) > 100
    assert set(MUTATIONS) >= {"value", "shape", "bytes", "deep", "aliases", "long-line", "link", "fifo", "junk-file"}
