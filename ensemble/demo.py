"""The procedural demo dataset, written in the exact competition layout (streamed, deterministic).

Every image and every test_points row depends only on (seed, split, index), so the bytes do not
depend on how many worker processes draw them or on the chunk size.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.atomic import atomic_open, atomic_path
from ensemble.errors import InputError
from ensemble.formats import FILE_COLUMN, POINTS_COLUMN, LandmarksWriter, append_test_points
from ensemble.layout import FACE_971
from ensemble.subsets import draw_point_subsets

if TYPE_CHECKING:
    from PIL import Image

N_POINTS = FACE_971.n_points

DEFAULT_TRAIN = 2000
DEFAULT_TEST = 500
CHUNK = 64  # images per work unit (the output does not depend on it)
_TRAIN, _TEST, _SUBSETS = 0, 1, 2


@dataclass(frozen=True)
class DemoSummary:
    """What `make_demo` wrote."""

    out_dir: Path
    n_train: int
    n_test: int
    points_per_row: int


def image_name(split: int, index: int, n_train: int) -> str:
    """File name of an image: train images 00000000.jpg..., test images numbered after them."""
    return f"{index + (n_train if split == _TEST else 0):08d}.jpg"


def place_face(rng: np.random.Generator, shape: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Roll, scale and translate a normalised shape into a random image size (a face crop)."""
    roll = np.deg2rad(np.clip(rng.normal(0.0, 10.0), -30.0, 30.0))
    rotation = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    turned = shape @ rotation.T
    width = int(np.exp(rng.uniform(np.log(100), np.log(500))))
    height = max(64, int(round(width * rng.uniform(0.8, 1.4))))
    extent = turned.max(axis=0) - turned.min(axis=0)
    room = np.array([width - 4.0, height - 4.0])
    scale = rng.uniform(0.62, 0.9) * float(np.min(room / extent))
    scaled = turned * scale
    low, high = scaled.min(axis=0), scaled.max(axis=0)
    free = np.array([width - 3.0, height - 3.0]) - (high - low)
    offset = 1.0 - low + rng.uniform(0.0, 1.0, (2, 2)).mean(axis=0) * free  # centre-biased
    return scaled + offset, width, height


def render_sample(seed: int, split: int, index: int) -> tuple[Image.Image, np.ndarray, int]:
    """The image, its landmarks (971, 2) in pixels and its JPEG quality, for one sample."""
    from ensemble.face_model import sample_shape
    from ensemble.render import render_face

    rng = np.random.default_rng([seed, split, index])
    shape, _ = sample_shape(rng)
    points, width, height = place_face(rng, shape)
    image = render_face(rng, points, width, height)
    quality = int(rng.integers(70, 96))
    return image, points, quality


def _make_chunk(
    images_dir: Path, seed: int, split: int, start: int, stop: int, n_train: int
) -> tuple[list[str], np.ndarray]:
    """Render and save images [start, stop) of a split; return their names and landmarks."""
    names, all_points = [], np.empty((stop - start, N_POINTS, 2))
    for row, index in enumerate(range(start, stop)):
        image, points, quality = render_sample(seed, split, index)
        name = image_name(split, index, n_train)
        with atomic_path(images_dir / name) as tmp:
            image.save(tmp, format="JPEG", quality=quality)
        names.append(name)
        all_points[row] = points
    return names, all_points


def _chunks(
    images_dir: Path, seed: int, split: int, count: int, n_train: int, n_jobs: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Chunk results in order, computed by `n_jobs` processes a few chunks ahead."""
    bounds = [(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    if n_jobs == 1 or len(bounds) == 1:
        for start, stop in bounds:
            yield _make_chunk(images_dir, seed, split, start, stop, n_train)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, return_as="generator", pre_dispatch="2*n_jobs")
    yield from parallel(
        delayed(_make_chunk)(images_dir, seed, split, start, stop, n_train)
        for start, stop in bounds
    )


def _subsets(seed: int, start: int, count: int, k: int) -> np.ndarray:
    """test_points rows [start, start + count): each row drawn from its own (seed, index)."""
    rows = [
        draw_point_subsets(np.random.default_rng([seed, _SUBSETS, index]), 1, N_POINTS, k)
        for index in range(start, start + count)
    ]
    return np.concatenate(rows)


def _prepare(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise InputError(
                out_dir, "directory is not empty (use --force to replace its train/ and test/)"
            )
        for sub in ("train", "test"):
            if (out_dir / sub).exists():
                shutil.rmtree(out_dir / sub)
    (out_dir / "train" / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "test" / "images").mkdir(parents=True, exist_ok=True)


def make_demo(
    out_dir: str | Path,
    n_train: int = DEFAULT_TRAIN,
    n_test: int = DEFAULT_TEST,
    seed: int = 0,
    points_per_row: int = 30,
    progress: bool = True,
    n_jobs: int = 2,
    force: bool = False,
) -> DemoSummary:
    """Write a procedural face dataset in the competition layout under `out_dir`.

    train/landmarks.csv + train/images/, test/test_points.csv + test/images/, and the hidden
    truth test/landmarks.csv. Images and rows are streamed chunk by chunk (bounded memory).
    """
    from tqdm import tqdm

    if n_train < 1 or n_test < 1:
        raise ValueError("make_demo needs at least one train and one test image")
    if not 0 < points_per_row <= N_POINTS:
        raise ValueError(f"points per row must be in [1, {N_POINTS}], got {points_per_row}")
    out_dir = Path(out_dir)
    _prepare(out_dir, force)
    bar = tqdm(total=n_train + n_test, unit="img", desc="make-demo", disable=not progress)
    with bar:
        train_images = out_dir / "train" / "images"
        with LandmarksWriter(out_dir / "train" / "landmarks.csv", N_POINTS, integer=True) as out:
            for names, points in _chunks(train_images, seed, _TRAIN, n_train, n_train, n_jobs):
                out.write(names, points)
                bar.update(len(names))
        test_images = out_dir / "test" / "images"
        with (
            LandmarksWriter(out_dir / "test" / "landmarks.csv", N_POINTS, integer=True) as truth,
            atomic_open(out_dir / "test" / "test_points.csv", "w", newline="") as handle,
        ):
            handle.write(f"{FILE_COLUMN}\t{POINTS_COLUMN}\n")
            chunks = _chunks(test_images, seed, _TEST, n_test, n_train, n_jobs)
            start = 0
            for names, points in chunks:
                truth.write(names, points)
                append_test_points(handle, names, _subsets(seed, start, len(names), points_per_row))
                start += len(names)
                bar.update(len(names))
    return DemoSummary(out_dir, n_train, n_test, points_per_row)
