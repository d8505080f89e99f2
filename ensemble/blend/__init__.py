"""Blending submissions: score-based weights, fitted weights, combiners, fast aligned I/O.

The public API lives in `ensemble.blend.api` and is re-exported here.
"""

from ensemble.blend.api import (
    BlendResult,
    FitReport,
    blend_from_scores,
    blend_runs,
    blend_submissions,
    fit_runs,
    fit_weights,
    weights_from_scores,
    weights_path_for,
)

__all__ = [
    "BlendResult",
    "FitReport",
    "blend_from_scores",
    "blend_runs",
    "blend_submissions",
    "fit_runs",
    "fit_weights",
    "weights_from_scores",
    "weights_path_for",
]
