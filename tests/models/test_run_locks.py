"""One writer per run folder and per cache: a second train-all, train or predict on a run folder
in use is refused with its holder named (exit 1, nothing written); a second cache build waits
and reuses the first's cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

import models.cache
from ensemble.io.locks import lock_path, read_holder
from ensemble.io.scores_table import read_scores
from models.cache import build_cache, cache_dir_for
from tests.helpers import fails_cleanly, write_faces
from tests.processes import held_by_another_process, wait_until

CONFIG = """
[defaults]
restarts = 0
crop_size = 24
batch_size = 8
device = "cpu"

[[run]]
name = "a"
arch = "small_cnn_basic"
stages = [{{epochs = 1, lr = {lr}}}]

[[run]]
name = "{other}"
arch = "small_cnn_basic"
stages = [{{epochs = 1, lr = {lr}}}]
"""


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A tiny drawn-face dataset shared by the tests."""
    return write_faces(tmp_path_factory.mktemp("locks") / "data", n_train=24, n_test=2)


def config(root: Path, name: str, lr: float, other: str) -> Path:
    """A config of runs `a` and `other` at learning rate `lr`."""
    path = root / name
    path.write_text(CONFIG.format(lr=lr, other=other))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["train-all", "--config", "c.toml", "--out", "R"],
        ["train", "--config", "c.toml", "--run", "a", "--out", "R"],
        ["predict", "--run", "R/a"],
    ],
)
def test_a_run_folder_in_use_is_refused_with_its_holder_named(
    faces: Path, tmp_path: Path, monkeypatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config(tmp_path, "c.toml", 0.003, "b")
    (tmp_path / "R" / "a").mkdir(parents=True)
    with held_by_another_process(tmp_path / "R" / "a", "training") as pid:
        holder = read_holder(lock_path(tmp_path / "R" / "a"))
        fails_cleanly(
            tmp_path,
            [*command, "--data", str(faces), "--quiet"],
            f"Error: R/a: in use by another process: training, by pid {pid} on {holder.host} "
            f"since {holder.since} (-c {tmp_path / 'R' / 'a'} training); run this command "
            "again when it has ended",
        )


@pytest.mark.slow  # two train-all processes (a few seconds each)
def test_two_train_alls_with_one_run_folder_one_trains_it_the_other_is_refused(
    faces: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "R"
    command = [sys.executable, "-m", "ensemble", "train-all", "--data", str(faces), "--quiet"]
    command += ["--out", str(runs), "--config"]
    first = subprocess.Popen(
        [*command, str(config(tmp_path, "first.toml", 0.003, "b"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holds_a = lambda: getattr(read_holder(lock_path(runs / "a")), "pid", None) == first.pid  # noqa: E731
    wait_until(lambda: holds_a() or first.poll() is not None, "the first train-all locks R/a")
    os.kill(first.pid, signal.SIGSTOP)  # frozen with the lock: the second meets it for sure
    try:
        assert holds_a(), "the first train-all ended before the second could meet it"
        second = subprocess.run(
            [*command, str(config(tmp_path, "second.toml", 0.001, "c"))],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, errors = first.communicate(timeout=600)
    assert first.returncode == 0, errors
    assert second.returncode == 1, second.stderr
    refusal = f"Error: {runs / 'a'}: in use by another process: training, by pid {first.pid} "
    assert refusal in second.stderr and "Traceback" not in second.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b", "scores.csv"]
    assert tomllib.loads((runs / "a" / "config.toml").read_text())["stages"][0]["lr"] == 0.003
    summary = json.loads((runs / "a" / "summary.json").read_text())
    scores = read_scores(runs / "scores.csv").set_index("run")["val"]
    assert sorted(scores.index) == ["a", "b"]
    assert scores["a"] == pytest.approx(summary["val_score"], rel=1e-5)


_BUILDER = """
import sys
from pathlib import Path
from ensemble.io.locks import hold
from models.cache import _build, cache_dir_for, fingerprint, split_file_names
data = Path(sys.argv[1])
target = cache_dir_for(data, "train", 24, None)
names = split_file_names(data, "train")
with hold(target, "building the cache"):
    print("held", flush=True)
    sys.stdin.read()
    _build(target, data, "train", 24, names, fingerprint(data, "train", 24, names), 1, False)
"""


def test_a_second_cache_build_waits_and_reuses_the_cache_the_first_built(
    tmp_path: Path, monkeypatch
) -> None:
    data = write_faces(tmp_path / "data", n_train=6, n_test=2)
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert builder.stdout.readline() == "held\n"

    def must_not_build(*_args) -> None:
        raise AssertionError("built a cache another process was building")

    monkeypatch.setattr(models.cache, "_write_cache", must_not_build)
    opened = []
    waiter = threading.Thread(target=lambda: opened.append(build_cache(data, "train", 24)))
    waiter.start()
    builder.stdin.close()
    assert builder.wait(timeout=120) == 0
    waiter.join()
    target = cache_dir_for(data, "train", 24, None)
    assert [cache.path for cache in opened] == [target] and len(opened[0]) == 6
    assert sorted(p.name for p in target.parent.iterdir()) == ["train_24"]
