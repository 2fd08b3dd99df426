"""The compact `request` text through the reference stack for real (issue 14): a healthy request at 120 columns in
at most 15 lines with the slowest hop on the first, no line wider than 80 at 80 columns, no `1.000`-style numbers;
a request the missing-header fault breaks names hop 4 and MT301 in its first two lines. Marked `stack`; each
scenario starts its own stack and tears it down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_trace.trace.command import RequestArgs, execute
from tests.stack_run import running_stack

pytestmark = pytest.mark.stack


def test_a_healthy_request_is_a_compact_waterfall(tmp_path: Path) -> None:
    with running_stack(tmp_path) as info:
        experiment = info["experiment"]["name"]
        wide = execute(RequestArgs(state_dir=tmp_path, experiment=experiment, width=120))
        narrow = execute(RequestArgs(state_dir=tmp_path, experiment=experiment, width=80))
        summary = execute(RequestArgs(state_dir=tmp_path, experiment=experiment, width=80, count=30))
    lines = wide.text.splitlines()
    assert wide.exit_code == 0 and len(lines) <= 15, wide.text
    assert lines[0].startswith("200 OK · ") and "slowest: " in lines[0], wide.text
    assert all(len(line) <= 80 for line in narrow.text.splitlines()), narrow.text
    for text in (wide.text, narrow.text, summary.text):
        assert not re.search(r"\b\d+\.000\b", text) and "None" not in text, text
    hop7 = next(line for line in summary.text.splitlines() if line.startswith(" 7  model"))
    tokens = hop7.split()  # 7 model (MLServer) <mean> 30 MLServer run mean: no p50/p95/p99 of a run mean
    assert re.fullmatch(r"\d+(\.\d+)?", tokens[3]) and tokens[4:] == ["30", "MLServer", "run", "mean"], summary.text


def test_a_missing_header_names_hop_4_and_mt301_first(tmp_path: Path) -> None:
    with running_stack(tmp_path, "missing-header") as info:
        outcome = execute(RequestArgs(state_dir=tmp_path, model=info["experiment"]["name"], width=80))
    first, second = outcome.text.splitlines()[:2]
    assert outcome.exit_code == 1
    assert "✗ failed at hop 4 Seldon Envoy (no-route)" in first and second.startswith("why: MT301 "), outcome.text
