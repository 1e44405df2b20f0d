"""The local "upload": find input files and copy them unchanged into ``OUT/ingest/``."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from imgpipe.records import INGEST_PREFIX


@dataclass(frozen=True)
class LocalInput:
    """A directory entry below the input directory.

    ``regular`` is false for symlinks, FIFOs, sockets and devices: those are never opened
    (a FIFO would block, a symlink may point outside the input or loop).
    """

    path: Path
    key: str
    regular: bool
    size: int


def scan_inputs(root: Path, exclude: Path | None = None) -> list[LocalInput]:
    """Every entry below ``root``, sorted by key; directories are walked, not followed.

    ``exclude`` (the output directory, when it lies inside the input) is skipped so a run
    never ingests its own output.
    """
    found: list[LocalInput] = []
    excluded = exclude.resolve() if exclude is not None else None

    def walk(directory: Path) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    if excluded is None or path.resolve() != excluded:
                        walk(path)
                    continue
                key = INGEST_PREFIX + path.relative_to(root).as_posix()
                found.append(LocalInput(path, key, stat.S_ISREG(info.st_mode), info.st_size))

    walk(root)
    return sorted(found, key=lambda item: item.key)


def describe_special(path: Path) -> str:
    """What kind of non-regular entry ``path`` is, for the quarantine message."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)!r}); links are not followed"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"
