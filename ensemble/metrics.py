"""Masked landmark metrics: NaN in the truth means "not labelled" and is left out, never zeroed.

Predictions and truth are (n, K, 2) arrays of pixel coordinates. A value counts when the truth
has it; a point counts (for the distance metrics NME and PCK) when the truth has both its x and
y. Rows with nothing present are left out and counted; an input with nothing present at all is
an error, and so is a missing prediction where the truth has a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FACE_971_EYES = (969, 970)  # left and right pupil centres of the 971-point layout
FKD_EYES = (0, 1)  # left_eye_center, right_eye_center of Kaggle Facial Keypoints


@dataclass(frozen=True)
class MetricReport:
    """All masked metrics of one prediction set, with what was left out."""

    mse: float
    rmse: float
    mae: float
    nme: float | None  # None when no row has both eye centres
    pck: float | None
    pck_alpha: float
    n_values: int  # present (scored) coordinate values
    rows_scored: int  # rows with at least one present value
    rows_empty: int  # rows left out: no present value
    rows_normalised: int  # rows in NME/PCK: both eye centres present and distinct
    rows_without_eyes: int  # rows with values but left out of NME/PCK

    def as_dict(self) -> dict[str, float | int | None]:
        """The report as a flat dict (e.g. a metrics.csv row)."""
        return asdict(self)


def default_eyes(n_points: int) -> tuple[int, int] | None:
    """The eye-centre indices of a known layout (15: Kaggle FKD, 971: the competition)."""
    return {15: FKD_EYES, 971: FACE_971_EYES}.get(n_points)


def _check(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes and masks; return float64 pred, truth and the present-value mask."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"predictions {pred.shape} and truth {truth.shape} must both be (n, K, 2)")
    if np.isinf(truth).any():
        raise ValueError("truth holds infinite values (NaN marks a missing label)")
    present = ~np.isnan(truth)
    if not present.any():
        raise ValueError("no labelled value at all: every truth value is missing (NaN)")
    unpredicted = present & ~np.isfinite(pred)
    if unpredicted.any():
        row, point, axis = np.argwhere(unpredicted)[0]
        raise ValueError(
            f"prediction is not finite where the truth has a value (row {row}, point {point}, "
            f"{'xy'[axis]}); {int(unpredicted.sum())} such value(s)"
        )
    return pred, truth, present


def masked_mse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error over the present truth values (pooled over all rows)."""
    pred, truth, present = _check(pred, truth)
    return float(np.mean((pred[present] - truth[present]) ** 2))


def masked_rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root of the masked MSE: the Kaggle Facial Keypoints leaderboard metric."""
    return float(np.sqrt(masked_mse(pred, truth)))


def masked_mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over the present truth values."""
    pred, truth, present = _check(pred, truth)
    return float(np.mean(np.abs(pred[present] - truth[present])))


def _normalised_distances(
    pred: np.ndarray, truth: np.ndarray, eyes: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point distance / inter-ocular distance (n, K), its point mask, and the usable rows."""
    pred, truth, _ = _check(pred, truth)
    left, right = eyes
    k = truth.shape[1]
    if not (0 <= left < k and 0 <= right < k and left != right):
        raise ValueError(f"eye indices {eyes} must be two different indices in [0, {k})")
    points = ~np.isnan(truth).any(axis=2)
    iod = np.linalg.norm(truth[:, left] - truth[:, right], axis=1)
    usable = points[:, left] & points[:, right] & (iod > 0)
    distance = np.linalg.norm(np.where(points[..., None], pred - truth, 0.0), axis=2)
    safe = np.where(usable, iod, 1.0)
    return distance / safe[:, None], points & usable[:, None], usable


def masked_nme(pred: np.ndarray, truth: np.ndarray, eyes: tuple[int, int]) -> float:
    """Normalised mean error: per image, the mean point distance / inter-ocular distance.

    Averaged over the images whose two eye centres are labelled (and distinct); raises
    ValueError when there is none.
    """
    ratio, points, usable = _normalised_distances(pred, truth, eyes)
    if not usable.any():
        raise ValueError(f"no row has both eye centres {eyes} labelled; NME is undefined")
    per_row = (ratio * points).sum(axis=1)[usable] / points.sum(axis=1)[usable]
    return float(per_row.mean())


def masked_pck(
    pred: np.ndarray, truth: np.ndarray, eyes: tuple[int, int], alpha: float = 0.1
) -> float:
    """Fraction of labelled points within `alpha` x the inter-ocular distance of their image."""
    if alpha <= 0:
        raise ValueError(f"PCK threshold alpha must be positive, got {alpha}")
    ratio, points, usable = _normalised_distances(pred, truth, eyes)
    if not usable.any():
        raise ValueError(f"no row has both eye centres {eyes} labelled; PCK is undefined")
    return float((ratio[points] <= alpha).mean())


def metric_report(
    pred: np.ndarray,
    truth: np.ndarray,
    eyes: tuple[int, int] | None = None,
    alpha: float = 0.1,
) -> MetricReport:
    """MSE, RMSE, MAE, NME and PCK@alpha with the counts of what was left out.

    `eyes` defaults to the layout's eye centres (`default_eyes`); NME and PCK are None when
    there are no eye indices or no row has both eyes labelled.
    """
    pred64, truth64, present = _check(pred, truth)
    errors = pred64[present] - truth64[present]
    mse = float(np.mean(errors**2))
    rows_with = present.any(axis=(1, 2))
    eyes = eyes if eyes is not None else default_eyes(truth64.shape[1])
    nme = pck = None
    usable = np.zeros(len(truth64), dtype=bool)
    if eyes is not None:
        usable = _normalised_distances(pred64, truth64, eyes)[2]
        if usable.any():
            nme = masked_nme(pred64, truth64, eyes)
            pck = masked_pck(pred64, truth64, eyes, alpha)
    return MetricReport(
        mse=mse,
        rmse=float(np.sqrt(mse)),
        mae=float(np.mean(np.abs(errors))),
        nme=nme,
        pck=pck,
        pck_alpha=alpha,
        n_values=int(present.sum()),
        rows_scored=int(rows_with.sum()),
        rows_empty=int((~rows_with).sum()),
        rows_normalised=int(usable.sum()),
        rows_without_eyes=int((rows_with & ~usable).sum()),
    )
