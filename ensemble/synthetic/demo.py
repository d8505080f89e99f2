"""The procedural demo dataset, written in the exact competition layout (streamed, deterministic).

Every image and every test_points row depends only on (seed, split, index), so the bytes do not
depend on how many worker processes draw them or on the chunk size. A seeded permutation of each
split (`choose_scenes`) picks the crowd images (a smaller second face in the background, labelled
on the subject) and, in train only, the label errors (the same scene, labelled on the background
face); their second face has its own generator, so every other image is the same with or without
them.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.competition.subsets import draw_point_subsets
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open, atomic_path
from ensemble.io.checks import FILE_COLUMN
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmarks import LandmarksWriter
from ensemble.io.temps import remove_stale, temp_folder
from ensemble.io.test_points import POINTS_COLUMN, append_test_points
from ensemble.synthetic.demo_defaults import (
    DEFAULT_CROWD,
    DEFAULT_LABEL_ERRORS,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    N_POINTS,
)

if TYPE_CHECKING:
    from PIL import Image
    from tqdm import tqdm

CHUNK = 64  # images per work unit (the output does not depend on it)
_TRAIN, _TEST, _SUBSETS, _CHOICE = 0, 1, 2, 3
_BEHIND = 1  # generator tag of an image's background face
_EDGE = 2.0  # least distance in pixels of a background face's landmarks to the image border
_GAP = 0.15  # least gap between the two faces' landmarks, in subject face widths (ears, hair)


class Scene(enum.IntEnum):
    """What an image shows, and which face its label marks."""

    SINGLE = 0  # the subject alone
    CROWD = 1  # the subject with a smaller face behind it; the label marks the subject
    LABEL_ERROR = 2  # the same scene, labelled on the background face (a labeller's mistake)


@dataclass(frozen=True)
class DemoSummary:
    """What `make_demo` wrote."""

    out_dir: Path
    n_train: int
    n_test: int
    points_per_row: int
    n_label_errors: int
    n_crowd_train: int
    n_crowd_test: int


@dataclass(frozen=True)
class Sample:
    """One rendered image and the landmarks (971, 2) in pixels of its faces."""

    image: Image.Image
    subject: np.ndarray
    behind: np.ndarray | None  # the background face of a crowd or label-error scene
    quality: int  # JPEG quality
    scene: Scene

    @property
    def label(self) -> np.ndarray:
        """The landmarks written for the image: the background face's for a label error."""
        return self.behind if self.scene == Scene.LABEL_ERROR else self.subject


def image_name(split: int, index: int, n_train: int) -> str:
    """File name of an image: train images 00000000.jpg..., test images numbered after them."""
    return f"{index + (n_train if split == _TEST else 0):08d}.jpg"


def planted_count(share: float, n: int) -> int:
    """How many of `n` images a share plants: share * n rounded half up."""
    return math.floor(share * n + 0.5)


def choose_scenes(seed: int, split: int, n: int, label_errors: float, crowd: float) -> np.ndarray:
    """The `Scene` of each image of a split (n,): a seeded permutation, label errors first."""
    order = np.random.default_rng([seed, _CHOICE, split]).permutation(n)
    n_errors = planted_count(label_errors, n)
    n_crowd = min(planted_count(crowd, n), n - n_errors)
    scenes = np.full(n, Scene.SINGLE, dtype=np.int8)
    scenes[order[:n_errors]] = Scene.LABEL_ERROR
    scenes[order[n_errors : n_errors + n_crowd]] = Scene.CROWD
    return scenes


def _rolled(rng: np.random.Generator, shape: np.ndarray) -> np.ndarray:
    """The shape turned in the image plane by a random roll (about 10 degrees, at most 30)."""
    roll = np.deg2rad(np.clip(rng.normal(0.0, 10.0), -30.0, 30.0))
    rotation = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    return shape @ rotation.T


def place_face(rng: np.random.Generator, shape: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Roll, scale and translate a normalised shape into a random image size (a face crop)."""
    turned = _rolled(rng, shape)
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


def place_behind(
    rng: np.random.Generator, shape: np.ndarray, subject: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Put a smaller face beside the subject, widening the canvas on that side if needed.

    The face is 0.35-0.6 the subject's size (square root of the box area), no lower than the
    subject's chin and clear of its ears and hair, with all its landmarks inside the image.
    Returns the subject's landmarks (shifted when the room is made on the left), the face's
    landmarks and the new image width.
    """
    turned = _rolled(rng, shape)
    low, high = subject.min(axis=0), subject.max(axis=0)
    extent = turned.max(axis=0) - turned.min(axis=0)
    scale = rng.uniform(0.35, 0.6) * math.sqrt(np.prod(high - low) / np.prod(extent))
    face = turned * min(scale, (height - 1 - 2 * _EDGE) / extent[1])
    face -= face.min(axis=0)
    face_width, face_height = face.max(axis=0)
    gap = _GAP * (high[0] - low[0]) + rng.uniform(0.0, 0.3) * face_width
    lowest_top = min(height - 1 - _EDGE, high[1]) - face_height
    top = rng.uniform(_EDGE, max(_EDGE, lowest_top))
    if rng.random() < 0.5:  # on the left
        shift = max(0, math.ceil(_EDGE + face_width + gap - low[0]))
        left = low[0] + shift - gap - face_width
        return subject + [shift, 0.0], face + [left, top], width + shift
    left = high[0] + gap
    return subject, face + [left, top], max(width, math.ceil(left + face_width + _EDGE + 1))


def render_sample(seed: int, split: int, index: int, scene: Scene = Scene.SINGLE) -> Sample:
    """Render one image of a split; a crowd or label-error scene adds a face in the background."""
    from ensemble.synthetic.face_model import sample_shape
    from ensemble.synthetic.render import render_face

    rng = np.random.default_rng([seed, split, index])
    shape, _ = sample_shape(rng)
    subject, width, height = place_face(rng, shape)
    behind, scenery = None, None
    if scene != Scene.SINGLE:
        behind_rng = np.random.default_rng([seed, split, index, _BEHIND])
        behind_shape, _ = sample_shape(behind_rng)
        subject, behind, width = place_behind(behind_rng, behind_shape, subject, width, height)
        scenery = (behind_rng, behind)
    image = render_face(rng, subject, width, height, behind=scenery)
    return Sample(image, subject, behind, int(rng.integers(70, 96)), scene)


def _make_chunk(
    images_dir: Path, seed: int, split: int, start: int, scenes: np.ndarray, n_train: int
) -> tuple[list[str], np.ndarray]:
    """Render and save the images from `start` on, one per scene; return names and labels."""
    names, all_points = [], np.empty((len(scenes), N_POINTS, 2))
    for row, scene in enumerate(scenes.tolist()):
        index = start + row
        sample = render_sample(seed, split, index, Scene(scene))
        name = image_name(split, index, n_train)
        with atomic_path(images_dir / name) as tmp:
            sample.image.save(tmp, format="JPEG", quality=sample.quality)
        names.append(name)
        all_points[row] = sample.label
    return names, all_points


def _chunks(
    images_dir: Path, seed: int, split: int, scenes: np.ndarray, n_train: int, n_jobs: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Chunk results in order, computed by `n_jobs` processes a few chunks ahead."""
    starts = range(0, len(scenes), CHUNK)
    if n_jobs == 1 or len(starts) == 1:
        for start in starts:
            yield _make_chunk(
                images_dir, seed, split, start, scenes[start : start + CHUNK], n_train
            )
        return
    from joblib import delayed

    from ensemble.io.processes import process_pool

    parallel = process_pool(n_jobs, return_as="generator", pre_dispatch="2*n_jobs")
    yield from parallel(
        delayed(_make_chunk)(images_dir, seed, split, start, scenes[start : start + CHUNK], n_train)
        for start in starts
    )


def _write_label_errors(path: Path, scenes: np.ndarray, n_train: int) -> None:
    """The file names of the planted label errors, sorted, under a `file_name` header."""
    indices = np.flatnonzero(scenes == Scene.LABEL_ERROR).tolist()
    names = sorted(image_name(_TRAIN, index, n_train) for index in indices)
    with atomic_open(path, "w", newline="") as handle:
        handle.write("".join(f"{line}\n" for line in [FILE_COLUMN, *names]))


def _check_shares(label_errors: float, crowd: float) -> None:
    for option, share in (("label_errors", label_errors), ("crowd", crowd)):
        if not 0 <= share < 1:
            raise ValueError(f"{option} must be in [0, 1), got {share}")
    if label_errors + crowd > 1:
        raise ValueError(f"label_errors + crowd must be at most 1, got {label_errors + crowd}")


def _subsets(seed: int, start: int, count: int, k: int) -> np.ndarray:
    """test_points rows [start, start + count): each row drawn from its own (seed, index)."""
    rows = [
        draw_point_subsets(np.random.default_rng([seed, _SUBSETS, index]), 1, N_POINTS, k)
        for index in range(start, start + count)
    ]
    return np.concatenate(rows)


def _check_out(out_dir: Path, force: bool) -> None:
    """Refuse a non-empty OUT_DIR without `force`; what a killed make-demo left does not count."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    remove_stale(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise InputError(
            out_dir, "directory is not empty (use --force to replace its train/ and test/)"
        )


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Move the finished train/ and test/ from `work` into OUT_DIR (replacing old ones)."""
    for sub in ("train", "test"):
        if (out_dir / sub).exists():
            shutil.rmtree(out_dir / sub)
        os.replace(work / sub, out_dir / sub)
    work.rmdir()


def _write_train(out_dir: Path, seed: int, scenes: np.ndarray, n_jobs: int, bar: tqdm) -> None:
    """train/images, train/landmarks.csv and train/label_errors.csv."""
    n_train = len(scenes)
    images = DataFolder.at(out_dir).images("train")
    with LandmarksWriter(DataFolder.at(out_dir).train_landmarks, N_POINTS, integer=True) as out:
        for names, points in _chunks(images, seed, _TRAIN, scenes, n_train, n_jobs):
            out.write(names, points)
            bar.update(len(names))
    _write_label_errors(DataFolder.at(out_dir).label_errors, scenes, n_train)


def _write_test(
    out_dir: Path, seed: int, scenes: np.ndarray, n_train: int, k: int, n_jobs: int, bar: tqdm
) -> None:
    """test/images, test/test_points.csv (k indices a row) and the hidden test/landmarks.csv."""
    images = DataFolder.at(out_dir).images("test")
    with (
        LandmarksWriter(DataFolder.at(out_dir).test_landmarks, N_POINTS, integer=True) as truth,
        atomic_open(DataFolder.at(out_dir).test_points, "w", newline="") as handle,
    ):
        handle.write(f"{FILE_COLUMN}\t{POINTS_COLUMN}\n")
        start = 0
        for names, points in _chunks(images, seed, _TEST, scenes, n_train, n_jobs):
            truth.write(names, points)
            append_test_points(handle, names, _subsets(seed, start, len(names), k))
            start += len(names)
            bar.update(len(names))


def make_demo(
    out_dir: str | Path,
    n_train: int = DEFAULT_TRAIN,
    n_test: int = DEFAULT_TEST,
    seed: int = 0,
    points_per_row: int = 30,
    progress: bool = True,
    n_jobs: int = 2,
    force: bool = False,
    label_errors: float = DEFAULT_LABEL_ERRORS,
    crowd: float = DEFAULT_CROWD,
) -> DemoSummary:
    """Write a procedural face dataset in the competition layout under `out_dir`.

    train/landmarks.csv + train/images/, test/test_points.csv + test/images/, and the hidden
    truth test/landmarks.csv. Images and rows are streamed chunk by chunk (bounded memory) into
    a temp folder in `out_dir` whose train/ and test/ are moved into place at the end, so a
    killed make-demo leaves only that temp, which the next one removes.
    A share `label_errors` of train images is labelled on a background face instead of the
    subject (listed in train/label_errors.csv); a share `crowd` of each split shows a background
    face but is labelled on the subject (`planted_count` rounds the shares).
    """
    from tqdm import tqdm

    if n_train < 1 or n_test < 1:
        raise ValueError("make_demo needs at least one train and one test image")
    if not 0 < points_per_row <= N_POINTS:
        raise ValueError(f"points per row must be in [1, {N_POINTS}], got {points_per_row}")
    _check_shares(label_errors, crowd)
    train_scenes = choose_scenes(seed, _TRAIN, n_train, label_errors, crowd)
    test_scenes = choose_scenes(seed, _TEST, n_test, 0.0, crowd)
    out_dir = Path(out_dir)
    existed = out_dir.exists()
    _check_out(out_dir, force)
    work = temp_folder(out_dir / "make-demo")  # killed: the next make-demo removes it
    bar = tqdm(total=n_train + n_test, unit="img", desc="make-demo", disable=not progress)
    try:
        for split in ("train", "test"):
            DataFolder.at(work).images(split).mkdir(parents=True)
        with bar:
            _write_train(work, seed, train_scenes, n_jobs, bar)
            _write_test(work, seed, test_scenes, n_train, points_per_row, n_jobs, bar)
        _move_into_place(work, out_dir)
    except BaseException:  # an error or a signal: no partial dataset stays behind
        shutil.rmtree(work, ignore_errors=True)
        if not existed:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    return DemoSummary(
        out_dir,
        n_train,
        n_test,
        points_per_row,
        n_label_errors=int(np.count_nonzero(train_scenes == Scene.LABEL_ERROR)),
        n_crowd_train=int(np.count_nonzero(train_scenes == Scene.CROWD)),
        n_crowd_test=int(np.count_nonzero(test_scenes == Scene.CROWD)),
    )
