"""The doctor CronJob's script (deploy/docker/doctor-reports.sh, the image's mlops-trace-doctor-reports) run with
/bin/sh against a served bundle: a collected bundle, SARIF and JSON reports of its findings in a time-stamped
directory, `latest` pointing at it, only the newest $KEEP runs kept, and exit 0 although there are findings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixture_walk import FIXTURES
from tests.serve_process import bundle_server

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "doctor-reports.sh"
SCENARIO = FIXTURES / "scenarios" / "four-root-causes"


def _run(reports: Path, kubeconfig: Path, **env: str) -> subprocess.CompletedProcess[str]:
    mlops_trace = shutil.which("mlops-trace")
    assert mlops_trace is not None, "the package's console script is installed (pip install -e .)"
    environment = {**os.environ, "KUBECONFIG": str(kubeconfig), "REPORTS_DIR": str(reports),
                   "PATH": f"{Path(mlops_trace).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    return subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True, timeout=180, env=environment,
                          check=False)


@pytest.mark.skipif(not Path("/bin/sh").exists(), reason="needs /bin/sh, as the image has")
def test_reports_of_a_served_cluster(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    with bundle_server(SCENARIO, tmp_path, duration=150) as served:
        first = _run(reports, served.kubeconfig, SCOPE="-A", KEEP="1")
        assert first.returncode == 0, first.stderr
        time.sleep(1.1)  # the next run's directory is named by the second
        second = _run(reports, served.kubeconfig, SCOPE="-n fraud-serving -n credit-risk", KEEP="1")
        assert second.returncode == 0, second.stderr
    runs = sorted(p.name for p in reports.iterdir() if p.name != "latest")
    assert len(runs) == 1 and os.readlink(reports / "latest") == runs[0]
    latest = reports / runs[0]
    assert sorted(p.name for p in latest.iterdir()) == ["bundle.tar.gz", "collect.txt", "doctor.json", "doctor.sarif"]
    findings = json.loads((latest / "doctor.json").read_text("utf-8"))["findings"]
    assert sorted(f["id"] for f in findings) == ["MT101", "MT103"]  # as doctor -n fraud-serving -n credit-risk
    sarif = json.loads((latest / "doctor.sarif").read_text("utf-8"))
    assert sorted(r["ruleId"] for r in sarif["runs"][0]["results"]) == ["MT101", "MT103"]
    assert f"mlops-trace: reports in {latest}" in second.stdout


def test_a_cluster_that_cannot_be_read_fails_the_job(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: "
                          "http://127.0.0.1:1\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: c\n  context:\n"
                          "    cluster: c\n    user: u\ncurrent-context: c\n", encoding="utf-8")
    result = _run(tmp_path / "reports", kubeconfig, SCOPE="-n fraud-serving")
    assert result.returncode == 2, result.stdout + result.stderr
    assert not (tmp_path / "reports" / "latest").exists()
