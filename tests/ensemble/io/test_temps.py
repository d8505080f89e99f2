"""Temps name their writer; the next writer into a folder removes those whose writer is gone,
never a live writer's (a kill mid-write leaves one, and the next command removes it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ensemble.io.processes import host_tag, writer_tag
from ensemble.io.temps import is_stale, remove_stale, temp_file, temp_folder
from tests.helpers import invoke_ens, write_demo_with_baseline
from tests.processes import killed_while_writing, temps_of_an_ended_writer


def test_a_temp_names_its_writer_and_is_not_stale_while_it_runs(tmp_path: Path) -> None:
    made = temp_file(tmp_path / "out.csv")
    assert made.name.startswith(f".out.csv.ens-tmp-{writer_tag()}-")
    assert not is_stale(made.name)
    folder = temp_folder(tmp_path / "cache")
    assert folder.is_dir() and folder.name.startswith(f".cache.ens-tmp-{writer_tag()}-")


def test_only_the_temps_of_ended_writers_of_this_host_are_removed(tmp_path: Path) -> None:
    live = temp_file(tmp_path / "out.csv")
    ended = temps_of_an_ended_writer((tmp_path / "out.csv", "file"), (tmp_path / "c", "folder"))
    (ended[1] / "images.npy").write_bytes(b"half a cache")
    pid = os.getpid()
    reused_pid = tmp_path / f".x.ens-tmp-{host_tag()}-{pid}-1-abc"  # started at tick 1: not us
    other = "ffffffff" if host_tag() != "ffffffff" else "00000000"
    other_host = tmp_path / f".x.ens-tmp-{other}-1-0-abc"  # pid 1 of another host
    plain = [tmp_path / "out.csv", tmp_path / ".hidden", tmp_path / ".x.ens-tmp-garbled"]
    for path in [reused_pid, other_host, *plain]:
        path.write_text("x")
    assert sorted(remove_stale(tmp_path)) == sorted([*ended, reused_pid])
    assert sorted(tmp_path.iterdir()) == sorted([live, other_host, *plain])


def test_a_blend_killed_mid_write_leaves_a_temp_that_the_next_blend_removes(
    tmp_path: Path, monkeypatch
) -> None:
    write_demo_with_baseline(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    killed = killed_while_writing(["blend", "base.csv", "-o", "out.csv"], "out.csv", tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (left,) = set(tmp_path.iterdir()) - set(before)
    assert left.name.startswith(".out.csv.ens-tmp-") and left.stat().st_size > 0
    result = invoke_ens(["blend", "base.csv", "-o", "out.csv"])
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.iterdir()) == sorted([*before, tmp_path / "out.csv"])
