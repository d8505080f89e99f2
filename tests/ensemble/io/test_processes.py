"""Processes: a pid that ended (or was reused) is not running; workers end with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ensemble.io.processes import running, start_ticks
from tests.processes import all_ended, children_of, wait_until


def test_running_tells_this_process_from_an_ended_one_and_from_a_reused_pid() -> None:
    assert running(os.getpid(), start_ticks(os.getpid()))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not running(child.pid)
    assert not running(os.getpid(), start_ticks(os.getpid()) + 1)  # same pid, later process


_POOL = """
import os, sys, time
from pathlib import Path
from joblib import delayed
from ensemble.io.processes import process_pool

def nap(index):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(600)

if __name__ == "__main__":
    list(process_pool(2)(delayed(nap)(index) for index in range(4)))
"""


def test_worker_processes_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _POOL, str(tmp_path)])
    wait_until(lambda: len(list(tmp_path.iterdir())) == 2, "both workers at work")
    workers = [int(path.name) for path in tmp_path.iterdir()]
    assert set(workers) <= set(children_of(parent.pid))
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    wait_until(lambda: all_ended(workers), "the workers ended")
