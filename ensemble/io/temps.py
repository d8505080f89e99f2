"""Temporary files and folders that name their writer, and the removal of those a killed writer
left.

Every temp is `.NAME.ens-tmp-HOST-PID-START-RANDOM` beside its target NAME (HOST a tag of the
host name, PID and START the writing process; `ensemble.io.processes`). Before a process
writes a temp into a folder it removes the stale temps there (in a folder of thousands of files,
the first time only): those of a process of this host that is no longer running. A live
writer's temp, or another host's, is never touched. Lock files (`ensemble.io.locks`) whose
holder is gone go with them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from ensemble.io import locks
from ensemble.io.processes import host_tag, running, writer_tag

MARK = ".ens-tmp-"
_NAME = re.compile(r"\.ens-tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)-[a-z0-9_]+$")
_BIG = 1000  # entries: a folder this full is swept the first time only (images, not outputs)
_big: set[str] = set()


def _prefix(target: Path) -> str:
    return f".{target.name}{MARK}{writer_tag()}-"


def temp_file(target: Path) -> Path:
    """Create an empty temp file beside `target` (its folder is made if needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target.parent)
    fd, name = tempfile.mkstemp(prefix=_prefix(target), dir=target.parent)
    os.close(fd)
    return Path(name)


def temp_folder(target: Path) -> Path:
    """Create an empty temp folder beside `target` (its folder is made if needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target.parent)
    return Path(tempfile.mkdtemp(prefix=_prefix(target), dir=target.parent))


def is_stale(name: str) -> bool:
    """Whether `name` is a temp whose writer, a process of this host, is gone."""
    match = _NAME.search(name)
    if match is None or match["host"] != host_tag():
        return False
    return not running(int(match["pid"]), int(match["start"]))


def remove_stale(folder: Path) -> list[Path]:
    """Remove the stale temps and free lock files in `folder`; the paths removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    if len(entries) > _BIG:
        _big.add(os.path.abspath(folder))
    for entry in entries:
        path = Path(entry.path)
        if entry.name.endswith(locks.SUFFIX):
            if locks.remove_if_free(path):
                removed.append(path)
        elif MARK in entry.name and is_stale(entry.name):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(path)
    return removed


def _sweep(folder: Path) -> None:
    """`remove_stale(folder)` before a temp is written there (a big folder: the first time)."""
    if os.path.abspath(folder) not in _big:
        remove_stale(folder)
