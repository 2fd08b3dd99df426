"""Finding the few lines a check needs in a large log: `lines_mentioning` searches the file's bytes for needles
(`Needles`, which may grow during the scan) and decodes only the lines that may mention one, numbered and cut into
pieces exactly as `pieces.read_line_pieces` gives them.
"""

from __future__ import annotations

import codecs
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from mlops_trace.limits import DEFAULT_LIMITS

__all__ = ["Needles", "lines_mentioning"]


_SCAN_BLOCK = 1 << 22
# Bytes that may make a line's parsed message hold a needle its raw bytes do not: non-ASCII (Unicode case folding,
# as re.IGNORECASE applies it), escapes that can spell letters (Go's hex, unicode and octal escapes, JSON's unicode
# escape: a backslash before one of _LETTER_ESCAPES) and terminal colour codes (stripped before parsing).
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_LETTER_ESCAPES = frozenset(b"xuU01234567")
_LF = ord("\n")
_CR = ord("\r")


class Needles:
    """The needles of a `lines_mentioning` scan, which may grow while it runs: a needle added after a line was
    returned is searched for from the next line on. A check that only cares about lines naming things it has already
    seen (a model that failed) adds their names as it meets them, instead of asking for every routine line."""

    def __init__(self, needles: Iterable[str] = ()) -> None:
        self.items: list[bytes] = []
        for needle in needles:
            self.add(needle)

    def add(self, needle: str) -> None:
        """Look for `needle` too (ASCII without line breaks; case-insensitive like the others)."""
        encoded = needle.lower().encode("ascii")
        if encoded and encoded not in self.items:
            self.items.append(encoded)

    def __len__(self) -> int:
        return len(self.items)


def lines_mentioning(
    path: Path,
    needles: Iterable[str] | Needles,
    *,
    max_line_chars: int = DEFAULT_LIMITS.line_chars,
    on_long_line: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, str]]:
    """The `(line number, line)` pairs of `path` that may mention one of `needles`, numbered, decoded and cut into
    pieces exactly as `LogSource.lines()` gives them (UTF-8 with replacement, universal newlines, line end stripped;
    a line longer than `max_line_chars` characters in pieces of that many, each with the line's number).

    Every line (or piece) whose parsed message or raw text contains a needle case-insensitively is returned, so a
    check that only acts on such lines sees the same lines through this as through `lines()`; a few more may come
    back (lines with non-ASCII bytes, letter escapes or colour codes are always returned, as their parsed text may
    differ from their bytes, and so is every piece that a needle running across pieces touches). The file is read
    in large binary blocks and searched with `bytes.find`, so a scan costs about what `grep -c -i` costs whatever
    the line lengths, and only the returned lines are decoded. `on_long_line` is called once, with the number of
    the first line longer than `max_line_chars`. Needles must be ASCII without line breaks; given as a `Needles`,
    they may be added to between lines (a long line's pieces already cut are not searched again).
    """
    wanted = needles if isinstance(needles, Needles) else Needles(needles)
    limit = max_line_chars
    noted = False

    def note(lineno: int) -> None:
        nonlocal noted
        if on_long_line is not None and not noted:
            noted = True
            on_long_line(lineno)

    if limit < 1:
        raise ValueError(f"max_line_chars must be positive (got {limit})")
    # Every complete line of a block then lies within one read, except its first (which began in an earlier read
    # and is checked), so no line longer than `limit` bytes ever reaches `_block_candidates`.
    read_size = min(_SCAN_BLOCK, limit)
    lineno = 0  # lines before `carry`, or before the long line being read
    # The start of a line that began in earlier reads, in parts joined once its end is read: never longer than
    # `limit` + 1 bytes, nor holding a line end but maybe a CR at its very end.
    carry: list[bytes] = []
    carry_size = 0
    long_line: _LongLine | None = None
    after_cr = False  # the last read ended a line with a CR: a LF opening this one is the rest of that line end
    with path.open("rb") as handle:
        while True:
            data = handle.read(read_size)
            if after_cr:
                after_cr = False
                if data[:1] == b"\n":
                    data = data[1:]
                    if not data:
                        continue
            if long_line is not None:
                stop = _line_end(data, 0, len(data))
                if stop < 0:
                    yield from long_line.feed(data, final=not data)
                    if not data:
                        return
                    continue
                yield from long_line.feed(data[:stop], final=True)
                long_line = None
                lineno += 1
                data, after_cr = _past_line_end(data, stop)
                if not data:
                    continue
            if (
                carry
                and data
                and carry_size + len(data) <= limit
                and not carry[-1].endswith(b"\r")
                and _line_end(data, 0, len(data)) < 0
            ):
                carry.append(data)
                carry_size += len(data)
                continue
            block = b"".join([*carry, data]) if carry else data
            carry = []
            if not block:
                return
            if len(block) > limit and _line_end(block, 0, limit + 1) < 0:
                long_line = _LongLine(lineno + 1, limit, wanted, note)
                stop = _line_end(block, limit + 1, len(block))
                if stop < 0:
                    yield from long_line.feed(block, final=not data)
                    if not data:
                        return
                    continue
                yield from long_line.feed(block[:stop], final=True)
                long_line = None
                lineno += 1
                block, after_cr = _past_line_end(block, stop)
                if not block:
                    continue
            carriage = b"\r" in block
            end = _last_line_end(block) + 1 if data else len(block)
            if end <= 0:
                carry, carry_size = [block], len(block)  # no complete line yet
                continue
            yield from _block_candidates(block, end, lineno, wanted, carriage)
            if not data:
                return
            lineno += _count_line_ends(block, 0, end, carriage)
            if end < len(block):
                carry, carry_size = [block[end:]], len(block) - end


def _line_end(data: bytes, start: int, end: int) -> int:
    """Index of the first LF or CR in `data[start:end]`, or -1."""
    newline = data.find(b"\n", start, end)
    carriage = data.find(b"\r", start, newline if newline >= 0 else end)
    return carriage if carriage >= 0 else newline


def _past_line_end(data: bytes, stop: int) -> tuple[bytes, bool]:
    """What follows the line end at `data[stop]` (CRLF counting as one), and whether `data` ends in that line end's
    CR, so that a LF opening the next read still belongs to it."""
    after = stop + 1
    if data[stop] == _CR:
        if after == len(data):
            return b"", True
        if data[after] == _LF:
            after += 1
    return data[after:], False


def _last_line_end(block: bytes) -> int:
    """Index of the last byte that surely ends a line (a CR at the very end may be half of a CRLF)."""
    newline = block.rfind(b"\n")
    carriage = block.rfind(b"\r", 0, len(block) - 1)
    return max(newline, carriage)


def _count_line_ends(block: bytes, start: int, end: int, carriage: bool) -> int:
    count = block.count(b"\n", start, end)
    if carriage:
        count += block.count(b"\r", start, end) - block.count(b"\r\n", start, end)
    return count


def _next_letter_escape(data: bytes, start: int, end: int) -> int:
    """Index of the first backslash in `data[start:end]` that opens an escape which may spell a letter, or -1."""
    position = data.find(b"\\", start, end)
    while position >= 0 and not (position + 1 < end and data[position + 1] in _LETTER_ESCAPES):
        position = data.find(b"\\", position + 1, end)
    return position


def _unsure_finders(block: bytes) -> list[Callable[[int, int], int]]:
    """Functions `(start, end)` giving the next place in `block[start:end]` of a byte that may make a line's parsed
    text differ from its bytes (see _NON_ASCII), or -1."""

    def next_escape(start: int, end: int) -> int:
        return _next_letter_escape(block, start, end)

    def next_non_ascii(start: int, end: int) -> int:
        match = _NON_ASCII.search(block, start, end)
        return match.start() if match is not None else -1

    finders: list[Callable[[int, int], int]] = [partial(block.find, b"\x1b"), next_escape]
    return finders if block.isascii() else [*finders, next_non_ascii]


def _block_candidates(
    block: bytes, end: int, lineno: int, needles: Needles, carriage: bool
) -> Iterator[tuple[int, str]]:
    """Candidate lines among the complete lines `block[:end]`, the first of which is line `lineno + 1`.

    Each kind of hit (a needle, a colour code, ...) has a cursor, kept in a heap by its next place and moved on only
    past the line last returned, so the hits inside one line are not visited one by one and every byte is searched
    about once per needle, however long the line."""
    lowered = block.lower()
    finders: list[Callable[[int, int], int]] = [partial(lowered.find, needle) for needle in needles.items]
    finders += _unsure_finders(block)
    searched = len(needles)
    cursors = [(hit, index) for index, find in enumerate(finders) if (hit := find(0, end)) >= 0]
    heapq.heapify(cursors)
    counted_to = 0
    while cursors:
        position = cursors[0][0]
        # The previous line returned ended before `position`, and `counted_to` is its start.
        start = block.rfind(b"\n", counted_to, position) + 1
        if carriage:
            start = max(start, block.rfind(b"\r", counted_to, position) + 1)
        stop = block.find(b"\n", position, end)
        stop = end if stop < 0 else stop
        if carriage:
            cr = block.find(b"\r", position, stop)
            stop = cr if cr >= 0 else stop
        lineno += _count_line_ends(block, counted_to, start, carriage)
        counted_to = start
        yield lineno + 1, block[start:stop].decode("utf-8", errors="replace")
        if len(needles) > searched:  # the caller added needles: find them in the rest of the block too
            for needle in needles.items[searched:]:
                finders.append(partial(lowered.find, needle))
                hit = finders[-1](stop, end)
                if hit >= 0:
                    heapq.heappush(cursors, (hit, len(finders) - 1))
            searched = len(needles)
        while cursors and cursors[0][0] < stop:
            index = cursors[0][1]
            hit = finders[index](stop, end)
            if hit >= 0:
                heapq.heapreplace(cursors, (hit, index))
            else:
                heapq.heappop(cursors)


class _LongLine:
    """A line of `lines_mentioning` longer than its limit in bytes, fed in byte chunks as the scan reads it and cut,
    as `read_line_pieces` cuts it, into pieces of `limit` characters; `feed` yields the pieces that may mention a
    needle. Holds one piece and a needle's length of what follows it, which is needed to see a needle run across
    the end of a piece (every piece it touches is then returned)."""

    def __init__(self, lineno: int, limit: int, needles: Needles, on_long_line: Callable[[int], None]) -> None:
        self.lineno = lineno
        self.limit = limit
        self.needles = needles
        self.on_long_line = on_long_line
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # decoded and not yet cut
        self.spill = 0  # characters after the last piece cut that a needle begun in it (or before) still covers

    def feed(self, chunk: bytes, final: bool) -> Iterator[tuple[int, str]]:
        # Decoded at most `limit` bytes at a time, so `text` never holds much more than a piece.
        for begin in range(0, len(chunk), self.limit):
            self.text += self.decoder.decode(chunk[begin : begin + self.limit])
            yield from self._cut(final=False)
        if final:
            self.text += self.decoder.decode(b"", final=True)
            yield from self._cut(final=True)

    def _cut(self, final: bool) -> Iterator[tuple[int, str]]:
        while True:
            reach = max((len(needle) for needle in self.needles.items), default=1) - 1
            more = len(self.text) > self.limit  # the line goes on after a piece
            if more and (final or len(self.text) >= self.limit + reach):
                self.on_long_line(self.lineno)
                piece_end = self.limit
            elif final and self.text:
                piece_end = len(self.text)
            else:
                return
            piece = self.text[:piece_end]
            if self._wanted(piece, self.text[piece_end : piece_end + reach]):
                yield self.lineno, piece
            self.text = self.text[piece_end:]

    def _wanted(self, piece: str, after: str) -> bool:
        """Whether `piece` (followed in the line by `after`) may mention a needle; notes how far a needle runs on."""
        # One byte per character, so that positions in `window` are positions in the text.
        window = (piece + after).encode("ascii", "replace").lower()
        size = len(piece)
        wanted = self.spill > 0 or not piece.isascii()
        spill = self.spill - size
        for needle in self.needles.items:
            reach = size + len(needle) - 1
            crossing = window.rfind(needle, max(0, size - len(needle) + 1), reach) if after else -1
            if crossing >= 0:
                wanted = True
                spill = max(spill, crossing + len(needle) - size)
            elif not wanted and window.find(needle, 0, reach) >= 0:
                wanted = True
        self.spill = max(spill, 0)
        return wanted or window.find(b"\x1b", 0, size) >= 0 or _next_letter_escape(window, 0, size) >= 0
