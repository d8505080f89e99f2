"""Masked landmark metrics: NaN in the truth means "not labelled" and is left out, never zeroed.

Predictions and truth are (n, K, 2) arrays of pixel coordinates. A value counts when the truth
has it; a point counts (for the distance metrics NME and PCK) when the truth has both its x and
y. Rows with nothing present are left out and counted; an input with nothing present at all is
an error, and so is a missing prediction where the truth has a value.

NME and PCK divide each point's distance by a per-image size, chosen by the layout
(`ensemble.competition.layout`):

- "inter-ocular" when the layout names the eyes: the distance between the two eye centres (an
  eye's centre is the mean of its points), for images with every eye point labelled;
- "bbox" otherwise: sqrt(w * h) of the bounding box of the image's labelled true landmarks (the
  box-size normalisation of AFLW / 300W-LP style benchmarks), for images whose box has a
  non-zero width and height.

What face-alignment papers report besides NME comes from the per-image NMEs e_i: the cumulative
error distribution CED(x) = share of images with e_i <= x; the failure rate FR@t = share with
e_i > t; and AUC@t = the area under CED on [0, t] divided by t, which for a step function is
exactly mean_i max(0, 1 - e_i / t). Both at t = 0.08 and 0.10 (FAILURE_THRESHOLDS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ensemble.competition.layout import Layout, layout_for

INTER_OCULAR = "inter-ocular"
BOUNDING_BOX = "bbox"
FAILURE_THRESHOLDS = (0.08, 0.10)  # AUC@t and FR@t, the thresholds of 300W / WFLW tables
_CHUNK = 2048  # images per block in per_image_nme (bounded memory on full-size data)

# The left and the right eye: each an index or the indices whose mean is the eye's centre.
Eyes = tuple[int | Sequence[int], int | Sequence[int]]


@dataclass(frozen=True)
class MetricReport:
    """All masked metrics of one prediction set, with what was left out."""

    mse: float
    rmse: float
    mae: float
    nme: float | None  # None when no row has a usable normalising size
    pck: float | None
    pck_alpha: float
    n_values: int  # present (scored) coordinate values
    rows_scored: int  # rows with at least one present value
    rows_empty: int  # rows left out: no present value
    rows_normalised: int  # rows in NME/PCK: both eyes labelled and apart (or a non-flat box)
    rows_without_eyes: int  # rows with values but left out of NME/PCK
    nme_norm: str = INTER_OCULAR  # what NME and PCK divide by: INTER_OCULAR or BOUNDING_BOX
    auc_08: float | None = None  # AUC of the CED up to NME 0.08 (None without NME)
    fr_08: float | None = None  # failure rate: share of images with NME > 0.08
    auc_10: float | None = None
    fr_10: float | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The report as a flat dict (e.g. a metrics.csv row)."""
        return asdict(self)


def normalisation(eyes: Eyes | None) -> str:
    """The name of the normalisation with these eyes: INTER_OCULAR, or BOUNDING_BOX for None."""
    return BOUNDING_BOX if eyes is None else INTER_OCULAR


def layout_eyes(layout: Layout) -> Eyes | None:
    """A layout's eyes as `Eyes` (a one-point eye as its index), None when it has none."""
    if layout.eyes is None:
        return None
    left, right = (eye[0] if len(eye) == 1 else eye for eye in layout.eyes)
    return left, right


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


def _eye_groups(eyes: Eyes, k: int) -> tuple[list[int], list[int]]:
    """The two eyes' index lists, checked against K points."""
    groups = [[int(eye)] if np.ndim(eye) == 0 else [int(i) for i in eye] for eye in eyes]
    flat = [i for group in groups for i in group]
    if (
        len(groups) != 2
        or not all(groups)
        or not all(0 <= i < k for i in flat)
        or set(groups[0]) & set(groups[1])
    ):
        raise ValueError(f"eye indices {eyes} must be two different indices in [0, {k})")
    return groups[0], groups[1]


def normalising_sizes(
    truth: np.ndarray, points: np.ndarray, eyes: Eyes | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row size NME divides by (n,) and the rows where it is usable (n,) bool.

    `points` (n, K) marks the labelled points. With `eyes`: the distance between the eye
    centres, usable where every eye point is labelled and the centres differ. Without: sqrt(w*h)
    of the labelled points' bounding box, usable where w > 0 and h > 0.
    """
    if eyes is not None:
        left, right = _eye_groups(eyes, truth.shape[1])
        centres = [truth[:, group].mean(axis=1) for group in (left, right)]
        size = np.linalg.norm(centres[0] - centres[1], axis=1)
        labelled = points[:, left].all(axis=1) & points[:, right].all(axis=1)
        return size, labelled & (size > 0)
    low = np.where(points[..., None], truth, np.inf).min(axis=1)  # (n, 2)
    high = np.where(points[..., None], truth, -np.inf).max(axis=1)
    extent = high - low
    usable = points.any(axis=1) & (extent > 0).all(axis=1)
    area = np.where(usable, extent[:, 0] * extent[:, 1], 1.0)
    return np.sqrt(area), usable


def normalised_distances(
    pred: np.ndarray, truth: np.ndarray, eyes: Eyes | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point distance / normalising size (n, K), its point mask, and the usable rows.

    The size is the inter-ocular distance with `eyes`, the bounding-box size without.
    """
    pred, truth, _ = _check(pred, truth)
    points = ~np.isnan(truth).any(axis=2)
    size, usable = normalising_sizes(truth, points, eyes)
    distance = np.linalg.norm(np.where(points[..., None], pred - truth, 0.0), axis=2)
    safe = np.where(usable, size, 1.0)
    return distance / safe[:, None], points & usable[:, None], usable


def _undefined(eyes: Eyes | None, metric: str) -> str:
    if eyes is None:
        return f"no row has a bounding box of non-zero width and height; {metric} is undefined"
    return f"no row has both eye centres {eyes} labelled; {metric} is undefined"


def masked_nme(pred: np.ndarray, truth: np.ndarray, eyes: Eyes | None = None) -> float:
    """Normalised mean error: per image, the mean point distance / its normalising size.

    The size is the inter-ocular distance with `eyes`, else the bounding-box size (module
    docstring). Averaged over the images where it is usable; ValueError when there is none.
    """
    ratio, points, usable = normalised_distances(pred, truth, eyes)
    if not usable.any():
        raise ValueError(_undefined(eyes, "NME"))
    per_row = (ratio * points).sum(axis=1)[usable] / points.sum(axis=1)[usable]
    return float(per_row.mean())


def masked_pck(
    pred: np.ndarray, truth: np.ndarray, eyes: Eyes | None = None, alpha: float = 0.1
) -> float:
    """Fraction of labelled points within `alpha` x the normalising size of their image."""
    if alpha <= 0:
        raise ValueError(f"PCK threshold alpha must be positive, got {alpha}")
    ratio, points, usable = normalised_distances(pred, truth, eyes)
    if not usable.any():
        raise ValueError(_undefined(eyes, "PCK"))
    return float((ratio[points] <= alpha).mean())


def per_image_nme(predicted: np.ndarray, truth: np.ndarray, eyes: Eyes | None) -> np.ndarray:
    """Per-image NME (n,): by the inter-ocular distance of `eyes`, by the bounding box without.

    NaN for an image whose normalising size is undefined (an eye unlabelled, a flat box) or that
    has no label. Computed in blocks of images, so memory stays bounded on full-size data.
    """
    out = np.full(len(truth), np.nan)
    for start in range(0, len(truth), _CHUNK):
        stop = start + _CHUNK
        true = np.asarray(truth[start:stop], dtype=np.float64)
        if np.isnan(true).all():
            continue
        ratio, points, usable = normalised_distances(predicted[start:stop], true, eyes)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_image = (ratio * points).sum(axis=1) / points.sum(axis=1)
        out[start:stop] = np.where(usable, per_image, np.nan)
    return out


def ced(nme: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The cumulative error distribution: for each threshold x, the share of images with NME
    <= x (images with NaN NME left out)."""
    errors = np.sort(np.asarray(nme, dtype=np.float64)[~np.isnan(nme)])
    if not len(errors):
        raise ValueError("no image has an NME: the CED is undefined")
    return np.searchsorted(errors, np.asarray(thresholds), side="right") / len(errors)


def ced_auc(nme: np.ndarray, threshold: float) -> float:
    """Area under the CED on [0, threshold], divided by threshold: mean max(0, 1 - e/t)."""
    errors = np.asarray(nme, dtype=np.float64)[~np.isnan(nme)]
    if not len(errors):
        raise ValueError("no image has an NME: the AUC is undefined")
    return float(np.mean(np.maximum(0.0, 1.0 - errors / threshold)))


def failure_rate(nme: np.ndarray, threshold: float) -> float:
    """Share of images whose NME is above `threshold` (NaN NMEs left out)."""
    errors = np.asarray(nme, dtype=np.float64)[~np.isnan(nme)]
    if not len(errors):
        raise ValueError("no image has an NME: the failure rate is undefined")
    return float(np.mean(errors > threshold))


def metric_report(
    pred: np.ndarray,
    truth: np.ndarray,
    eyes: Eyes | None = None,
    alpha: float = 0.1,
    *,
    layout: Layout | None = None,
) -> MetricReport:
    """MSE, RMSE, MAE, NME and PCK@alpha with the counts of what was left out.

    `eyes` default to those of `layout` (default: `layout_for(K)`, the built-in or generic
    layout); a layout without eyes normalises by the bounding box (`nme_norm` says which). NME
    and PCK are None when no row has a usable normalising size.
    """
    pred64, truth64, present = _check(pred, truth)
    errors = pred64[present] - truth64[present]
    mse = float(np.mean(errors**2))
    rows_with = present.any(axis=(1, 2))
    if eyes is None:
        eyes = layout_eyes(layout if layout is not None else layout_for(truth64.shape[1]))
    usable = normalised_distances(pred64, truth64, eyes)[2]
    nme = pck = None
    tails: dict[str, float | None] = {}
    if usable.any():
        nme = masked_nme(pred64, truth64, eyes)
        pck = masked_pck(pred64, truth64, eyes, alpha)
        per_image = per_image_nme(pred64, truth64, eyes)
        for threshold in FAILURE_THRESHOLDS:
            tag = f"{round(threshold * 100):02d}"
            tails[f"auc_{tag}"] = ced_auc(per_image, threshold)
            tails[f"fr_{tag}"] = failure_rate(per_image, threshold)
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
        nme_norm=normalisation(eyes),
        **tails,
    )
