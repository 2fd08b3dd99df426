"""Reading the lines of a text handle in pieces of bounded length: a log line may be hundreds of megabytes, and no
more than about one piece of it is ever held. `scan.lines_mentioning` cuts lines into the same pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TextIO

__all__ = ["read_line_pieces"]


def read_line_pieces(
    handle: TextIO,
    max_chars: int,
    *,
    first_lineno: int = 1,
    on_long_line: Callable[[int], None] | None = None,
    partial_last: bool = True,
) -> Iterator[tuple[int, str]]:
    """`(line number, text)` for each line of the text `handle`, without its line end; a line longer than
    `max_chars` characters comes as pieces of `max_chars` (the last one shorter), in order, all with its number, so
    that joining them gives the line back and no more than about one piece is ever held.

    `on_long_line` is called with the number of the first such line (once). A trailing `\\r` is removed too, for
    handles opened with `newline="\\n"`. With `partial_last` False, a last line without a line end (still being
    written) is left out, but pieces of it read before its end was seen have already been returned.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive (got {max_chars})")
    lineno = first_lineno - 1
    held: str | None = None  # a full-size piece: whether its line goes on is known only from the next read
    noted = False
    for chunk in iter(partial(handle.readline, max_chars), ""):
        ended = chunk[-1] == "\n"
        if held is None:
            lineno += 1
            if ended:
                yield lineno, chunk.rstrip("\r\n")
                continue
        else:
            text = chunk.rstrip("\r\n") if ended else chunk
            if ended and not text:  # the line ended right after the held piece: it was not too long
                yield lineno, held.rstrip("\r")
                held = None
                continue
            if on_long_line is not None and not noted:
                noted = True
                on_long_line(lineno)
            yield lineno, held
            held = None
            if ended:
                yield lineno, text
                continue
        if len(chunk) >= max_chars:
            held = chunk
        elif partial_last:  # the last line, without a line end
            yield lineno, chunk
    if held is not None and partial_last:
        yield lineno, held
