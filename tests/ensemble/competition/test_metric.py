"""The leaderboard metric, the public/private split and the validation subsets."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.competition.metric import (
    points_score,
    public_mask,
    score_values,
    validation_score,
)
from ensemble.competition.subsets import draw_point_subsets, validation_subsets
from ensemble.errors import InputError
from ensemble.io.submission import Submission
from ensemble.io.test_points import TestPoints


def test_score_matches_hand_computation() -> None:
    truth = np.zeros((2, 4, 2))
    predicted = truth.copy()
    predicted[0, 1] = [3.0, 4.0]  # image 0: point 1 off by (3, 4)
    predicted[1, 2] = [1.0, 0.0]  # image 1: point 2 off by (1, 0), not scored
    indices = np.array([[1, 0], [0, 3]])
    # image 0: (9 + 16 + 0 + 0) / 4 = 6.25; image 1: 0; mean = 3.125
    assert points_score(predicted, truth, indices) == pytest.approx(3.125)


def test_public_private_split_is_fixed_by_name() -> None:
    names = np.array([f"{i:05d}.jpg" for i in range(101)], dtype=object)
    mask = public_mask(names)
    assert mask.sum() == 51
    shuffled = np.random.default_rng(0).permutation(101)
    np.testing.assert_array_equal(public_mask(names[shuffled]), mask[shuffled])


def test_score_submission_public_private() -> None:
    rng = np.random.default_rng(3)
    n, n_points, k = 40, 10, 3
    names = np.array([f"t{i}.jpg" for i in range(n)], dtype=object)
    truth = rng.uniform(0, 100, (n, n_points, 2))
    indices = draw_point_subsets(rng, n, n_points, k)
    values = np.take_along_axis(truth, indices[:, :, None], axis=1) + rng.normal(0, 2, (n, k, 2))
    gathered = np.take_along_axis(truth, indices[:, :, None], axis=1)
    result = score_values(Submission(names, values), TestPoints(names, indices), gathered)
    per_row = ((values - gathered) ** 2).reshape(n, -1).mean(axis=1)
    mask = public_mask(names)
    assert result.public == pytest.approx(per_row[mask].mean())
    assert result.private == pytest.approx(per_row[~mask].mean())


def test_score_submission_rejects_misfits() -> None:
    names = np.array(["a", "b", "c"], dtype=object)
    indices = np.array([[0, 1], [1, 2], [2, 0]])
    truth = np.zeros((3, 3, 2))
    good = np.zeros((3, 2, 2))
    with pytest.raises(InputError, match="3 rows, test_points.csv has 2"):
        score_values(Submission(names, good), TestPoints(names[:2], indices[:2]), truth[:2])
    swapped = names[[0, 2, 1]]
    with pytest.raises(InputError, match="out of order") as caught:
        score_values(Submission(swapped, good), TestPoints(names, indices), truth)
    assert caught.value.line == 3
    with pytest.raises(InputError, match="asks for 2"):
        score_values(Submission(names, np.zeros((3, 3, 2))), TestPoints(names, indices), truth)


def test_subsets_are_uniform_distinct_and_fixed_per_name() -> None:
    rows = draw_point_subsets(np.random.default_rng(0), 20000, 50, 30)
    assert all(len(set(row)) == 30 for row in rows[:500])
    counts = np.bincount(rows.ravel(), minlength=50)
    expected = 20000 * 30 / 50
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)
    names = [f"{i}.jpg" for i in range(10)]
    a = validation_subsets(names, 971)
    b = validation_subsets(names[::-1], 971)
    np.testing.assert_array_equal(a, b[::-1])


def test_validation_score_equals_direct_numpy() -> None:
    rng = np.random.default_rng(5)
    names = [f"v{i}.jpg" for i in range(25)]
    truth = rng.uniform(0, 200, (25, 971, 2))
    predicted = truth + rng.normal(0, 3, truth.shape)
    subsets = validation_subsets(names, 971, k=30, seed=0)
    direct = np.mean([((predicted[i, s] - truth[i, s]) ** 2).mean() for i, s in enumerate(subsets)])
    assert validation_score(names, predicted, truth) == pytest.approx(direct)
