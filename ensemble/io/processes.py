"""Processes: who this one is (host, pid, start time), whether another is still running, and
worker processes that end with their parent.

A process is named by its pid and its start time (Linux: clock ticks after boot, from
/proc/PID/stat; 0 where unknown), so that a pid reused by a later process does not pass for the
writer that died (in a container, the next command often gets the same small pid).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joblib import Parallel

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_POLL_SECONDS = 0.5


@functools.cache
def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname()


@functools.cache
def host_tag() -> str:
    """A short tag of this machine and pid namespace (8 hex digits, safe in file names): two
    containers sharing a host name (host networking) do not share pids, so differ here."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{host_name()} {namespace}".encode()).hexdigest()[:8]


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot); None when it is gone or a zombie,
    0 where the system does not say (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else 0
    except (OSError, IndexError):
        return 0
    if fields[0] in ("Z", "X"):  # ended, not yet reaped by its parent
        return None
    return int(fields[19])


def running(pid: int, started: int = 0) -> bool:
    """Whether process `pid` of this host is running (and, with `started` known, is the process
    that started then rather than a later one with the same pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    now = start_ticks(pid)
    if now is None:
        return False
    return not (started and now and now != started)


@functools.cache
def _own_start(pid: int) -> int:
    return start_ticks(pid) or 0  # keyed by pid: a forked child is not its parent


def writer_tag() -> str:
    """HOST-PID-START of this process: what a temp name carries to say who writes it."""
    pid = os.getpid()
    return f"{host_tag()}-{pid}-{_own_start(pid)}"


def end_with_parent(parent: int) -> None:
    """Worker initializer: this process ends when process `parent` ends (even by SIGKILL).

    Linux: the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the
    parent pid. A parent that ended before this call ends the worker at once.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    os._exit(1)


def process_pool(n_jobs: int, **options: Any) -> Parallel:
    """A joblib Parallel of worker processes (loky) that end with this process."""
    from joblib import Parallel, parallel_config

    parent = os.getpid()
    with parallel_config(backend="loky", initializer=end_with_parent, initargs=(parent,)):
        return Parallel(n_jobs=n_jobs, **options)  # the backend is chosen here
