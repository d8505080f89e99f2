"""Blending submissions: score-based weights, fitted weights, combiners, inverse-variance fusion.

The public API lives in `ensemble.blend.api` and is re-exported here, imported on first use:
`ens --help` loads `ensemble.blend.names` (the option lists), which should not pull in numpy and
the fitting code. The submission files themselves are read and written by `ensemble.io`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "BlendResult",
    "FitReport",
    "blend_from_scores",
    "blend_runs",
    "blend_submissions",
    "compare_fits",
    "fit_runs",
    "fit_weights",
    "weights_from_scores",
    "weights_path_for",
]

if TYPE_CHECKING:
    from ensemble.blend.api import (
        BlendResult,
        FitReport,
        blend_from_scores,
        blend_runs,
        blend_submissions,
        compare_fits,
        fit_runs,
        fit_weights,
        weights_from_scores,
        weights_path_for,
    )


def __getattr__(name: str) -> object:
    if name in __all__:
        from ensemble.blend import api

        return getattr(api, name)
    raise AttributeError(f"module 'ensemble.blend' has no attribute '{name}'")
