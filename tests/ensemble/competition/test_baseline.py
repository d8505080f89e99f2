"""The mean shape, in memory a few thousand images at a time and streamed from the label file,
against numpy's mean of the whole table in float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ensemble.competition.baseline import (
    baseline_for_train_images,
    mean_shape,
    mean_shape_points,
    train_mean_shape,
)
from ensemble.errors import InputError
from ensemble.io import landmarks
from tests.helpers import write_tiny_competition


def test_mean_shape_is_numpys_nanmean() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1000, size=(10_000, 5, 2)).astype(np.float32)  # several steps
    points[rng.random(points.shape[:2]) < 0.2] = np.nan
    got = mean_shape(points)
    assert got.dtype == np.float64
    expected = np.nanmean(points.astype(np.float64), axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_mean_shape_points_divides_each_image_by_its_size() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 500, size=(9_000, 4, 2)).astype(np.float32)
    sizes = rng.uniform(100, 900, size=(9_000, 2))
    targets = rng.uniform(100, 900, size=(3, 2))
    expected = (points.astype(np.float64) / sizes[:, None, :]).mean(axis=0) * targets[:, None, :]
    np.testing.assert_allclose(mean_shape_points(points, sizes, targets), expected, rtol=1e-12)


def test_a_point_without_any_label_is_named() -> None:
    points = np.ones((3, 4, 2), dtype=np.float32)
    points[:, 2] = np.nan
    with pytest.raises(InputError, match=r"Point_M2 has no label in any image .* among 3 images"):
        mean_shape(points, "labels.csv")


@pytest.fixture
def competition(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    """A tiny competition whose train/landmarks.csv is read in several blocks."""
    data = tmp_path / "data"
    contents = write_tiny_competition(data, n_train=40, n_points=12)
    monkeypatch.setattr(landmarks, "_BLOCK_BYTES", 1024)
    return data, contents


def test_train_mean_shape_streamed_over_blocks(competition) -> None:
    data, contents = competition
    blocks = list(landmarks.landmark_blocks(data / "train" / "landmarks.csv"))
    assert len(blocks) > 3
    _, points, sizes = contents["train"]
    expected = (points / sizes[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(train_mean_shape(data), expected, rtol=1e-12)


def test_baseline_for_train_images_leaves_them_out(competition) -> None:
    data, contents = competition
    names, points, sizes = contents["train"]
    chosen = [names[3], names[30], names[17]]
    others = np.ones(len(names), dtype=bool)
    others[[3, 30, 17]] = False
    relative = (points[others] / sizes[others][:, None, :]).mean(axis=0)
    expected = relative[None] * sizes[[3, 30, 17]][:, None, :]
    got = baseline_for_train_images(data, np.array(chosen, dtype=object))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    every = (points / sizes[:, None, :]).mean(axis=0)[None] * sizes[:, None, :]
    got = baseline_for_train_images(data, np.array(names, dtype=object))
    np.testing.assert_allclose(got, every, rtol=1e-12)
