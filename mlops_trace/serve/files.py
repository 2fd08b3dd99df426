"""Opening a bundle's file for `bundle serve`: only a regular file reached from the bundle root without a link.

The bundle reader already leaves out links and special files, but the server opens files again on each request (a
log, a config_dump), long after the bundle was read, so it checks once more where it opens: each directory on the way
is opened relative to the one before with `O_NOFOLLOW`, then the file itself. A link anywhere on the path (a linked
log `-> /etc/passwd`, a linked folder), a `..`, or a file swapped for a link since the bundle was read is refused,
with no window between the check and the open; a FIFO or device is refused without blocking on it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class RefusedFile(Exception):
    """A file the server will not open: outside the bundle, behind a link, not a regular file, or missing."""

    def __init__(self, relative: str, reason: str) -> None:
        super().__init__(f"{relative}: {reason}")
        self.relative = relative
        self.reason = reason


_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO would otherwise wait for a writer; it changes nothing for a regular file.
_FILE_FLAGS = _NO_FOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def open_in_bundle(root: Path, relative: str) -> BinaryIO:
    """Open `root/relative` (a bundle-relative POSIX path) for binary reading, or raise `RefusedFile`."""
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        raise RefusedFile(relative, "not a plain path inside the bundle")
    try:
        # The root itself may be a link: the user named it, and everything below it is checked.
        directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RefusedFile(relative, f"bundle root unreadable: {exc.strerror or exc}") from None
    try:
        for part in parts[:-1]:
            below = _open_step(part, _NO_FOLLOW | os.O_DIRECTORY, directory, relative)
            os.close(directory)
            directory = below
        descriptor = _open_step(parts[-1], _FILE_FLAGS, directory, relative)
    finally:
        os.close(directory)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFile(relative, "not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _open_step(name: str, flags: int, directory: int, relative: str) -> int:
    try:
        return os.open(name, flags, dir_fd=directory)
    except OSError as exc:
        # O_NOFOLLOW on a link gives ELOOP; a link where a directory is expected gives ENOTDIR with O_DIRECTORY.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise RefusedFile(relative, "a symbolic link or not a directory on the way: not followed") from None
        if exc.errno == errno.ENOENT:
            raise RefusedFile(relative, "no longer in the bundle") from None
        raise RefusedFile(relative, f"cannot open: {exc.strerror or exc}") from None
