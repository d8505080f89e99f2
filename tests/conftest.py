"""Shared fixtures: a tiny competition written to a temp folder, a working copy of a test
module's `template` folder, and a guard against a test that hangs. The helpers the test modules
import are in `tests.helpers`."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.helpers import write_tiny_competition


@pytest.fixture
def tiny_competition(tmp_path: Path):
    """(data_dir, contents) of a tiny competition written to a temp folder."""
    data = tmp_path / "data"
    return data, write_tiny_competition(data)


@pytest.fixture
def root(template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of the test module's `template` folder, as the working directory (messages
    name relative paths)."""
    work = tmp_path / "work"
    shutil.copytree(template, work)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def no_hang():
    """Fail, rather than hang, a test still running after 60 s (a FIFO opened for reading
    blocks until a writer comes: a regression must not stall the suite)."""

    def stuck(signum, frame):
        raise TimeoutError("still blocked after 60 s: was a FIFO opened for reading?")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
