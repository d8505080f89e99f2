"""`import_fkd`: Kaggle Facial Keypoints files -> the package's competition layout."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ensemble.errors import InputError
from ensemble.fkd.kaggle_files import (
    Lookup,
    iter_training,
    read_lookup,
    read_test_csv,
    requested_points,
    test_file_name,
    train_file_name,
)
from ensemble.fkd.layout import IMAGE_SIZE, KEYPOINTS, N_KEYPOINTS
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmarks import write_landmarks
from ensemble.io.temps import temp_folder
from ensemble.io.test_points import write_test_points

FORMAT_NAME = "kaggle-facial-keypoints"


@dataclass(frozen=True)
class ImportSummary:
    """What `import_fkd` wrote."""

    out_dir: Path
    n_train: int
    n_train_complete: int
    n_test: int
    n_requested_images: int
    n_lookup_rows: int


def _save_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="PNG", compress_level=1)  # 3x faster than 6


def _check_output(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise InputError(out_dir, "output directory is not empty")


def import_fkd(
    training_csv: str | Path, test_csv: str | Path, lookup_csv: str | Path, out_dir: str | Path
) -> ImportSummary:
    """Convert Kaggle's training.csv, test.csv and IdLookupTable.csv to the package layout.

    Writes train/images/<row>.png, train/landmarks.csv (empty cells = missing keypoints),
    test/images/<ImageId>.png, test/test_points.csv (each image's requested keypoints, in
    lookup order; ragged) and fkd.json (keypoint names and the lookup mapping). Everything is
    written to a temporary folder that becomes `out_dir` only when all inputs were valid.
    """
    out_dir = Path(out_dir)
    _check_output(out_dir)
    test_ids, test_images = read_test_csv(test_csv)
    lookup = read_lookup(lookup_csv, test_ids)
    work = temp_folder(out_dir)
    try:
        n_train, n_complete = _write_train(Path(training_csv), DataFolder.at(work))
        n_requested = _write_test(test_ids, test_images, lookup, DataFolder.at(work))
        _write_metadata(work / "fkd.json", lookup, n_train, len(test_ids))
        if out_dir.is_dir():
            out_dir.rmdir()  # empty (checked above); os.replace needs the name free or empty
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ImportSummary(out_dir, n_train, n_complete, len(test_ids), n_requested, len(lookup))


def _write_train(training_csv: Path, out: DataFolder) -> tuple[int, int]:
    """Training PNGs and landmarks.csv; returns (rows, rows with all 15 keypoints)."""
    from tqdm import tqdm

    images_dir = out.images("train")
    images_dir.mkdir(parents=True)
    names: list[str] = []
    chunks: list[np.ndarray] = []
    with tqdm(unit="img", desc="import-fkd train", leave=False) as bar:
        for chunk in iter_training(training_csv):
            for row, image in enumerate(chunk.images):
                name = train_file_name(chunk.first_line + row)
                _save_png(images_dir / name, image)
                names.append(name)
            chunks.append(chunk.points)
            bar.update(len(chunk.images))
    points = np.concatenate(chunks)
    write_landmarks(out.train_landmarks, names, points, allow_missing=True)
    complete = int(np.isfinite(points).all(axis=(1, 2)).sum())
    return len(names), complete


def _write_test(
    test_ids: np.ndarray, test_images: np.ndarray, lookup: Lookup, out: DataFolder
) -> int:
    """Test PNGs and test_points.csv; returns the number of images the lookup asks about."""
    images_dir = out.images("test")
    images_dir.mkdir(parents=True)
    for image_id, image in zip(test_ids.tolist(), test_images, strict=True):
        _save_png(images_dir / test_file_name(image_id), image)
    order, _ = requested_points(lookup)
    asked = [image_id for image_id in test_ids.tolist() if image_id in order]
    indices = np.full((len(asked), N_KEYPOINTS), -1, dtype=np.int64)
    for row, image_id in enumerate(asked):
        indices[row, : len(order[image_id])] = order[image_id]
    width = max(len(points) for points in order.values())
    names = [test_file_name(image_id) for image_id in asked]
    write_test_points(out.test_points, names, indices[:, :width])
    return len(asked)


def _write_metadata(path: Path, lookup: Lookup, n_train: int, n_test: int) -> None:
    """fkd.json: the format, keypoint names, image size and the lookup table mapping."""
    meta = {
        "format": FORMAT_NAME,
        "image_size": IMAGE_SIZE,
        "keypoints": list(KEYPOINTS),
        "n_train": n_train,
        "n_test": n_test,
        "lookup_columns": ["RowId", "ImageId", "FeatureName", "file_name", "point", "axis", "pair"],
        "lookup": [
            [row_id, image_id, feature, test_file_name(image_id), point, axis, pair]
            for row_id, image_id, feature, point, axis, pair in zip(
                lookup.row_ids.tolist(),
                lookup.image_ids.tolist(),
                lookup.features.tolist(),
                lookup.points.tolist(),
                lookup.axes.tolist(),
                requested_points(lookup)[1].tolist(),
                strict=True,
            )
        ],
    }
    path.write_text(json.dumps(meta, separators=(",", ":")) + "\n", encoding="utf-8")
