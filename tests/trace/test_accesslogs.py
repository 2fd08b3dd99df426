"""Finding our requests in access logs: only what was appended since the mark, only lines with our prefix."""

from __future__ import annotations

from pathlib import Path

from mlops_trace.snapshot.bundle import load_bundle_dir
from mlops_trace.trace.accesslogs import LogFile, LogKind, find, log_files, mark
from tests.trace.helpers import nginx_line

ENVOY = (
    '[2025-11-17T09:34:02.120Z] "POST /v2/models/txn-ab/infer HTTP/1.1" 404 0 NR 0 0 0 - "-" "x" "{rid}" '
    '"ml-api.example.internal" "-"'
)


def test_reads_only_what_the_run_appended(tmp_path: Path) -> None:
    ingress = tmp_path / "controller.log"
    envoy = tmp_path / "envoy.log"
    ingress.write_text(nginx_line("mt-run1-000001", "0.004", "0.003") + "\nklog noise\n", encoding="utf-8")
    envoy.write_text("", encoding="utf-8")
    files = [LogFile(LogKind.INGRESS, ingress, "ingress.log"), LogFile(LogKind.ENVOY, envoy, "envoy.log")]
    offsets = mark(files)
    with ingress.open("a", encoding="utf-8") as handle:
        handle.write(nginx_line("mt-run2-000001", "0.006", "0.004") + "\n")
        handle.write(nginx_line("someone-else", "0.001", "0.001") + "\n")
        handle.write(nginx_line("mt-run2-000002", "0.009", "0.005"))  # no newline yet: still being written
    envoy.write_text(ENVOY.format(rid="mt-run2-000002") + "\n", encoding="utf-8")
    found = find(files, offsets, "mt-run2-", ["mt-run2-000001", "mt-run2-000002"], wait_s=0.0)
    assert set(found.ingress) == {"mt-run2-000001"}
    assert found.ingress["mt-run2-000001"].where == "ingress.log:3"
    assert found.ingress["mt-run2-000001"].nginx is not None
    assert found.ingress["mt-run2-000001"].nginx.request_time == 0.006
    assert set(found.envoy) == {"mt-run2-000002"}
    assert found.envoy["mt-run2-000002"].envoy is not None
    assert found.envoy["mt-run2-000002"].envoy.response_flags == ("NR",)
    assert "mt-run1-000001" not in found.ingress


def test_a_truncated_log_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "controller.log"
    log.write_text("x" * 500 + "\n", encoding="utf-8")
    files = [LogFile(LogKind.INGRESS, log, "c.log")]
    offsets = mark(files)
    log.write_text(nginx_line("mt-r-000001", "0.001", "0.001") + "\n", encoding="utf-8")
    found = find(files, offsets, "mt-r-", ["mt-r-000001"])
    assert found.ingress["mt-r-000001"].where == "c.log:1"


def test_log_files_of_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "logs" / "ingress-nginx" / "ingress-nginx-controller-1" / "controller.log").parent.mkdir(parents=True)
    (tmp_path / "logs" / "ingress-nginx" / "ingress-nginx-controller-1" / "controller.log").write_text("")
    (tmp_path / "logs" / "ns" / "seldon-envoy-1" / "envoy.log").parent.mkdir(parents=True)
    (tmp_path / "logs" / "ns" / "seldon-envoy-1" / "envoy.log").write_text("")
    (tmp_path / "logs" / "ns" / "mlserver-0" / "agent.log").parent.mkdir(parents=True)
    (tmp_path / "logs" / "ns" / "mlserver-0" / "agent.log").write_text("")
    files = log_files(load_bundle_dir(tmp_path))
    assert sorted((f.kind.value, f.display) for f in files) == [
        ("envoy", "logs/ns/seldon-envoy-1/envoy.log"),
        ("ingress", "logs/ingress-nginx/ingress-nginx-controller-1/controller.log"),
    ]
