"""Synthetic Kaggle Facial Keypoints files (training.csv, test.csv, IdLookupTable.csv).

96x96 grayscale faces from the procedural generator (`ensemble.synthetic.face_model`,
`ensemble.synthetic.render`), with the 15 keypoints taken at the matching landmarks of the 971-point
face. About 70% of the training rows keep only the eye centres, nose tip and bottom lip, as in the
real data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.fkd.layout import ALWAYS_LABELLED, IMAGE_SIZE, KEYPOINTS, coordinate_columns
from ensemble.io.temps import remove_stale, temp_folder

# 971-point landmarks averaged into each Kaggle keypoint ("left" = the subject's left, which is
# the layout's right-hand side). Corners and brow ends are the extreme points of their regions;
# brow ends average the upper and lower edge; lip centres average the two middle points.
SOURCES: dict[str, tuple[int, ...]] = {
    "left_eye_center": (970,),
    "right_eye_center": (969,),
    "left_eye_inner_corner": (809,),
    "left_eye_outer_corner": (777,),
    "right_eye_inner_corner": (682,),
    "right_eye_outer_corner": (650,),
    "left_eyebrow_inner_end": (337, 400),
    "left_eyebrow_outer_end": (368, 369),
    "right_eyebrow_inner_end": (273, 336),
    "right_eyebrow_outer_end": (304, 305),
    "nose_tip": (
        575,
    ),  # where ensemble.synthetic.render draws the tip highlight (nose line point 48)
    "mouth_left_corner": (872,),
    "mouth_right_corner": (841,),
    "mouth_center_top_lip": (856, 857),
    "mouth_center_bottom_lip": (920, 921),
}
PARTIAL_FRACTION = 0.7
_TRAIN, _TEST, _LOOKUP = 0, 1, 2
_GREY = np.array([str(value) for value in range(256)], dtype=object)


@dataclass(frozen=True)
class FkdDemoSummary:
    """What `make_fkd_demo` wrote."""

    out_dir: Path
    n_train: int
    n_train_complete: int
    n_test: int
    n_lookup_rows: int


def keypoints_from_971(points: np.ndarray) -> np.ndarray:
    """The 15 Kaggle keypoints (..., 15, 2) of 971-point landmarks (..., 971, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., list(SOURCES[name]), :].mean(axis=-2) for name in KEYPOINTS], -2)


def _place(rng: np.random.Generator, shape: np.ndarray) -> np.ndarray:
    """Roll, scale and shift a normalised shape into a 96x96 crop framed like Kaggle's faces."""
    for _ in range(50):
        roll = np.deg2rad(np.clip(rng.normal(0.0, 8.0), -25.0, 25.0))
        rotation = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
        scale = rng.uniform(78.0, 100.0)  # inter-ocular distance about 0.4 * scale pixels
        centre = np.array([48.0, 45.0]) + rng.normal(0.0, 2.5, 2)
        placed = (shape @ rotation.T) * scale + centre
        keypoints = keypoints_from_971(placed)
        if keypoints.min() >= 1.0 and keypoints.max() <= IMAGE_SIZE - 1.0:
            return placed
    raise RuntimeError("could not place the face inside the 96x96 image")


def render_fkd_sample(seed: int, split: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One sample: a (96, 96) uint8 grayscale face and its 15 keypoints (15, 2)."""
    from ensemble.synthetic.face_model import sample_shape
    from ensemble.synthetic.render import render_face

    rng = np.random.default_rng([seed, split, index])
    shape, _ = sample_shape(rng)
    points = _place(rng, shape)
    image = render_face(rng, points, IMAGE_SIZE, IMAGE_SIZE).convert("L")
    return np.asarray(image, dtype=np.uint8), keypoints_from_971(points)


def _image_text(image: np.ndarray) -> str:
    return " ".join(_GREY[image.reshape(-1)])


def _coordinate_cells(keypoints: np.ndarray) -> list[str]:
    return ["" if np.isnan(v) else f"{v:.10g}" for v in keypoints.reshape(-1)]


def make_fkd_demo(
    out_dir: str | Path,
    n_train: int = 500,
    n_test: int = 100,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
) -> FkdDemoSummary:
    """Write training.csv, test.csv and IdLookupTable.csv in Kaggle's format under `out_dir`.

    Also writes solution.csv (`RowId,Location`, the hidden truth of every lookup row), which
    Kaggle keeps to itself, so that an exported submission can be scored. Same seed, same bytes.
    `out_dir` must be empty unless `force` (then those four files are replaced).
    """
    from tqdm import tqdm

    if n_train < 1 or n_test < 1:
        raise ValueError("make_fkd_demo needs at least one training and one test image")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    remove_stale(out_dir)  # what a killed make-demo left
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise InputError(out_dir, "output directory is not empty (use --force)")
    work = temp_folder(out_dir / "fkd-demo")
    always = [KEYPOINTS.index(name) for name in ALWAYS_LABELLED]
    partial = np.ones(len(KEYPOINTS), dtype=bool)
    partial[always] = False
    try:
        bar = tqdm(total=n_train + n_test, unit="img", desc="make-demo fkd", disable=not progress)
        with bar, open(work / "training.csv", "w", encoding="utf-8", newline="") as handle:
            handle.write(",".join([*coordinate_columns(), "Image"]) + "\n")
            complete = 0
            for index in range(n_train):
                image, keypoints = render_fkd_sample(seed, _TRAIN, index)
                if np.random.default_rng([seed, _TRAIN, index, 1]).random() < PARTIAL_FRACTION:
                    keypoints[partial] = np.nan
                else:
                    complete += 1
                handle.write(",".join([*_coordinate_cells(keypoints), _image_text(image)]) + "\n")
                bar.update()
            truth = _write_test(work, seed, n_test, bar)
        n_lookup = _write_lookup(work, seed, truth)
        for name in ("training.csv", "test.csv", "IdLookupTable.csv", "solution.csv"):
            (work / name).replace(out_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return FkdDemoSummary(out_dir, n_train, complete, n_test, n_lookup)


def _write_test(work: Path, seed: int, n_test: int, bar) -> np.ndarray:
    """test.csv (ImageId 1..n); returns the true keypoints (n, 15, 2)."""
    truth = np.empty((n_test, len(KEYPOINTS), 2))
    with open(work / "test.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("ImageId,Image\n")
        for index in range(n_test):
            image, truth[index] = render_fkd_sample(seed, _TEST, index)
            handle.write(f"{index + 1},{_image_text(image)}\n")
            bar.update()
    return truth


def _requested(rng: np.random.Generator) -> list[int]:
    """Keypoints one test image asks for: all 15, the four common ones, or a random subset."""
    draw = rng.random()
    if draw < 0.5:
        return list(range(len(KEYPOINTS)))
    if draw < 0.8:
        return sorted(KEYPOINTS.index(name) for name in ALWAYS_LABELLED)
    size = int(rng.integers(1, len(KEYPOINTS)))
    return sorted(rng.choice(len(KEYPOINTS), size=size, replace=False).tolist())


def _write_lookup(work: Path, seed: int, truth: np.ndarray) -> int:
    """IdLookupTable.csv (Location empty) and solution.csv; returns the number of rows."""
    rng = np.random.default_rng([seed, _LOOKUP])
    columns = coordinate_columns()
    row_id = 0
    with (
        open(work / "IdLookupTable.csv", "w", encoding="utf-8", newline="") as lookup,
        open(work / "solution.csv", "w", encoding="utf-8", newline="") as solution,
    ):
        lookup.write("RowId,ImageId,FeatureName,Location\n")
        solution.write("RowId,Location\n")
        for image, keypoints in enumerate(truth):
            for point in _requested(rng):
                for axis in (0, 1):
                    row_id += 1
                    lookup.write(f"{row_id},{image + 1},{columns[2 * point + axis]},\n")
                    solution.write(f"{row_id},{keypoints[point, axis]:.10g}\n")
    return row_id
