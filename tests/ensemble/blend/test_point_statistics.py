"""Per-fold sums of validation predictions: equal to numpy by hand, additive over folds."""

from __future__ import annotations

import numpy as np

from ensemble.blend.cross_validation import image_folds
from ensemble.blend.point_statistics import point_statistics


def _case(seed: int = 0, n: int = 70, points: int = 9, runs: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 100, size=(n, points, 2))
    predictions = (
        truth[None]
        + rng.normal(size=(runs, n, points, 2))
        + rng.normal(size=runs)[:, None, None, None]
    )
    truth[rng.random((n, points)) < 0.1] = np.nan  # missing labels, both coordinates
    return predictions, truth


def test_sums_equal_numpy_by_hand_with_missing_labels():
    predictions, truth = _case()
    folds = image_folds(len(truth), 5)
    statistics = point_statistics(predictions, truth, folds, 5)
    chosen = np.isin(folds, [1, 3])
    sums = statistics.sums([1, 3])
    x = predictions[:, chosen] - statistics.center  # (runs, n, N, 2)
    y = truth[chosen] - statistics.center
    for point in (0, 4, 8):
        for axis in (0, 1):
            labelled = np.isfinite(y[:, point, axis])
            xs = x[:, labelled, point, axis].T  # (values, runs)
            ys = y[labelled, point, axis]
            assert sums.count[point, axis] == labelled.sum()
            assert np.allclose(sums.x[point, axis], xs.sum(axis=0))
            assert np.isclose(sums.y[point, axis], ys.sum())
            assert np.allclose(sums.xx[point, axis], xs.T @ xs)
            assert np.allclose(sums.xy[point, axis], xs.T @ ys)
            assert np.isclose(sums.yy[point, axis], ys @ ys)


def test_residual_gram_is_the_residuals_own_product():
    predictions, truth = _case(seed=1)
    folds = image_folds(len(truth), 5)
    gram, count = point_statistics(predictions, truth, folds, 5).sums(range(5)).residual_gram()
    for point in (2, 7):
        residuals = (predictions[:, :, point, :] - truth[None, :, point, :]).reshape(3, -1).T
        residuals = residuals[np.isfinite(residuals).all(axis=1)]  # (values, runs)
        assert count[point] == len(residuals)
        assert np.allclose(gram[point], residuals.T @ residuals)


def test_sums_of_folds_add_up_to_the_sums_of_their_union():
    predictions, truth = _case(seed=2)
    folds = image_folds(len(truth), 5)
    statistics = point_statistics(predictions, truth, folds, 5)
    merged = (folds == 0) | (folds == 2)
    relabelled = np.where(merged, 0, 1)
    together = point_statistics(predictions, truth, relabelled, 2)
    both = statistics.sums([0, 2])
    center_shift = np.allclose(statistics.center, together.center)
    assert center_shift
    for name in ("count", "x", "y", "xx", "xy", "yy"):
        assert np.allclose(getattr(both, name), getattr(together.sums([0]), name))
