"""One writer per run folder: the folders a command trains or re-predicts, locked for it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ensemble.io.locks import LockHeld, hold
from models import distributed


@contextlib.contextmanager
def lock_runs(run_dirs: Iterable[Path], purpose: str) -> Iterator[None]:
    """Hold the lock of every run folder for the block (LockHeld naming the holder of one in use).

    Under torchrun rank 0 holds the locks, and every rank stops when one is in use.
    """
    with contextlib.ExitStack() as stack:
        refused = None
        if distributed.is_main():
            try:
                for run_dir in run_dirs:
                    stack.enter_context(hold(run_dir, purpose))
            except LockHeld as error:
                refused = (error.path, error.problem)
        refused = distributed.broadcast(refused)
        if refused is not None:
            raise LockHeld(*refused)
        yield
