"""Sufficient statistics of validation predictions per landmark coordinate and fold of images.

The learned blends (`ensemble.blend.shrink`, `ensemble.blend.stack`) fit one linear model per
landmark (and coordinate) on every labelled value of the validation images, not only the 30
the leaderboard-style score samples per image: for a single landmark that is 32 times the data.
Their fits and held-out errors need only sums over images (count, sum of x, of y, of x x^T, of
x y, of y^2, with x the runs' predictions and y the truth), kept per fold of images: the sums of
any set of folds are the sum of its folds' sums, so every cross-validation below is a matter of
adding small arrays, never of another pass over the predictions.

Coordinates are stored relative to a per-landmark centre (the runs' mean prediction), which
keeps the sums of squares small; a linear model with an intercept is unchanged by the shift.

Images whose labels no run comes near (`clean_images`: a planted or real label error, a crowd
where the face found is another one) are left out of the sums: no blend can fix them, and their
squared errors, hundreds of times the others', would steer a per-landmark fit. Whether an image
is left out depends on that image alone, so leaving it out of a training fold leaks nothing
about the held-out one; the held-out scores still count every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_IMAGES = 64  # images per accumulation step: bounds the temporary arrays
OUTLIER_FACTOR = 10.0  # an image whose runs' mean misses by this x the median image is left out


@dataclass(frozen=True)
class Sums:
    """Sums over a set of images, per landmark and coordinate (N, 2, ...), R runs."""

    count: np.ndarray  # (N, 2) labelled values
    x: np.ndarray  # (N, 2, R)
    y: np.ndarray  # (N, 2)
    xx: np.ndarray  # (N, 2, R, R)
    xy: np.ndarray  # (N, 2, R)
    yy: np.ndarray  # (N, 2)

    def residual_gram(self) -> tuple[np.ndarray, np.ndarray]:
        """Per landmark, E^T E over its values (N, R, R), E the residuals (prediction - truth)
        of every run, and the number of values (N,): both coordinates together."""
        xy = self.xy[..., :, None]
        gram = self.xx - xy - np.swapaxes(xy, -1, -2) + self.yy[..., None, None]
        return gram.sum(axis=1), self.count.sum(axis=1)


@dataclass(frozen=True)
class PointStatistics:
    """`Sums` of each fold of images (arrays with a leading fold axis) and the centre used."""

    folds: Sums
    center: np.ndarray  # (N, 2): subtracted from predictions and truth before summing

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.folds.count)

    def sums(self, folds: list[int] | np.ndarray) -> Sums:
        """The sums over the images of the given folds."""
        chosen = np.asarray(folds, dtype=np.int64)
        return Sums(*(getattr(self.folds, name)[chosen].sum(axis=0) for name in _FIELDS))


_FIELDS = ("count", "x", "y", "xx", "xy", "yy")


def image_folds(n_images: int, folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of each image: a fixed random permutation cut into near-equal parts."""
    fold_of = np.empty(n_images, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(n_images)] = np.arange(n_images) % folds
    return fold_of


def clean_images(predictions: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """True for the images (n,) the learned fits use: the mean squared error of the runs' mean
    prediction (runs, n, N, 2) against the labels (n, N, 2) at most OUTLIER_FACTOR x the median
    image's (images without a label are left out)."""
    squared = (predictions.mean(axis=0) - truth) ** 2
    labelled = np.isfinite(squared).reshape(len(truth), -1)
    total = np.where(labelled, squared.reshape(len(truth), -1), 0.0).sum(axis=1)
    count = labelled.sum(axis=1)
    error = np.divide(total, count, out=np.full(len(truth), np.inf), where=count > 0)
    finite = error[np.isfinite(error)]
    if not len(finite):
        return np.zeros(len(truth), dtype=bool)
    return error <= OUTLIER_FACTOR * np.median(finite)


def point_statistics(
    predictions: np.ndarray,
    truth: np.ndarray,
    fold_of: np.ndarray,
    n_folds: int,
    keep: np.ndarray | None = None,
) -> PointStatistics:
    """The per-fold sums of predictions (runs, n, N, 2) against truth (n, N, 2), whose missing
    labels (NaN) are left out; `fold_of` gives each image's fold, `keep` (default: all) the
    images summed."""
    runs, _, n_points, _ = predictions.shape
    summed = np.ones(len(truth), dtype=bool) if keep is None else keep
    center = predictions.mean(axis=(0, 1))
    shapes = {
        "count": (n_points, 2),
        "x": (n_points, 2, runs),
        "y": (n_points, 2),
        "xx": (n_points, 2, runs, runs),
        "xy": (n_points, 2, runs),
        "yy": (n_points, 2),
    }
    totals = {name: np.zeros((n_folds, *shape)) for name, shape in shapes.items()}
    for fold in range(n_folds):
        images = np.flatnonzero((fold_of == fold) & summed)
        for start in range(0, len(images), CHUNK_IMAGES):
            chunk = images[start : start + CHUNK_IMAGES]
            y = truth[chunk] - center
            labelled = np.isfinite(y)
            y = np.where(labelled, y, 0.0)
            x = (predictions[:, chunk] - center) * labelled
            totals["count"][fold] += labelled.sum(axis=0)
            totals["x"][fold] += np.einsum("rbnc->ncr", x)
            totals["y"][fold] += y.sum(axis=0)
            totals["xx"][fold] += np.einsum("rbnc,sbnc->ncrs", x, x)
            totals["xy"][fold] += np.einsum("rbnc,bnc->ncr", x, y)
            totals["yy"][fold] += (y**2).sum(axis=0)
    return PointStatistics(Sums(**totals), center)
