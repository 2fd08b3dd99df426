"""Lines longer than the `line-chars` limit: `LogSource.lines()` and `lines_mentioning` give them in pieces of that
many characters, numbered as the line and losing nothing; the file is named once as an input problem; and a scan
costs time linear in the file size, however long its lines."""

from __future__ import annotations

import hashlib
import io
import random
import time
import tracemalloc
from pathlib import Path

import pytest

from mlops_trace.findings import InputProblem
from mlops_trace.parsers import logs
from mlops_trace.parsers.logs import scan
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource
from tests.parsers.test_logs_scan import NEEDLES, PIECES, _mentions

MIB = 1 << 20
# One line of a scheduler log with its line end replaced by a space: a needle every ~120 bytes.
SCHEDULER_TEXT = (
    b'time="2025-11-17T09:21:15Z" level=info msg="Updating state for model model-00017 to Available" '
    b"func=updateModelState source=IncrementalProcessor "
)
SCAN_NEEDLES = ("updating state for model ", "no matching server", "failed to schedule model")


def _source(path: Path, limit: int = MIB, problems: list[InputProblem] | None = None) -> LogSource:
    return LogSource("ns", "pod", "scheduler", Role.SCHEDULER, path, f"logs/{path.name}", limit, problems)


def _is_subsequence(part: list[tuple[int, str]], whole: list[tuple[int, str]]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


def _one_line_log(path: Path, size: int) -> Path:
    path.write_bytes(SCHEDULER_TEXT * (size // len(SCHEDULER_TEXT)))
    return path


@pytest.mark.parametrize("limit", [1, 2, 5, 64])
def test_pieces_join_back_into_each_line(tmp_path: Path, limit: int) -> None:
    rng = random.Random(limit)
    for trial in range(120):
        path = tmp_path / f"{trial}.log"
        path.write_bytes(b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60))))
        pieces = list(_source(path, limit).lines())
        whole = list(_source(path).lines())
        assert [n for n, _ in whole] == list(range(1, len(whole) + 1))
        joined: dict[int, list[str]] = {}
        for lineno, piece in pieces:
            joined.setdefault(lineno, []).append(piece)
        assert {n: "".join(parts) for n, parts in joined.items()} == dict(whole), path.read_bytes()
        for parts in joined.values():
            assert all(len(part) == limit for part in parts[:-1])
            assert 0 <= len(parts[-1]) <= limit


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 22])
def test_scan_returns_the_pieces_of_lines_and_every_one_mentioning_a_needle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", block)
    rng = random.Random(block)
    for trial in range(120):
        limit = rng.choice([1, 2, 3, 5, 8, 13, 40, MIB])
        path = tmp_path / f"{trial}.log"
        path.write_bytes(b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60))))
        source = _source(path, limit)
        every = list(source.lines())
        found = list(source.lines_mentioning(NEEDLES))
        assert _is_subsequence(found, every), (limit, path.read_bytes())
        assert all(item in found for item in every if _mentions(item[1])), (limit, path.read_bytes())


@pytest.mark.parametrize("block", [4, 5, 64, 1 << 22])
def test_a_match_in_a_long_line_returns_its_piece_and_both_pieces_a_needle_runs_across(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", block)
    path = tmp_path / "s.log"
    # In pieces of 10: "aaaaaaaaaa", "aaaNO MATC", "HING SERVE", "Rbbbbbbbbb", "bbbFAILED ", "TO SCHEDUL", "E MODEL".
    line = "a" * 13 + "NO MATCHING SERVER" + "b" * 12 + "FAILED TO SCHEDULE MODEL"
    path.write_bytes(f"short\r\n{line}\r\nno matching server\n".encode())
    found = list(_source(path, 10).lines_mentioning(["no matching server", "failed to schedule model"]))
    assert found == [
        (2, "aaaNO MATC"),
        (2, "HING SERVE"),
        (2, "Rbbbbbbbbb"),
        (2, "bbbFAILED "),
        (2, "TO SCHEDUL"),
        (2, "E MODEL"),
        (3, "no matchin"),
        (3, "g server"),
    ]


@pytest.mark.parametrize("block", [3, 1 << 22])
def test_needles_added_during_a_scan_are_found_in_the_pieces_of_later_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", block)
    path = tmp_path / "s.log"
    path.write_text("failed m-a\n" + "x" * 7 + "m-a" + "x" * 7 + "\nm-a\n", encoding="utf-8")
    needles = logs.Needles(["failed"])
    found = []
    for lineno, piece in _source(path, 8).lines_mentioning(needles):
        found.append((lineno, piece))
        if "failed" in piece:
            needles.add("m-a")
    # The rest of line 1 was cut before "m-a" was asked for; in line 2 it runs across two pieces.
    assert found == [(1, "failed m"), (2, "xxxxxxxm"), (2, "-axxxxxx"), (3, "m-a")]


def test_the_first_long_line_is_named_once_per_file(tmp_path: Path) -> None:
    problems: list[InputProblem] = []
    long_log = tmp_path / "long.log"
    long_log.write_text("short\n" + "a" * 25 + "\n" + "b" * 30 + "\n", encoding="utf-8")
    other = tmp_path / "other.log"
    other.write_text("c" * 11, encoding="utf-8")
    normal = tmp_path / "normal.log"
    normal.write_text("d" * 10 + "\n", encoding="utf-8")
    for path in (long_log, other, normal):
        source = _source(path, 10, problems)
        for _ in range(2):
            list(source.lines())
            list(source.lines_mentioning(["a", "c", "zzz"]))
    assert problems == [
        InputProblem(
            "logs/long.log", "line 2 is longer than 10 characters (limit line-chars): read in pieces of 10 characters"
        ),
        InputProblem(
            "logs/other.log", "line 1 is longer than 10 characters (limit line-chars): read in pieces of 10 characters"
        ),
    ]


def test_the_scan_names_the_file_like_lines_does(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    path.write_bytes(b"x\n" + b"y" * (MIB + 1) + b"\n")
    problems: list[InputProblem] = []
    list(_source(path, problems=problems).lines_mentioning(["nothing"]))
    list(_source(path, problems=problems).lines())
    assert [p.reason for p in problems] == ["line 2 is longer than 1 MiB (limit line-chars): read in pieces of 1 MiB"]
    list(_source(path).lines())  # without a problems list nothing is recorded, and nothing fails


def test_a_line_of_exactly_the_limit_is_one_piece_whatever_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    path.write_text("a" * 10 + "\n" + "é" * 10 + "\r\n" + "b" * 10, encoding="utf-8")
    problems: list[InputProblem] = []
    for block in (3, 1 << 22):
        source = _source(path, 10, problems)
        assert list(source.lines()) == [(1, "a" * 10), (2, "é" * 10), (3, "b" * 10)]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(scan, "_SCAN_BLOCK", block)
            assert list(source.lines_mentioning(["a", "b"])) == [(1, "a" * 10), (2, "é" * 10), (3, "b" * 10)]
    assert problems == []


def test_pieces_keep_characters_whole_and_crlf_split_across_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", 4)
    path = tmp_path / "s.log"
    # 8 characters in 17 bytes, read 3 bytes at a time, so that the CR ends one read and its LF opens the next.
    path.write_bytes("ééé€€€ab\r".encode() + b"\nnx\r\n")
    source = _source(path, 3)
    assert list(source.lines()) == [(1, "ééé"), (1, "€€€"), (1, "ab"), (2, "nx")]
    assert list(source.lines_mentioning(["nx"])) == [(1, "ééé"), (1, "€€€"), (2, "nx")]


def test_read_line_pieces_for_a_log_still_being_written() -> None:
    # As the access-log reader uses it: LF ends a line, a CR before it is dropped, an unfinished last line is left.
    text = io.TextIOWrapper(io.BytesIO(b"one\r\n" + b"x" * 7 + b"\r\nunfinished"), encoding="utf-8", newline="\n")
    assert list(logs.read_line_pieces(text, 3, first_lineno=10, partial_last=False)) == [
        (10, "one"),
        (11, "xxx"),
        (11, "xxx"),
        (11, "x"),
        (12, "unf"),  # pieces of the unfinished line read before its end was seen
        (12, "ini"),
        (12, "she"),
    ]


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError):
        list(logs.lines_mentioning(path, ["a"], max_line_chars=0))
    with pytest.raises(ValueError):
        list(_source(path, 0).lines())


# ---- cost ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_line_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("one-line")
    return {size: _one_line_log(root / f"{size}.log", size * MIB) for size in (8, 32, 64)}


def _scan_seconds(path: Path) -> float:
    """CPU seconds of this process for one scan (other processes on the machine do not count), best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in logs.lines_mentioning(path, SCAN_NEEDLES):
            pass
        best = min(best, time.process_time() - started)
    return best


def test_a_64_mib_line_is_scanned_in_bounded_time_and_memory(one_line_logs: dict[int, Path]) -> None:
    path = one_line_logs[64]
    tracemalloc.start()
    try:
        started = time.perf_counter()
        found = list(logs.lines_mentioning(path, SCAN_NEEDLES))
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # About 0.3 s on a 2-core machine; before pieces it was minutes (quadratic in the line's length).
    assert seconds < 20
    # The returned pieces (64 MiB in all) are kept by this test; below that, the scan itself held little.
    assert peak < sum(len(piece) for _, piece in found) + 32 * MIB
    assert [lineno for lineno, _ in found] == [1] * 64
    assert all(len(piece) == MIB for _, piece in found[:-1])
    assert sum(len(piece) for _, piece in found) == path.stat().st_size


def test_a_64_mib_line_comes_back_whole_from_its_pieces(one_line_logs: dict[int, Path]) -> None:
    path = one_line_logs[64]
    problems: list[InputProblem] = []
    digest = hashlib.sha256()
    count = 0
    tracemalloc.start()
    try:
        for lineno, piece in _source(path, problems=problems).lines():
            assert lineno == 1 and len(piece) <= MIB
            digest.update(piece.encode())
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB
    assert count == 64
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.reason for p in problems] == ["line 1 is longer than 1 MiB (limit line-chars): read in pieces of 1 MiB"]


def test_scan_time_grows_linearly_with_the_length_of_a_line(one_line_logs: dict[int, Path]) -> None:
    # Four times the bytes: about four times the time when linear, sixteen when quadratic (as it was).
    ratio = _scan_seconds(one_line_logs[32]) / _scan_seconds(one_line_logs[8])
    assert ratio < 8, ratio
