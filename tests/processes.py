"""Helpers for tests with several processes: a lock held by another process, a temp whose
writer has ended, a command killed at a chosen point, the children of a process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ensemble.io.processes import running

_HOLD = """
import sys
from ensemble.io.locks import hold
with hold(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""

_TEMPS = """
import sys
from pathlib import Path
from ensemble.io.temps import temp_file, temp_folder
for target, kind in zip(sys.argv[1::2], sys.argv[2::2]):
    print((temp_folder if kind == "folder" else temp_file)(Path(target)))
"""

# `ens ARGS` that SIGKILLs itself as it is about to move a file named KILL_AT into place:
# the moment an atomic write has its temp complete, the worst moment for a kill.
_KILLED_AT = """
import os, signal, sys
from pathlib import Path
replace = os.replace
def replace_or_die(source, target):
    if Path(target).name == os.environ["KILL_AT"]:
        os.kill(os.getpid(), signal.SIGKILL)
    replace(source, target)
os.replace = replace_or_die
from ensemble.cli import main
sys.argv = ["ens", *sys.argv[1:]]
main()
"""


@contextlib.contextmanager
def held_by_another_process(target: Path, purpose: str = "testing") -> Iterator[int]:
    """Another process holds the lock of `target` (`ensemble.io.locks`) for the block; its pid."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(target), purpose],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "held\n"
        yield child.pid
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0


def temps_of_an_ended_writer(*targets: tuple[Path, str]) -> list[Path]:
    """Temps beside each target (kind "file" or "folder") made by a process that has ended."""
    args = [str(item) for target in targets for item in target]
    done = subprocess.run(
        [sys.executable, "-c", _TEMPS, *args], capture_output=True, text=True, check=True
    )
    return [Path(line) for line in done.stdout.splitlines()]


def killed_while_writing(args: list[str], name: str, cwd: Path) -> subprocess.CompletedProcess:
    """`ens ARGS` in a child process, SIGKILLed as it moves the file `name` into place."""
    return subprocess.run(
        [sys.executable, "-c", _KILLED_AT, *args],
        cwd=cwd,
        env={**os.environ, "KILL_AT": name},
        capture_output=True,
        text=True,
    )


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_until(condition, what: str, limit: float = 120.0) -> None:
    """Poll `condition` until it holds (AssertionError naming `what` after `limit` seconds: a
    hang, not a timing)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {limit:g} s"
        time.sleep(0.02)


def all_ended(pids: list[int]) -> bool:
    """Whether none of `pids` is running (zombies count as ended)."""
    return not any(running(pid) for pid in pids)
