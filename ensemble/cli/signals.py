"""SIGTERM and SIGHUP stop a command the way Ctrl-C does: every cleanup runs, no temp is left."""

from __future__ import annotations

import signal
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(SystemExit):
    """The process was asked to stop by a signal; the exit code is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


def stop_cleanly_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into a Terminated exception in the main thread.

    The exception unwinds like KeyboardInterrupt, so atomic writes remove their temp files and
    partial outputs are cleaned up; it is a SystemExit, so no `except Exception` swallows it.
    """
    for signum in HANDLED:
        signal.signal(signum, _raise_terminated)
