"""Model time from MLServer's metrics deltas."""

from __future__ import annotations

import pytest

from mlops_trace.trace.metrics import model_time, parse_totals

BEFORE = """\
# HELP model_infer_request_duration Model infer request duration
# TYPE model_infer_request_duration summary
model_infer_request_duration_count{model="a_1",version="1"} 10.0
model_infer_request_duration_sum{model="a_1",version="1"} 0.020
model_infer_request_duration_count{model="b_1",version="1"} 4.0
model_infer_request_duration_sum{model="b_1",version="1"} 0.040
model_infer_request_success_total{model="a_1",version="1"} 10.0
"""


def test_parse_totals_per_model() -> None:
    totals = parse_totals(BEFORE)
    assert totals.counts == {"a_1": 10.0, "b_1": 4.0}
    assert totals.sums["b_1"] == pytest.approx(0.04)


def test_one_request_gives_its_exact_model_time() -> None:
    after = parse_totals(
        BEFORE.replace(
            '10.0\nmodel_infer_request_duration_sum{model="a_1",version="1"} 0.020',
            '11.0\nmodel_infer_request_duration_sum{model="a_1",version="1"} 0.0235',
        )
    )
    found = model_time(parse_totals(BEFORE), after, ["a_1"], "http://m/metrics", requests=1)
    assert found is not None
    assert found.ms == pytest.approx(3.5)
    assert found.per_request and "this request only" in found.source
    assert found.evidence[0].where == "http://m/metrics"


def test_many_requests_give_a_labelled_mean_and_nothing_new_gives_none() -> None:
    before = parse_totals(BEFORE)
    after = parse_totals(
        BEFORE.replace("} 10.0", "} 12.0")
        .replace("} 4.0", "} 6.0")
        .replace("} 0.020", "} 0.024")
        .replace("} 0.040", "} 0.048")
    )
    found = model_time(before, after, [], "u", requests=4)
    assert found is not None and found.ms == pytest.approx(3.0) and not found.per_request
    assert "mean over 4 inferences" in found.source
    assert model_time(before, before, [], "u", requests=1) is None
