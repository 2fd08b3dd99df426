"""`lines_mentioning` returns, numbered and decoded as `LogSource.lines()` does, every line whose raw or parsed text
holds a needle; and the regex logfmt reader agrees with `read_logfmt_pairs`."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from mlops_trace.parsers import logs
from mlops_trace.parsers._common import read_logfmt_pairs
from mlops_trace.parsers.logs import formats, scan
from mlops_trace.snapshot.roles import Role
from mlops_trace.snapshot.snapshot import LogSource

NEEDLES = ("remove routes for model", " sync - calling for ", "no matching server")
PIECES = (
    b"Remove Routes for model x",
    b"REMOVE routes FOR model",
    b"experiment a sync - calling for model b",
    b"no matching server",
    b"\r",
    b"\n",
    b"\r\n",
    b"hello",
    b" ",
    b"\xe2\x82",
    b"\xc3\xa9",
    b"\\u0072emove",
    b"\\x41",
    b"\x1b[0m",
    b'time="x" level=info msg="',
    b'"',
    b"\xe2\x84\xaa",
    b"plain text line",
    b"\t",
    "remove routeſ for model".encode(),
)


def _mentions(line: str) -> bool:
    record = logs.parse_line(1, line)
    texts = (record.message or record.raw, line)
    return any(re.search(re.escape(n), t, re.IGNORECASE) for n in NEEDLES for t in texts)


@pytest.mark.parametrize("block", [1, 3, 64, 1 << 22])
def test_candidates_match_lines_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", block)
    rng = random.Random(block)
    for trial in range(150):
        path = tmp_path / f"{trial}.log"
        path.write_bytes(b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 50))))
        every = dict(LogSource("ns", "pod", "scheduler", Role.SCHEDULER, path, "x").lines())
        found = list(logs.lines_mentioning(path, NEEDLES))
        assert [n for n, _ in found] == sorted({n for n, _ in found})
        assert all(every.get(n) == text for n, text in found), path.read_bytes()
        chosen = dict(found)
        assert all(n in chosen for n, line in every.items() if _mentions(line)), path.read_bytes()


def test_plain_lines_without_needles_are_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    path.write_text(
        'time="t" level=info msg="Handle vanilla"\n' * 1000
        + 'time="t" level=info msg="Remove Routes for model m"\r\nlast',
        encoding="utf-8",
    )
    assert list(logs.lines_mentioning(path, NEEDLES)) == [(1001, 'time="t" level=info msg="Remove Routes for model m"')]


def test_regex_logfmt_reader_agrees_with_the_character_loop() -> None:
    rng = random.Random(3)
    alphabet = ["a", "b", "=", '"', " ", "\t", "x", "ü", "key", "msg", "level", "\r"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 25)))
        assert formats._logfmt_pairs(text) == read_logfmt_pairs(text), text


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 22])
def test_needles_added_during_a_scan_are_found_from_the_next_line_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(scan, "_SCAN_BLOCK", block)
    path = tmp_path / "s.log"
    path.write_text(
        "load m-a\n"  # before the failure: not asked for yet
        "failed to schedule model m-a\n"
        "routine m-b\n"
        "load M-A again\n"  # after it: found, case-insensitively
        "failed to schedule model m-a\n"  # one line holding both needles comes back once
        "load m-a last",
        encoding="utf-8",
    )
    needles = logs.Needles(["failed to schedule model"])
    seen = []
    for lineno, line in logs.lines_mentioning(path, needles):
        seen.append(lineno)
        if line.startswith("failed"):
            needles.add(line.rsplit(" ", 1)[1])
    assert seen == [2, 4, 5, 6]
    assert len(needles) == 2  # adding a needle twice keeps one
