"""SIGTERM and SIGHUP: the command stops like Ctrl-C, nothing partial or temporary stays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import models.cache
from ensemble.cli import cli
from ensemble.cli.signals import HANDLED, Terminated, stop_cleanly_on_signals
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open
from models.cache import build_cache
from tests.helpers import write_faces
from tests.processes import temps_of_an_ended_writer


@pytest.fixture
def handlers():
    """Install the handlers for one test, then put the previous ones back."""
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    stop_cleanly_on_signals()
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", HANDLED)
def test_a_signal_during_an_atomic_write_leaves_no_file(tmp_path: Path, handlers, signum) -> None:
    with pytest.raises(Terminated) as stopped, atomic_open(tmp_path / "out.csv") as handle:
        handle.write("half a file")
        os.kill(os.getpid(), signum)
    assert stopped.value.code == 128 + signum
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", HANDLED)
def test_a_signal_stops_make_demo_and_removes_what_it_wrote(tmp_path: Path, signum) -> None:
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "ensemble", "make-demo", str(out), "--train", "20000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob(".make-demo.ens-tmp-*/train/images/*.jpg"))) < 20:  # well under way
        assert process.poll() is None and time.monotonic() < deadline, "make-demo did not start"
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    name = signal.Signals(signum).name
    assert f"ens: stopped by {name}; no partial output left" in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failed_cache_build_leaves_no_empty_cache_folder(tmp_path: Path, monkeypatch) -> None:
    data = write_faces(tmp_path / "data", n_train=4, n_test=2)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))

    def disk_full(*_args, **_kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models.cache, "_write_cache", disk_full)
    with pytest.raises(InputError, match="train_24: no space left on device$"):
        build_cache(data, "train", 24, progress=False)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_a_resume_removes_a_checkpoint_temp_file_that_a_kill_left(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "data", n_train=24, n_test=2)
    config = tmp_path / "runs.toml"
    config.write_text(
        '[defaults]\nrestarts = 0\ncrop_size = 24\nbatch_size = 8\ndevice = "cpu"\n'
        'stages = [{epochs = 1, lr = 0.003}]\n\n[[run]]\nname = "r"\narch = "small_cnn_basic"\n'
    )
    runs = tmp_path / "RUNS"
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(runs)]
    assert CliRunner().invoke(cli, [*args, "--quiet"]).exit_code == 0
    (stale,) = temps_of_an_ended_writer((runs / "r" / "checkpoints" / "last.pt", "file"))
    stale.write_bytes(b"half a checkpoint")
    result = CliRunner().invoke(cli, ["train", "--resume", str(runs / "r"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == ["best.pt", "last.pt"]
