"""Shrunk per-landmark weights: infinite strength is the global lsq fit, zero strength the free
per-landmark fit (both against exact numpy solutions), and cross-validation picks the strength
the data ask for."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ensemble.blend.cross_validation import image_folds
from ensemble.blend.fit import simplex_least_squares
from ensemble.blend.point_statistics import point_statistics
from ensemble.blend.shrink import fit_shrunk, shrunk_weights
from ensemble.competition.layout import Layout, Region


def exact_simplex_least_squares(q: np.ndarray) -> np.ndarray:
    """min w^T Q w on the simplex by enumerating supports (KKT: the optimum is the
    equality-constrained optimum of its support, w ~ Q_S^-1 1, with w >= 0)."""
    size = len(q)
    best, best_value = None, np.inf
    for support_size in range(1, size + 1):
        for support in itertools.combinations(range(size), support_size):
            chosen = list(support)
            try:
                raw = np.linalg.solve(q[np.ix_(chosen, chosen)], np.ones(len(chosen)))
            except np.linalg.LinAlgError:
                continue
            if raw.sum() <= 0 or (raw < -1e-12).any():
                continue
            weights = np.zeros(size)
            weights[chosen] = raw / raw.sum()
            value = weights @ q @ weights
            if value < best_value:
                best, best_value = weights, value
    return best


def _layout(points: int) -> Layout:
    half = points // 2
    return Layout("two halves", (Region("left", 0, half), Region("right", half, points)))


def _case(seed: int, n: int = 80, points: int = 12, specialised: bool = False):
    """Three runs; with `specialised`, run 0 is good on the left half, run 1 on the right."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 100, size=(n, points, 2))
    noise = np.ones((3, points))
    noise[2] = 1.5
    if specialised:
        noise[0, points // 2 :] = noise[1, : points // 2] = 4.0
    shared = rng.normal(size=(n, points, 2))
    predictions = np.stack(
        [
            truth + noise[r][None, :, None] * (0.3 * shared + rng.normal(size=truth.shape))
            for r in range(3)
        ]
    )
    return predictions, truth


def test_simplex_solver_matches_exact_enumeration():
    rng = np.random.default_rng(0)
    forms = []
    for runs in (2, 3, 5):
        for _ in range(20):
            factor = rng.normal(size=(40, runs)) * rng.uniform(0.2, 3, size=runs)
            factor += rng.normal(size=(40, 1)) * rng.uniform(0, 3)  # correlated errors
            forms.append((factor.T @ factor / 40, runs))
    for q, _ in forms:
        ours = simplex_least_squares(q)
        exact = exact_simplex_least_squares(q)
        assert ours @ q @ ours <= exact @ q @ exact * (1 + 1e-9)
        assert np.allclose(ours, exact, atol=1e-5)
    same_size = np.stack([q for q, runs in forms if runs == 3])
    batch = simplex_least_squares(same_size)
    assert np.allclose(batch, [simplex_least_squares(q) for q in same_size])


def test_simplex_solver_with_two_identical_runs_is_never_worse_than_the_best():
    q = np.array([[2.0, 2.0, 1.0], [2.0, 2.0, 1.0], [1.0, 1.0, 3.0]])
    weights = simplex_least_squares(q)
    assert weights.min() >= 0 and np.isclose(weights.sum(), 1)
    exact = exact_simplex_least_squares(q[1:, 1:])  # the duplicate run removed
    assert np.isclose(weights @ q @ weights, exact @ q[1:, 1:] @ exact)


def _residuals(predictions: np.ndarray, truth: np.ndarray, point: int | slice) -> np.ndarray:
    columns = predictions[:, :, point, :] - truth[None, :, point, :]
    return columns.reshape(len(predictions), -1).T  # (values, runs)


def test_infinite_strength_is_the_global_lsq_fit_on_every_labelled_value():
    predictions, truth = _case(3, specialised=True)
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    weights = shrunk_weights(statistics.sums(range(5)), math.inf, _layout(12).region_ids())
    residuals = _residuals(predictions, truth, slice(None))
    exact = exact_simplex_least_squares(residuals.T @ residuals / len(residuals))
    assert np.allclose(weights, exact[None, :], atol=1e-6)


def test_zero_strength_is_a_free_least_squares_fit_per_landmark():
    predictions, truth = _case(4, specialised=True)
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    weights = shrunk_weights(statistics.sums(range(5)), 0.0, _layout(12).region_ids())
    for point in range(12):
        residuals = _residuals(predictions, truth, point)
        exact = exact_simplex_least_squares(residuals.T @ residuals / len(residuals))
        assert np.allclose(weights[point], exact, atol=1e-6)


def test_an_intermediate_strength_pools_landmark_region_and_global_forms():
    predictions, truth = _case(5, specialised=True)
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    sums = statistics.sums(range(5))
    pseudo = 2.0 * 2 * len(truth)  # strength 2 x the values per landmark (2 per image)
    weights = shrunk_weights(sums, 2.0, _layout(12).region_ids())
    everything = _residuals(predictions, truth, slice(None))
    global_form = everything.T @ everything / len(everything)
    left = _residuals(predictions, truth, slice(0, 6))
    region_form = (left.T @ left + pseudo * global_form) / (len(left) + pseudo)
    own = _residuals(predictions, truth, 1)
    form = (own.T @ own + pseudo * region_form) / (len(own) + pseudo)
    assert np.allclose(weights[1], exact_simplex_least_squares(form), atol=1e-6)


def test_cross_validation_shrinks_little_where_landmarks_differ_and_fully_where_they_do_not():
    specialised = _case(6, n=150, specialised=True)
    alike = _case(6, n=50, specialised=False)  # few values per landmark: pooling pays
    chosen = {}
    for label, (predictions, truth) in (("specialised", specialised), ("alike", alike)):
        statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
        chosen[label] = fit_shrunk(statistics, range(5), _layout(12))
    left, right = chosen["specialised"].weights[:6], chosen["specialised"].weights[6:]
    assert chosen["specialised"].strength <= 1.0
    assert left[:, 0].mean() > 0.6 and right[:, 1].mean() > 0.6  # each run where it is good
    errors = {label: fit.held_out_errors for label, fit in chosen.items()}
    assert errors["specialised"][0.0] < 0.9 * errors["specialised"][math.inf]
    assert errors["alike"][math.inf] < errors["alike"][0.0]  # pooling helps when alike
    assert chosen["alike"].strength > 0
    assert np.ptp(chosen["alike"].weights, axis=0).max() < 0.15  # nearly the same everywhere
