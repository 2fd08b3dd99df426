"""Unpack a bundle archive (.tar, .tar.gz, .tar.bz2, .tar.xz) into a directory, within the archive limits.

An archive is untrusted: a 4 MiB gzip can expand to 4 GiB, a tar can hold a million entries, a member can name a
path outside the target or be a device. So members are unpacked one at a time with tarfile's `data` filter (no
absolute paths, no links out, no special files), while counting entries and bytes against `archive-entries` and
`archive-bytes`; the decompressed stream itself is capped too, so one huge header cannot fill memory. Hitting a
limit stops the unpacking and names the archive; what was unpacked by then is still read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
from pathlib import Path
from typing import IO, Any

from mlops_trace.errors import InputError
from mlops_trace.limits import InputLimits, human_size
from mlops_trace.findings import InputProblem

# Headers, padding and PAX records are read on top of the members' own bytes: allow them this much.
_HEADER_ALLOWANCE = 64 * 1024 * 1024


class _StreamTooLarge(Exception):
    pass


class _CappedReader:
    """A decompressed stream that refuses to be read past `cap` bytes (tarfile reads through it)."""

    def __init__(self, raw: IO[bytes], cap: int) -> None:
        self._raw = raw
        self._cap = cap

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._cap + 1 - self._raw.tell()
        data = self._raw.read(size)
        if self._raw.tell() > self._cap:
            raise _StreamTooLarge
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._raw.seek(offset, whence)
        if position > self._cap:
            raise _StreamTooLarge
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()


def _decompressed(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        magic = probe.read(6)
    opener: Any
    if magic.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif magic.startswith(b"BZh"):
        opener = bz2.open
    elif magic.startswith(b"\xfd7zXZ\x00"):
        opener = lzma.open
    else:
        opener = open
    handle: IO[bytes] = opener(path, "rb")
    return handle


def unpack_archive(path: Path, target: Path, limits: InputLimits, problems: list[InputProblem]) -> int:
    """Unpack `path` into `target`; returns the members unpacked. InputError when nothing at all could be."""
    display = str(path)
    unpacked = entries = total_bytes = 0
    stream_cap = limits.archive_bytes + _HEADER_ALLOWANCE
    try:
        raw = _decompressed(path)
    except OSError as exc:
        raise InputError(f"{display}: cannot read: {exc.strerror or exc}") from exc
    reader = _CappedReader(raw, stream_cap)
    try:
        with tarfile.open(fileobj=reader, mode="r:") as archive:  # type: ignore[call-overload]
            for member in archive:
                entries += 1
                if entries > limits.archive_entries:
                    problems.append(InputProblem(display, f"more than {limits.archive_entries} entries (limit "
                                                 "archive-entries): the rest was not unpacked"))
                    break
                if member.isfile():
                    total_bytes += member.size
                    if total_bytes > limits.archive_bytes:
                        problems.append(InputProblem(display, f"unpacks to more than "
                                                     f"{human_size(limits.archive_bytes)} (limit archive-bytes) at "
                                                     f"{member.name}: the rest was not unpacked"))
                        break
                try:
                    archive.extract(member, target, filter="data", set_attrs=False)
                except tarfile.FilterError as exc:
                    problems.append(InputProblem(display, f"{member.name}: not unpacked: {exc}"))
                    continue
                unpacked += 1
    except _StreamTooLarge:
        problems.append(InputProblem(display, f"decompresses to more than {human_size(stream_cap)} (limit "
                                     "archive-bytes): the rest was not unpacked"))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        if not unpacked:
            raise InputError(f"{display}: cannot unpack: {_one_line(exc)}") from exc
        problems.append(InputProblem(display, f"cannot unpack past entry {entries}: {_one_line(exc)}"))
    finally:
        reader.close()
    return unpacked


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text
