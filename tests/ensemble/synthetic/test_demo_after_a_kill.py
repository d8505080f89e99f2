"""`ens make-demo` SIGKILLed: its worker processes end with it, it leaves only a temp folder, and
the same command run again (no --force) removes it and writes the whole dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ensemble.cli import cli
from tests.helpers import folder_tree
from tests.processes import all_ended, children_of, wait_until

ARGS = ["--train", "6", "--test", "3"]


def test_make_demo_killed_then_run_again_without_force_writes_the_whole_dataset(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "ensemble", "make-demo", str(out), "--train", "2000"]
    killed = subprocess.Popen([*command, "--jobs", "2"], stderr=subprocess.DEVNULL)
    images = lambda: list(out.glob(".make-demo.ens-tmp-*/train/images/*.jpg"))  # noqa: E731
    wait_until(lambda: len(images()) >= 10 or killed.poll() is not None, "make-demo under way")
    workers = children_of(killed.pid)
    assert killed.poll() is None and len(workers) >= 2
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    wait_until(lambda: all_ended(workers), "its worker processes ended with it")
    (left,) = out.iterdir()  # only the temp folder, with what the kill cut short
    assert left.name.startswith(".make-demo.ens-tmp-") and images()

    again = CliRunner().invoke(cli, ["make-demo", str(out), *ARGS, "--jobs", "1"])
    assert again.exit_code == 0, again.output
    fresh = CliRunner().invoke(cli, ["make-demo", str(tmp_path / "fresh"), *ARGS, "--jobs", "1"])
    assert fresh.exit_code == 0, fresh.output
    assert folder_tree(out) == folder_tree(tmp_path / "fresh")
