"""The files of a bundle directory that may be read: regular files reached without following a symbolic link.

A bundle is often someone else's support bundle. A symbolic link in it (`logs/ns/pod/c.log -> /etc/passwd`, or a
linked folder) would make the reader, and `bundle serve` after it, hand out a file from outside the bundle; a FIFO
would block the reader forever. Links and special files are therefore never opened: each is named as an input
problem, and the rest of the bundle is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlops_trace.findings import InputProblem


def bundle_files(root: Path, folder: str, problems: list[InputProblem]) -> list[Path]:
    """Every regular file below `root/folder`, sorted; links and special files become `problems` instead."""
    top = root / folder
    try:
        top_mode = os.lstat(top).st_mode
    except OSError:
        return []
    if stat.S_ISLNK(top_mode):
        problems.append(InputProblem(folder, "symbolic link: not followed (a bundle is read only inside itself)"))
        return []
    if not stat.S_ISDIR(top_mode):
        return []
    found: list[Path] = []
    for directory, subdirs, names in os.walk(top, followlinks=False, onerror=None):
        here = Path(directory)
        for name in sorted(subdirs):
            if (here / name).is_symlink():
                problems.append(InputProblem(_rel(root, here / name), "symbolic link: not followed"))
        for name in names:
            path = here / name
            try:
                mode = os.lstat(path).st_mode
            except OSError as exc:
                problems.append(InputProblem(_rel(root, path), f"cannot read: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(mode):
                problems.append(InputProblem(_rel(root, path), "symbolic link: not followed"))
            elif not stat.S_ISREG(mode):
                problems.append(InputProblem(_rel(root, path), "not a regular file: not read"))
            else:
                found.append(path)
    return sorted(found)


def is_plain_file(path: Path) -> bool:
    """A regular file that is not a symbolic link (for single files such as `bundle.yaml`)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
