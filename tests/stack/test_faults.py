"""Fault names, delays and combinations accepted by `stack up --fault`."""

from __future__ import annotations

import pytest

from mlops_trace.errors import UsageError
from mlops_trace.stack.faults import DEFAULT_DELAY_MS, DESCRIPTIONS, Fault, parse_faults
from mlops_trace.stack.topology import Plan


def test_every_fault_has_one_line() -> None:
    assert set(DESCRIPTIONS) == set(Fault)
    assert all("\n" not in text and text for text in DESCRIPTIONS.values())


def test_delays_and_order() -> None:
    faults = parse_faults(["slow-envoy=0.05s", "split-brain,slow-model=15ms"])
    assert faults.names == ["split-brain", "slow-model=15ms", "slow-envoy=50ms"]
    assert faults.delay_ms(Fault.SLOW_MODEL) == 15.0
    assert faults.delay_ms(Fault.SLOW_ENVOY) == 50.0
    assert parse_faults(["slow-model"]).delay_ms(Fault.SLOW_MODEL) == DEFAULT_DELAY_MS
    assert parse_faults([]).delay_ms(Fault.SLOW_MODEL) == 0.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["nope"], "unknown fault 'nope'"),
        (["no-route=3"], "takes no value"),
        (["slow-model=fast"], "delay must look like"),
        (["slow-envoy=0ms"], "above 0"),
        (["split-brain", "alias-missing"], "cannot be combined"),
        (["stale-weights", "no-route"], "cannot be combined"),
    ],
)
def test_rejected(values: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_faults(values)


def test_plan_follows_faults() -> None:
    healthy = Plan.for_faults(parse_faults([]))
    assert healthy.local_scheduler and healthy.local_scheduler_service and not healthy.central_scheduler
    assert healthy.agent_scheduler_host == "seldon-scheduler"
    assert healthy.envoy_weights() == {"baseline-predictor": 70, "enhanced-predictor": 30}
    split = Plan.for_faults(parse_faults(["split-brain"]))
    assert split.thrash and split.central_scheduler and split.local_scheduler
    assert split.agent_scheduler_host == "seldon-scheduler.seldon-system"
    alias = Plan.for_faults(parse_faults(["alias-missing"]))
    assert not alias.local_scheduler and not alias.local_scheduler_service and alias.central_scheduler
    stale = Plan.for_faults(parse_faults(["stale-weights"]))
    assert stale.envoy_weights() == {"baseline-predictor": 50, "enhanced-predictor": 50}
    assert not Plan.for_faults(parse_faults(["no-route"])).experiment_route
    assert not Plan.for_faults(parse_faults(["missing-header"])).header_derivation
