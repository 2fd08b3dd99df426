"""The probe's series (`--probe-experiment`): a burst's split and hop latencies as gauges, a probe that could not run
as `mlops_trace_probe_success 0` with no stale split, promtool accepting the text; a probe into a closed port is an
outcome with the error, not an exception. The probe against the real reference stack is
test_probe_stack.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlops_trace.collect.target import LiveTarget
from mlops_trace.errors import UsageError
from mlops_trace.exporter.metrics import registry_for
from mlops_trace.exporter.probe import HopLatency, ProbeOutcome, ProbeSettings, run_probe
from mlops_trace.exporter.settings import ClusterTarget, ExporterSettings
from mlops_trace.exporter.state import ExporterState

PROMTOOL = shutil.which("promtool")
BURST = ProbeOutcome(
    "financial-ab-test-experiment", 1_700_000_000.0, 6.0, count=20, succeeded=19,
    target_shares={"baseline-predictor": 0.7, "enhanced-predictor": 0.3},
    answered={"baseline-predictor": 15, "enhanced-predictor": 4},
    hops=(HopLatency("Seldon Envoy", 0.001, 0.005), HopLatency("model (MLServer)", 0.0023, 0.004),
          HopLatency("model (MLServer)", 0.0031, 0.006)),
)


def _samples(state: ExporterState) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry_for(state)).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_a_burst_is_split_and_hop_series() -> None:
    state = ExporterState()
    state.record_probe(BURST)
    samples = _samples(state)
    exp = "financial-ab-test-experiment"
    assert samples["mlops_trace_probe_success"] == [({"experiment": exp}, 0.0)]  # one of 20 was not answered
    requests = {labels["result"]: value for labels, value in samples["mlops_trace_probe_requests"]}
    assert requests == {"ok": 19.0, "failed": 1.0}
    target = {labels["model"]: value for labels, value in samples["mlops_trace_probe_split_target_ratio"]}
    answered = {labels["model"]: value for labels, value in samples["mlops_trace_probe_split_answered_ratio"]}
    assert target == {"baseline-predictor": 0.7, "enhanced-predictor": 0.3}
    assert answered == {"baseline-predictor": 15 / 19, "enhanced-predictor": 4 / 19}
    p50 = {labels["hop"]: value for labels, value in samples["mlops_trace_probe_hop_p50_seconds"]}
    p95 = {labels["hop"]: value for labels, value in samples["mlops_trace_probe_hop_p95_seconds"]}
    assert p50 == {"Seldon Envoy": 0.001, "model (MLServer)": 0.0023}
    assert p95 == {"Seldon Envoy": 0.005, "model (MLServer)": 0.004}


def test_a_probe_that_could_not_run_has_no_split() -> None:
    state = ExporterState()
    state.record_probe(BURST)
    state.record_probe(ProbeOutcome("financial-ab-test-experiment", 1_700_000_300.0, 0.2, error="no such Experiment"))
    samples = _samples(state)
    assert samples["mlops_trace_probe_success"] == [({"experiment": "financial-ab-test-experiment"}, 0.0)]
    assert "mlops_trace_probe_split_answered_ratio" not in samples and "mlops_trace_probe_requests" not in samples


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_probe_series() -> None:
    assert PROMTOOL is not None
    state = ExporterState()
    state.record_probe(BURST)
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=generate_latest(registry_for(state)),
                             capture_output=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_a_probe_into_a_closed_port_is_a_failed_probe(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: "
                          f"http://127.0.0.1:{closed}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n"
                          "  context:\n    cluster: c\n    user: u\ncurrent-context: c\n", encoding="utf-8")
    settings = ProbeSettings("txn-ab", url=f"http://127.0.0.1:{closed}", host="ml-api.local", count=3,
                             request_timeout=2, source=LiveTarget(namespaces=("fraud-serving",),
                                                                  kubeconfig=str(kubeconfig)))
    outcome = run_probe(settings)
    assert outcome.experiment == "txn-ab"
    assert not outcome.ran and outcome.count == 0, outcome
    assert outcome.error == f"cannot connect to http://127.0.0.1:{closed}: [Errno 111] Connection refused"


def test_the_probe_goes_into_one_cluster() -> None:
    clusters = tuple(ClusterTarget(n, LiveTarget(context=n)) for n in ("east", "west"))
    with pytest.raises(UsageError, match="one --context"):
        ExporterSettings(clusters=clusters, probe=ProbeSettings("txn-ab"))
    with pytest.raises(UsageError, match="--probe-count"):
        ProbeSettings("txn-ab", count=0)
