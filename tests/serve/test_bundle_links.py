"""`bundle serve` never hands out a file through a link: not a linked log (`-> /etc/passwd`), not a linked folder, not
a file swapped for a link after the bundle was read, and never anything whose path leaves the bundle."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_trace.serve.files import RefusedFile, open_in_bundle
from tests.serve_process import bundle_server
from tests.serve.wire import assert_status, exchange, get, running, write_bundle

SECRET = "OUTSIDE-THE-BUNDLE-7f3a"
PODS = "/api/v1/namespaces/fraud-serving/pods"
LOG = f"{PODS}/seldon-scheduler-0/log?container=scheduler"
CONFIG_DUMP = f"{PODS}/seldon-envoy-abc:9901/proxy/config_dump"
STATS = f"{PODS}/seldon-envoy-abc:9901/proxy/stats"


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder beside the bundle holding files a link could point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_text(f"root:x:0:0:{SECRET}\n", encoding="utf-8")
    (folder / "scheduler.log").write_text(f"{SECRET} log\n", encoding="utf-8")
    (folder / "config_dump.json").write_text(json.dumps({"configs": [], "secret": SECRET}), encoding="utf-8")
    (folder / "stats.txt").write_text(f"{SECRET}: 1\n", encoding="utf-8")
    return folder


# --- the opener --------------------------------------------------------------------------------------------------


def test_a_regular_file_inside_the_bundle_opens(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "bundle")
    with open_in_bundle(root, "logs/fraud-serving/seldon-scheduler-0/scheduler.log") as handle:
        assert handle.read().startswith(b"line 1\n")


def test_the_root_itself_may_be_a_link(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "bundle")
    (tmp_path / "alias").symlink_to(root)
    with open_in_bundle(tmp_path / "alias", "envoy/fraud-serving/seldon-envoy-abc/stats.txt") as handle:
        assert b"upstream_rq_total" in handle.read()


@pytest.mark.parametrize(
    "make",
    [
        "link-to-outside-file",
        "link-to-file-inside",
        "linked-folder",
        "dangling-link",
        "fifo",
        "folder-not-file",
        "missing",
    ],
)
def test_links_and_special_files_are_refused(tmp_path: Path, outside: Path, make: str) -> None:
    root = write_bundle(tmp_path / "bundle")
    log_dir = root / "logs" / "fraud-serving" / "seldon-scheduler-0"
    target = log_dir / "scheduler.log"
    if make == "link-to-outside-file":
        target.unlink()
        target.symlink_to(outside / "passwd")
    elif make == "link-to-file-inside":
        target.unlink()
        target.symlink_to(root / "kube" / "objects.yaml")
    elif make == "linked-folder":
        shutil.rmtree(log_dir)
        log_dir.symlink_to(outside)
    elif make == "dangling-link":
        target.unlink()
        target.symlink_to(tmp_path / "nowhere")
    elif make == "fifo":
        target.unlink()
        os.mkfifo(target)  # opening it for reading without O_NONBLOCK would wait for a writer forever
    elif make == "folder-not-file":
        target.unlink()
        target.mkdir()
    else:
        target.unlink()
    started = time.monotonic()
    with pytest.raises(RefusedFile):
        open_in_bundle(root, "logs/fraud-serving/seldon-scheduler-0/scheduler.log")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "relative", ["../outside/passwd", "logs/../../outside/passwd", "/etc/passwd", "", "logs//x.log", "./kube/objects.yaml"]
)
def test_paths_that_are_not_plain_paths_inside_are_refused(tmp_path: Path, outside: Path, relative: str) -> None:
    root = write_bundle(tmp_path / "bundle")
    with pytest.raises(RefusedFile, match="not a plain path"):
        open_in_bundle(root, relative)


# --- served: files swapped for links after the bundle was read ---------------------------------------------------


def _swap_file(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _swap_folder(folder: Path, target: Path) -> None:
    shutil.rmtree(folder)
    folder.symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize(
    ("path", "swap"),
    [
        (LOG, lambda root, out: _swap_file(root / "logs/fraud-serving/seldon-scheduler-0/scheduler.log", out / "passwd")),
        (LOG, lambda root, out: _swap_folder(root / "logs/fraud-serving/seldon-scheduler-0", out)),
        (LOG, lambda root, out: _swap_folder(root / "logs/fraud-serving", out)),
        (CONFIG_DUMP, lambda root, out: _swap_file(
            root / "envoy/fraud-serving/seldon-envoy-abc/config_dump.json", out / "config_dump.json")),
        (STATS, lambda root, out: _swap_file(root / "envoy/fraud-serving/seldon-envoy-abc/stats.txt", out / "stats.txt")),
        (STATS, lambda root, out: _swap_folder(root / "envoy/fraud-serving/seldon-envoy-abc", out)),
    ],
)
def test_a_file_swapped_for_a_link_after_loading_is_not_served(
    tmp_path: Path, outside: Path, capfd: pytest.CaptureFixture[str], path: str, swap: Callable[[Path, Path], None]
) -> None:
    root = write_bundle(tmp_path / "bundle")
    with running(root) as server:
        assert exchange(server.port, get(path)).status == 200  # served while it is a plain file
        swap(root, outside)
        answer = exchange(server.port, get(path))
    assert_status(answer, 404, "NotFound")
    assert SECRET.encode() not in answer.body
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and "symbolic link" in err


# --- served by the CLI: a bundle that holds links from the start -------------------------------------------------


def test_the_cli_server_never_serves_a_file_through_a_link(tmp_path: Path, outside: Path) -> None:
    root = write_bundle(tmp_path / "bundle")
    linked_log = root / "logs" / "fraud-serving" / "linked-0"
    linked_log.mkdir()
    (linked_log / "c.log").symlink_to(outside / "passwd")
    (root / "logs" / "fraud-serving" / "linked-dir-0").symlink_to(outside, target_is_directory=True)
    linked_envoy = root / "envoy" / "fraud-serving" / "linked-envoy"
    linked_envoy.mkdir()
    (linked_envoy / "config_dump.json").symlink_to(outside / "config_dump.json")
    (linked_envoy / "stats.txt").symlink_to(outside / "stats.txt")
    with bundle_server(root, tmp_path) as served:
        answers = [
            exchange(served.port, get(path))
            for path in (
                f"{PODS}/linked-0/log?container=c",
                f"{PODS}/linked-dir-0/log?container=scheduler",
                f"{PODS}/linked-envoy:9901/proxy/config_dump",
                f"{PODS}/linked-envoy:9901/proxy/stats",
            )
        ]
        assert exchange(served.port, get(LOG)).status == 200  # the bundle's own files are still served
    stderr = served.stderr.read_bytes()
    for answer in answers:
        # Whether the bundle reader left the link out (no such pod data) or the server refused it, never the file.
        assert answer.status in (404, 503), answer.body
        assert answer.json()["kind"] == "Status"
        assert SECRET.encode() not in answer.body
    assert b"Traceback" not in stderr
