"""A run's validation metrics: crop MSE, RMSE, MAE, NME and PCK, missing labels left out.

NaN in the truth means "not labelled" and is left out, never zeroed; with every label present
each metric equals its unmasked counterpart exactly. NME and PCK normalise by the layout's eyes,
or by the face's bounding box when it names none (`ensemble.competition.landmark_metrics`).
"""

from __future__ import annotations

import numpy as np

from ensemble.competition.landmark_metrics import metric_report
from ensemble.competition.layout import Layout

PCK_ALPHA = 0.1  # PCK threshold: a point is correct within 0.1 x the normalising size
# val_nme_norm: what NME and PCK divide by, "inter-ocular" (the layout's eyes) or "bbox";
# val_auc08 / val_fr08 (and 10): AUC of the per-image NME's CED and failure rate at NME 0.08
METRIC_KEYS = (
    "val_rmse",
    "val_mae",
    "val_nme",
    "val_pck",
    "val_auc08",
    "val_fr08",
    "val_auc10",
    "val_fr10",
    "val_nme_norm",
)


def masked_crop_mse(normalised: np.ndarray, targets: np.ndarray, size: int) -> float:
    """MSE in crop pixels over the labelled target values."""
    present = ~np.isnan(targets)
    return float(np.mean((normalised[present] - targets[present]) ** 2) * size**2)


def validation_metrics(
    predicted: np.ndarray, truth: np.ndarray, layout: Layout | None = None
) -> dict[str, float | str | None]:
    """Masked RMSE, MAE (pixels), NME, PCK@PCK_ALPHA, AUC and failure rate at NME 0.08 and
    0.10, and which normalisation they used.

    NME and PCK normalise by the layout's eyes, or by the face's bounding box when it has none
    (`ensemble.competition.landmark_metrics`); `layout` defaults to the built-in or generic layout
    for N.
    """
    report = metric_report(predicted, truth, alpha=PCK_ALPHA, layout=layout)
    return {
        "val_rmse": report.rmse,
        "val_mae": report.mae,
        "val_nme": report.nme,
        "val_pck": report.pck,
        "val_auc08": report.auc_08,
        "val_fr08": report.fr_08,
        "val_auc10": report.auc_10,
        "val_fr10": report.fr_10,
        "val_nme_norm": report.nme_norm,
    }
