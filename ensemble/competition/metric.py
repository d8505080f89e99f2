"""The competition metric: per-row MSE over the requested points, the public/private split.

`validation_score` computes it on validation predictions the same way; `leaderboard` scores
submission files against the hidden test truth (`ens score`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ensemble.errors import InputError
from ensemble.io.checks import point_columns, quoted
from ensemble.io.submission import Submission, gather_points
from ensemble.io.test_points import TestPoints


def subset_mse(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-row MSE over the chosen values: arrays (n, K, 2); NaN entries are left out."""
    squared = np.subtract(np.asarray(predicted, np.float64), truth, order="C", dtype=np.float64)
    np.square(squared, out=squared)  # in place: one (n, K, 2) temporary, C order, no copies
    flat = squared.reshape(len(squared), -1)
    if not np.isnan(flat).any():
        return flat.mean(axis=1)  # the same sums and counts as nanmean, without its copies
    return np.nanmean(flat, axis=1)


def leaderboard_mse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The competition metric: per-image MSE over its scored values, averaged over images."""
    return float(subset_mse(predicted, truth).mean())


def points_score(
    predicted_points: np.ndarray, true_points: np.ndarray, indices: np.ndarray
) -> float:
    """Leaderboard-style score of full predictions (n, N, 2) on per-row index subsets (n, K).

    Missing labels (NaN truth) are left out; an image with none among its indices is skipped.
    """
    predicted = gather_points(predicted_points, indices)
    truth = gather_points(true_points, indices)
    labelled = ~np.isnan(truth).all(axis=(1, 2))
    if not labelled.any():
        raise ValueError("no image has a labelled point among its scored indices")
    return leaderboard_mse(predicted[labelled], truth[labelled])


def public_mask(file_names: np.ndarray) -> np.ndarray:
    """True for rows on the public leaderboard: the half with the smaller CRC32 of the file name.

    Fixed by file names alone (any row order gives the same split); ties broken by name.
    """
    names = [str(name) for name in file_names]
    keys = np.array([zlib.crc32(name.encode("utf-8")) for name in names], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    if (np.diff(keys[order]) == 0).any():  # equal CRCs (rare): break the ties by name
        order = np.lexsort((np.array(names, dtype=object).astype(str), keys))
    mask = np.zeros(len(names), dtype=bool)
    mask[order[: (len(names) + 1) // 2]] = True
    return mask


@dataclass(frozen=True)
class LeaderboardScore:
    """Public and private MSE of one submission."""

    public: float
    private: float
    rows: int


def check_submission_fits(submission: Submission, test_points: TestPoints, path: str) -> None:
    """Reject a submission whose rows, order or shape do not fit test_points.csv."""
    k = test_points.indices.shape[1]
    if submission.values.shape[1] != k:
        expected = ",".join(["file_name", *point_columns(k)][:3]) + ",..."
        raise InputError(
            path,
            f"header has {submission.values.shape[1]} points per row, test_points.csv asks for "
            f"{k} ({expected})",
            1,
        )
    if len(submission) != len(test_points):
        raise InputError(path, f"{len(submission)} rows, test_points.csv has {len(test_points)}")
    differs = submission.file_names != test_points.file_names
    if differs.any():
        row = int(np.flatnonzero(differs)[0])
        got, want = submission.file_names[row], test_points.file_names[row]
        where = "is missing" if want not in set(submission.file_names) else "is out of order"
        raise InputError(
            path,
            f"file name {quoted(got)} where test_points.csv has {quoted(want)} "
            f"({quoted(want)} {where})",
            row + 2,
        )
    missing = np.isnan(submission.values)
    if missing.any() and (missing := missing & test_points.mask[:, :, None]).any():
        row = int(np.argwhere(missing)[0][0])
        raise InputError(path, "missing value for a requested point", row + 2)


def score_values(
    submission: Submission,
    test_points: TestPoints,
    truth: np.ndarray,
    path: str = "<submission>",
) -> LeaderboardScore:
    """Score a submission against the truth at the requested points (n, K, 2), rows aligned.

    `truth` is `gather_points(true_points, test_points.indices)` (NaN at ragged padding).
    """
    check_submission_fits(submission, test_points, path)
    mask = test_points.mask
    values = (
        submission.values if mask.all() else np.where(mask[:, :, None], submission.values, np.nan)
    )
    per_row = subset_mse(values, truth)
    public = public_mask(test_points.file_names)
    return LeaderboardScore(
        public=float(per_row[public].mean()),
        private=float(per_row[~public].mean()) if (~public).any() else float("nan"),
        rows=len(per_row),
    )


def validation_score(
    file_names, predicted_points: np.ndarray, true_points: np.ndarray, k: int = 30, seed: int = 0
) -> float:
    """Leaderboard-comparable validation score: original pixels, fixed K-subsets per file name."""
    from ensemble.competition.subsets import validation_subsets

    indices = validation_subsets(file_names, np.asarray(true_points).shape[1], k=k, seed=seed)
    return points_score(predicted_points, true_points, indices)
