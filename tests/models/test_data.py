"""Training targets of a run, converted a few thousand rows at a time."""

from __future__ import annotations

import numpy as np

from models.data import crop_targets


def test_crop_targets_are_the_letterbox_map_by_hand() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1200, size=(9_000, 3, 2)).astype(np.float32)  # several steps
    points[5, 1] = np.nan
    geometry = np.column_stack(
        [rng.uniform(0.1, 1, 9_000), rng.uniform(0.1, 1, 9_000), rng.uniform(0, 40, (9_000, 2))]
    )
    size = 128
    crop = points.astype(np.float64) * geometry[:, None, :2] + geometry[:, None, 2:]
    expected = (crop / size - 0.5).astype(np.float32)
    got = crop_targets(points, geometry, size)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
