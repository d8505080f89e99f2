"""Training targets of a run, made from the labels when asked for, and their statistics taken a
few thousand rows at a time, against numpy on the whole table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from models.data import CropTargets, RunData
from models.loop import spread_log_sigma

SIZE = 128


@pytest.fixture
def labels() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (9,000 x 3 x 2, float32, some missing), geometry rows, and the targets by hand."""
    rng = np.random.default_rng(0)
    n = 9_000  # several blocks of rows
    points = rng.uniform(0, 1200, size=(n, 3, 2)).astype(np.float32)
    points[rng.random((n, 3)) < 0.1] = np.nan
    geometry = np.column_stack(
        [rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, n), rng.uniform(0, 40, (n, 2))]
    )
    crop = points.astype(np.float64) * geometry[:, None, :2] + geometry[:, None, 2:]
    return points, geometry, (crop / SIZE - 0.5).astype(np.float32)


def test_targets_are_the_letterbox_map_by_hand(labels) -> None:
    points, geometry, expected = labels
    targets = CropTargets(points, geometry, SIZE)
    assert len(targets) == len(points)
    for rows in (np.array([8_999, 3, 4_500, 3]), slice(100, 5_000), np.arange(9_000)):
        got = targets[rows]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected[rows])


def test_mean_and_spread_of_the_training_targets(labels) -> None:
    points, geometry, expected = labels
    rng = np.random.default_rng(1)
    val_mask = rng.random(len(points)) < 0.2
    valid = rng.random(len(points)) > 0.05
    train = SimpleNamespace(valid=valid)
    data = RunData(train, None, points, CropTargets(points, geometry, SIZE), val_mask)
    chosen = expected[~val_mask & valid].astype(np.float64)
    mean = np.nanmean(chosen, axis=0)
    np.testing.assert_allclose(data.mean_targets(), mean, rtol=1e-12)
    rms = np.sqrt(np.nanmean((chosen - mean[None]) ** 2, axis=(0, 2)))
    expected_sigma = np.log(np.maximum(rms, 1e-4)).astype(np.float32)
    np.testing.assert_allclose(spread_log_sigma(data).numpy(), expected_sigma, rtol=1e-6)


def test_mean_relative_shape_of_the_training_images(labels) -> None:
    points, _, _ = labels
    rng = np.random.default_rng(2)
    val_mask = rng.random(len(points)) < 0.2
    valid = rng.random(len(points)) > 0.05
    sizes = rng.uniform(100, 900, size=(len(points), 2))
    train = SimpleNamespace(valid=valid, sizes=sizes)
    data = RunData(train, None, points, None, val_mask)
    chosen = ~val_mask & valid
    relative = points[chosen].astype(np.float64) / sizes[chosen][:, None, :]
    np.testing.assert_allclose(data.mean_relative_shape(), np.nanmean(relative, axis=0), rtol=1e-12)
