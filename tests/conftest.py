"""Shared fixtures and helpers: tiny competition-format datasets written by the tests
themselves, working copies of a module's template folder, and clean-failure checks of `ens`."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ensemble.cli import cli
from ensemble.formats import write_landmarks, write_test_points
from ensemble.subsets import draw_point_subsets


def write_tiny_competition(
    root: Path, n_train: int = 8, n_test: int = 6, n_points: int = 12, k: int = 5, seed: int = 0
) -> dict:
    """A competition-layout folder with random images and landmarks inside each image."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, count, offset in (("train", n_train, 0), ("test", n_test, 1000)):
        images = root / split / "images"
        images.mkdir(parents=True)
        names = [f"{offset + i:06d}.jpg" for i in range(count)]
        sizes = rng.integers(40, 90, size=(count, 2))
        points = rng.uniform(0.1, 0.9, size=(count, n_points, 2)) * sizes[:, None, :]
        points = np.rint(points)
        for name, (width, height) in zip(names, sizes, strict=True):
            pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / name, quality=90)
        write_landmarks(root / split / "landmarks.csv", names, points, integer=True)
        out[split] = (names, points, sizes.astype(float))
    indices = draw_point_subsets(rng, n_test, n_points, k)
    write_test_points(root / "test" / "test_points.csv", out["test"][0], indices)
    out["indices"] = indices
    return out


@pytest.fixture
def tiny_competition(tmp_path: Path):
    """(data_dir, contents) of a tiny competition written to a temp folder."""
    data = tmp_path / "data"
    return data, write_tiny_competition(data)


def write_demo_with_baseline(root: Path) -> Path:
    """root/demo (a tiny make-demo competition, 12 train and 4 test images) and root/base.csv
    (its mean-shape submission, by `ens baseline`)."""
    from ensemble.demo import make_demo

    make_demo(root / "demo", n_train=12, n_test=4, progress=False, n_jobs=1)
    result = CliRunner().invoke(
        cli, ["baseline", "--data", str(root / "demo"), "-o", str(root / "base.csv")]
    )
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of the test module's `template` folder, as the working directory (messages
    name relative paths)."""
    work = tmp_path / "work"
    shutil.copytree(template, work)
    monkeypatch.chdir(work)
    return work


def folder_tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `root`, by relative path."""
    tree: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = Path(folder, name)
            tree[os.path.relpath(path, root)] = path.read_bytes()
    return tree


def invoke_ens(args: list[str]):
    """`ens ARGS` through click's runner; no RuntimeWarning (numpy's NaN warnings) may escape."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, args)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught
    return result


def fails_cleanly(root: Path, args: list[str], *needles: str, code: int = 1) -> str:
    """Run `ens ARGS`: it must exit with `code`, every needle in its output, no traceback,
    and leave the tree under `root` exactly as it was. Returns the output."""
    before = folder_tree(root)
    result = invoke_ens(args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert isinstance(result.exception, SystemExit)
    assert folder_tree(root) == before
    return result.output
