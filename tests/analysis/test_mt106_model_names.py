"""MT106 reads the model name out of the scheduler's failure text without the ≤v2.6 trailing period."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from mlops_trace.analysis.catalog import find_entry


def _module() -> ModuleType:
    return sys.modules[find_entry("MT106").run.__module__]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("failed to schedule model fraud-rf. [failed replica filter RequirementsReplicaFilter ...]", "fraud-rf"),
        ("failed to schedule model iris.v2. []", "iris.v2"),
        ("failed to schedule model churn_xgb.", "churn_xgb"),
        ("Failed to schedule model txn-gbm", "txn-gbm"),
        ("Failed to schedule model txn-gbm (for unload)", "txn-gbm"),
    ],
)
def test_model_name(text: str, name: str) -> None:
    found = _module()._LOG_NAMED.search(text)
    assert found is not None and found.group(1) == name
