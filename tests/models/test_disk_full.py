"""A full disk while training: train-all keeps a run's failure in memory and goes on, a checkpoint
that torch cannot finish is called a full disk, and the image cache is preallocated (a full disk
is an error naming the cache, not a SIGBUS in the middle of writing its memory map)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.errors import InputError, full_disk_error
from models import cache
from models.cache import build_cache
from models.checkpoint import save_checkpoint

NO_SPACE = "no space left on device"
RUNS = """
[defaults]
device = "cpu"

[[run]]
name = "first"
arch = "small_cnn_basic"

[[run]]
name = "second"
arch = "small_cnn_basic"
"""


def _full(path: Path) -> InputError:
    return full_disk_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def test_train_all_keeps_going_when_not_even_error_txt_can_be_written(
    tmp_path: Path, monkeypatch
) -> None:
    tried = []

    def train_run(config, data_dir, run_dir, *args, **kwargs):
        tried.append(config.name)
        run_dir.mkdir(parents=True)
        raise _full(run_dir / "config.toml")

    def write_error(self, text: str) -> None:
        raise _full(self.error_log)

    monkeypatch.setattr("models.train_all.load_shared_data", lambda *args: object())
    monkeypatch.setattr("models.train_all.train_run", train_run)
    monkeypatch.setattr("ensemble.io.run_folder.RunFolder.write_error", write_error)
    (tmp_path / "runs.toml").write_text(RUNS)
    (tmp_path / "data").mkdir()
    runs = tmp_path / "RUNS"
    args = ["train-all", "--data", str(tmp_path / "data"), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(cli, [*args, "--out", str(runs), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert tried == ["first", "second"]  # the next run was tried
    for run in ("first", "second"):
        assert (
            f"{run}: FAILED: {runs / run / 'config.toml'}: {NO_SPACE} "
            f"({runs / run / 'error.txt'} not written: {NO_SPACE})"
        ) in result.output
        row = next(line for line in result.output.splitlines() if line.startswith(f"{run} "))
        assert "failed" in row and NO_SPACE in row  # the table kept the reason
    assert "2 of 2 run(s) failed (first, second)" in result.output


def test_a_checkpoint_cut_short_by_a_full_disk_says_so(tmp_path: Path, monkeypatch) -> None:
    def cut_short(obj, handle) -> None:
        handle.write(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    checkpoint = {"model": {"weight": torch.zeros(1000)}, "epoch": 3}
    monkeypatch.setattr(torch, "save", cut_short)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    target = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(InputError) as caught:
        save_checkpoint(target, checkpoint)
    assert str(caught.value) == f"{target}: {NO_SPACE} (0.0 MB needed)"
    assert os.listdir(target.parent) == []  # the temp file went with the error


def test_a_checkpoint_error_with_room_on_the_disk_stays_what_it_is(
    tmp_path: Path, monkeypatch
) -> None:
    def broken(obj, handle) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="unexpected pos"):
        save_checkpoint(tmp_path / "last.pt", {"weight": torch.zeros(10)})
    assert os.listdir(tmp_path) == []


def test_the_image_cache_is_preallocated(tiny_competition) -> None:
    data, _ = tiny_competition
    built = build_cache(data, "train", 32, progress=False, n_jobs=1)
    images = built.path / "images.npy"
    assert os.stat(images).st_blocks * 512 >= images.stat().st_size  # no hole left to fill


def test_a_full_disk_while_preallocating_the_cache_names_it(tiny_competition, monkeypatch) -> None:
    data, _ = tiny_competition

    def no_room(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_room, raising=False)
    with pytest.raises(InputError) as caught:
        build_cache(data, "train", 32, progress=False, n_jobs=1)
    size = 8 * 32 * 32 * 3 + 128  # the tiny competition's 8 images and the .npy header
    target = cache.cache_dir_for(data, "train", 32, None)
    assert str(caught.value) == f"{target / 'images.npy'}: {NO_SPACE} ({size / 1e6:.1f} MB needed)"
    assert not (data / ".ens_cache").exists()  # neither the cache nor its temp folder


def test_the_cache_is_preallocated_by_writing_where_fallocate_is_missing(
    tiny_competition, monkeypatch
) -> None:
    data, _ = tiny_competition
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    built = build_cache(data, "train", 32, progress=False, n_jobs=1)
    assert built.images.shape == (8, 32, 32, 3) and np.asarray(built.images).any()
