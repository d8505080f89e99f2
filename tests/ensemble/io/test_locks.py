"""One writer at a time: a lock held by another process is refused with its holder named, waited
for, or taken over when its holder was killed; concurrent scores.csv updates lose nothing."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ensemble.errors import InputError
from ensemble.io.locks import LockHeld, hold, lock_path, read_holder, remove_if_free
from ensemble.io.processes import host_name
from ensemble.io.scores_table import read_scores
from ensemble.io.temps import remove_stale
from tests.helpers import write_demo_with_baseline
from tests.processes import held_by_another_process


def test_a_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    target = tmp_path / "R" / "a"
    with held_by_another_process(target, "training") as pid:
        with pytest.raises(LockHeld) as refused, hold(target, "training"):
            pass
        holder = read_holder(lock_path(target))
    message = str(refused.value)
    assert message.startswith(f"{target}: in use by another process: training, by pid {pid} ")
    assert f"on {host_name()} since {holder.since} (-c {target} training)" in message
    assert message.endswith("; run this command again when it has ended")
    assert list(tmp_path.iterdir()) == []  # the holder removed its lock file and folder


def test_a_waiting_process_takes_its_turn_or_says_whom_it_waited_for(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    holders: list[int] = []

    def wait_for_the_lock() -> None:
        with hold(target, "updating it", wait=600):
            holders.append(read_holder(lock_path(target)).pid)

    with held_by_another_process(target, "updating it") as pid:
        waited = f"still in use after waiting 0.2 s: updating it, by pid {pid} "
        with pytest.raises(LockHeld, match=waited), hold(target, "updating it", wait=0.2):
            pass
        waiter = threading.Thread(target=wait_for_the_lock)
        waiter.start()
        assert holders == []  # not while the other process holds it
    waiter.join()
    assert holders == [os.getpid()]
    assert list(tmp_path.iterdir()) == []


_KILLED_HOLDER = """
import os, sys
from ensemble.io.locks import hold
with hold(sys.argv[1], "training"):
    os.kill(os.getpid(), 9)
"""


def killed_holder(target: Path) -> int:
    """The pid of a process that took the lock of `target` and was SIGKILLed holding it."""
    child = subprocess.Popen([sys.executable, "-c", _KILLED_HOLDER, str(target)])
    assert child.wait(timeout=60) == -signal.SIGKILL
    return child.pid


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    target = tmp_path / "a"
    pid = killed_holder(target)
    assert read_holder(lock_path(target)).pid == pid  # its lock file stays behind
    with hold(target, "re-predicting"):
        assert read_holder(lock_path(target)).pid == os.getpid()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_left_by_a_killed_holder_is_removed_by_the_next_writer_there(
    tmp_path: Path,
) -> None:
    killed_holder(tmp_path / "a")
    with held_by_another_process(tmp_path / "b"):
        assert remove_stale(tmp_path) == [lock_path(tmp_path / "a")]
        assert lock_path(tmp_path / "b").exists()  # a live holder's stays


_UPSERT = """
import sys
from ensemble.io.scores_table import upsert_score_row
for row in range(int(sys.argv[3])):
    upsert_score_row(sys.argv[1], {"run": f"{sys.argv[2]}-{row}", "submission": "", "val": row})
"""


def test_concurrent_score_rows_from_several_processes_are_all_kept(tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    writers = [
        subprocess.Popen([sys.executable, "-c", _UPSERT, str(scores), f"p{i}", "15"])
        for i in range(4)
    ]
    assert [writer.wait(timeout=300) for writer in writers] == [0] * 4
    table = read_scores(scores)
    assert sorted(table["run"]) == sorted(f"p{i}-{row}" for i in range(4) for row in range(15))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_four_ens_score_updates_at_once_are_all_recorded(tmp_path: Path) -> None:
    write_demo_with_baseline(tmp_path)
    subs = []
    for i in range(4):
        subs.append(tmp_path / f"sub{i}.csv")
        shutil.copy(tmp_path / "base.csv", subs[-1])
    command = [
        sys.executable,
        "-m",
        "ensemble",
        "score",
        "--data",
        "demo",
        "--scores",
        "scores.csv",
    ]
    scorers = [
        subprocess.Popen([*command, sub.name], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        for sub in subs
    ]
    outputs = [scorer.communicate(timeout=300)[0] for scorer in scorers]
    assert [scorer.returncode for scorer in scorers] == [0] * 4
    assert all("updated scores.csv" in output for output in outputs)
    table = read_scores(tmp_path / "scores.csv")
    assert sorted(table["submission"]) == [sub.name for sub in subs]
    assert table["public"].notna().all() and table["private"].notna().all()


_FORKED = """
import os, sys, time
from ensemble.io.locks import hold
with hold(sys.argv[1], "training"):
    child = os.fork()
    if child == 0:  # it holds the lock (inherited), not the pipe the test reads
        os.close(1)
        time.sleep(600)
    print(child, flush=True)
    os._exit(0)
"""


def test_a_holder_that_ended_while_its_child_holds_the_lock_is_named_as_ended(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a"
    done = subprocess.run([sys.executable, "-c", _FORKED, str(target)], stdout=subprocess.PIPE)
    child = int(done.stdout)
    try:
        with pytest.raises(LockHeld) as refused, hold(target, "training"):
            pass
    finally:
        os.kill(child, signal.SIGKILL)
    assert "(no longer running: a process it started holds the lock)" in str(refused.value)


def test_a_file_system_without_locks_is_written_with_a_warning(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    def no_locks(*_args) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with hold(tmp_path / "a", "training"):
        (tmp_path / "a").mkdir()
    assert "this file system cannot lock" in capsys.readouterr().err


def test_a_lock_file_that_cannot_be_written_is_an_input_error(tmp_path: Path, monkeypatch) -> None:
    def full(*_args) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    refused = pytest.raises(InputError, match="ens-lock: cannot write the lock file")
    with refused, hold(tmp_path / "a", "training"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_dead_holders_file_locked_a_moment_by_a_clean_up_is_not_a_refusal(
    tmp_path: Path,
) -> None:
    """Another writer's clean-up (remove_if_free) locks a dead holder's file for a moment: a
    process starting then waits it out instead of refusing in the dead holder's name."""
    target = tmp_path / "a"
    path = lock_path(target)
    dead = {"pid": 2**22 + 7, "host": host_name(), "command": "ens train", "since": "then"}
    path.write_text(json.dumps({**dead, "purpose": "training"}))
    cleaner = os.open(path, os.O_RDWR)
    fcntl.flock(cleaner, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, [cleaner]).start()
    with hold(target, "training"):  # wait=0: refused at once before this fix
        assert read_holder(path).pid == os.getpid()


def test_the_clean_up_never_removes_a_lock_this_process_holds(tmp_path: Path, monkeypatch) -> None:
    """Where flock is per process (NFS, CIFS), this process locking its own lock file again
    succeeds: emulated here by a flock that never conflicts."""
    target = tmp_path / "a"
    monkeypatch.setattr("ensemble.io.locks.fcntl.flock", lambda fd, operation: None)
    with hold(target, "training"):
        assert not remove_if_free(lock_path(target))
        assert lock_path(target).is_file()
