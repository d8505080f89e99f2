"""One writer at a time: a lock file beside the folder or file being written, naming its holder.

`hold(TARGET, purpose)` takes `.NAME.ens-lock` beside TARGET with flock, which the kernel
releases when the holder ends, however it ends (a SIGKILL included), and writes the holder into
it: pid, host, command, since when and what for. Another process gets `LockHeld` naming the
holder, at once or, with `wait`, when its turn has not come in that many seconds. The holder
removes the file before it lets go (a waiter that locked the removed file sees that and takes
the new one); a file left by a killed holder is taken over by the next process, or removed by
the next writer into its folder (`ensemble.io.temps`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ensemble.errors import InputError
from ensemble.io.processes import host_name, running

SUFFIX = ".ens-lock"
GRACE = 1.0  # seconds a waiter waits before it says whom it waits for
_POLL = 0.05
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
_COMMAND_CHARS = 300
_HELD: set[Path] = set()  # the lock files this process holds (resolved paths)


class LockHeld(InputError):
    """The target is in use by another process (the message names it)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its lock file says."""

    pid: int
    host: str
    command: str
    since: str
    purpose: str

    def describe(self) -> str:
        """'training, by pid 12 on host since 2026-12-03 14:05:03 (ens train-all ...)'."""
        gone = ""
        if self.host == host_name() and not running(self.pid):
            gone = " (no longer running: a process it started holds the lock)"
        return (
            f"{self.purpose}, by pid {self.pid}{gone} on {self.host} since {self.since} "
            f"({self.command})"
        )


def lock_path(target: str | Path) -> Path:
    """The lock file of `target`: `.NAME.ens-lock` beside it."""
    target = Path(target).resolve()
    return target.parent / f".{target.name}{SUFFIX}"


@contextlib.contextmanager
def hold(target: str | Path, purpose: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock of `target` for the block; `purpose` says what the holder does.

    When another process holds it: LockHeld at once, or after waiting up to `wait` seconds
    (math.inf: as long as it takes; after `GRACE` seconds a line on stderr names the holder).
    """
    path = lock_path(target)
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    fd = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = _acquire(Path(target), path, wait)
            _HELD.add(path)
            _write_holder(fd, purpose)
        except OSError as error:
            if error.errno not in _UNSUPPORTED:
                raise InputError(path, f"cannot write the lock file ({error.strerror})") from None
            warning = "this file system cannot lock: nothing stops a second writer here"
            print(f"warning: {path}: {warning}", file=sys.stderr)
        yield
    finally:
        if fd is not None:
            _HELD.discard(path)
            _release(fd, path)
        for folder in created:  # innermost first; only while empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def remove_if_free(path: Path) -> bool:
    """Remove the lock file `path` when no process holds it; True when it was removed.

    Never one this process holds: where flock is emulated by per-process POSIX locks (NFS,
    CIFS) locking it again would succeed, and closing that descriptor would drop the hold.
    """
    if path.resolve() in _HELD:
        return False
    try:
        fd = _lock_once(path, create=False)
    except OSError:
        return False
    if fd is None:
        return False
    _release(fd, path)
    return True


def read_holder(path: Path) -> Holder | None:
    """The holder a lock file names (None when it is empty, gone or unreadable)."""
    try:
        return Holder(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _acquire(target: Path, path: Path, wait: float) -> int:
    """A descriptor of `path` locked by this process (LockHeld when another holds it)."""
    started = time.monotonic()
    told = False
    while True:
        try:
            fd = _lock_once(path, create=True)
        except FileNotFoundError:  # its folder went with the last holder (it made it)
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        if fd is not None:
            return fd
        holder = read_holder(path)
        waited = time.monotonic() - started
        gone = holder is not None and holder.host == host_name() and not running(holder.pid)
        # locked a moment ago and not yet written, or a dead holder's file locked a moment by
        # the clean-up of another writer (remove_if_free): try again before refusing
        if (holder is None or gone) and waited < GRACE:
            time.sleep(_POLL)
            continue
        who = holder.describe() if holder else f"its holder is not named in {path}"
        if waited >= wait:
            raise LockHeld(target, _refusal(who, wait))
        if not told and waited >= GRACE:
            print(f"waiting for {target}: in use ({who})", file=sys.stderr, flush=True)
            told = True
        time.sleep(_POLL)


def _refusal(who: str, wait: float) -> str:
    if wait > 0:
        return f"still in use after waiting {wait:g} s: {who}"
    return f"in use by another process: {who}; run this command again when it has ended"


def _lock_once(path: Path, create: bool) -> int | None:
    """`path` opened and locked, or None when another process holds it (or, without `create`,
    when there is no such file)."""
    while True:
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, path):
            return fd
        os.close(fd)  # its holder removed it meanwhile: lock the file now there
        if not create:
            return None


def _is_current(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def _write_holder(fd: int, purpose: str) -> None:
    argv = list(sys.argv) or ["?"]
    name = Path(argv[0]).name
    command = " ".join(["ens" if name == "__main__.py" else name, *argv[1:]])
    if len(command) > _COMMAND_CHARS:
        command = command[: _COMMAND_CHARS - 3] + "..."
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    holder = Holder(os.getpid(), host_name(), command, since, purpose)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(asdict(holder)).encode("utf-8"), 0)


def _release(fd: int, path: Path) -> None:
    """Remove the lock file (while still holding it), then let go."""
    try:
        if _is_current(fd, path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)
