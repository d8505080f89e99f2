"""The errors a command reports without a traceback: bad input, a run that cannot finish, and
a full disk (named by the file being written)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

# the problem named for a file whose lists or tables nest deeper than the parser's recursion
TOO_DEEP = "nested too deeply: lists or tables inside one another, hundreds of levels deep"
# the problem named for a number that Python refuses to convert (int_max_str_digits)
TOO_MANY_DIGITS = f"a number with more than {sys.get_int_max_str_digits():,} digits"
# errno -> the problem named for it: a write that failed because the disk cannot take it
_FULL_DISK = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


class InputError(ValueError):
    """Bad user input: names the file, the line (1-based, header = 1) and the problem."""

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {problem}")


class TrainingError(RuntimeError):
    """A training run that cannot finish: names the run and why."""

    def __init__(self, run: str, reason: str) -> None:
        self.run, self.reason = run, reason
        super().__init__(f"{run}: {reason}")


def full_disk(error: BaseException) -> str | None:
    """The problem ('no space left on device', ...) when `error` is a full or read-only disk."""
    return _FULL_DISK.get(error.errno) if isinstance(error, OSError) else None


def full_disk_error(path: str | Path, error: OSError, needed: int | None = None) -> InputError:
    """The InputError for writing `path` on a full disk, with the bytes `needed` when known."""
    problem = full_disk(error) or error.strerror or str(error)
    if needed is not None:
        problem += f" ({needed / 1e6:,.1f} MB needed)"
    return InputError(path, problem)
