"""Is a path a regular file? Checked with os.stat before any open: a FIFO would hang a reader,
a device would be read (or, as an output, replaced) without end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ensemble.errors import InputError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_kind(path: str | Path) -> str | None:
    """'a FIFO', 'a character device', ... when `path` exists and is neither a regular file nor
    a folder (symlinks followed); None otherwise. Never opens the file."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def require_regular_file(path: str | Path) -> None:
    """InputError when `path` exists and is a folder, FIFO, device or socket (checked without
    opening it); a missing file is left to the reader."""
    kind = "a folder" if os.path.isdir(path) else special_file_kind(path)
    if kind is not None:
        raise InputError(path, f"is {kind}, not a regular file")


def require_file(path: str | Path, missing: str = "file not found") -> None:
    """InputError unless `path` is an existing regular file (checked without opening it)."""
    require_regular_file(path)
    if not os.path.isfile(path):
        raise InputError(path, missing)
