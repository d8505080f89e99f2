"""Why a fit gave a run no weight: a run that dominates it, or no better than the mean shape.

With r_i and r_j two runs' gathered validation residuals, the fit's score of the mix
(1 - t) r_j + t r_i can only fall below run j's alone for some t > 0 when
E[r_i r_j] < E[r_j^2], that is when their error correlation c = E[r_i r_j] / sqrt(E[r_i^2]
E[r_j^2]) is below sqrt(E[r_j^2] / E[r_i^2]), the ratio of their error sizes. When c reaches it,
run j *dominates* run i: no mix of the two beats j alone, and least squares gives i nothing.
(E[.] is the mean over the gathered values the fit minimises; it equals the val score when
every image has all its scored points labelled, not with missing labels, which the val score
averages per image first. c is taken about zero, not the mean: the fit minimises squared error.)
"""

from __future__ import annotations

import numpy as np

from ensemble.blend.fit import quadratic_form

NO_WEIGHT = 1e-3  # a (mean) weight at or below this counts as no weight


def why_no_weight(
    names: list[str],
    weights: np.ndarray,
    val_scores: np.ndarray,
    residuals: np.ndarray,
    baseline: float | None,
) -> dict[str, str]:
    """The reason, by run name, for every run whose weight is at most NO_WEIGHT.

    `weights` (runs,) are the fitted (mean) weights, `val_scores` the runs' val scores on the
    fit's images, `residuals` (values, runs) the gathered residuals the fit saw, `baseline` the
    mean shape's val score on the same images (None when unknown).
    """
    moments = quadratic_form(residuals)  # E[r_i r_j]
    kept = [j for j, weight in enumerate(weights) if weight > NO_WEIGHT]
    reasons = {}
    for i, name in enumerate(names):
        if weights[i] > NO_WEIGHT:
            continue
        if baseline is not None and val_scores[i] >= baseline:
            reasons[name] = (
                f"no better than the mean-shape baseline (val {val_scores[i]:.4g}, the "
                f"baseline's {baseline:.4g})"
            )
        elif kept:
            reasons[name] = _against_kept(names, moments, i, kept)
    return reasons


def _against_kept(names: list[str], moments: np.ndarray, i: int, kept: list[int]) -> str:
    """The run among `kept` that dominates run i, or the closest one when none does alone."""
    scores = np.diag(moments)  # mean squared error over the fitted values
    correlation = {j: error_correlation(moments, i, j) for j in kept}
    ratio = {j: np.sqrt(scores[j] / scores[i]) if scores[i] > 0 else np.inf for j in kept}
    dominating = [j for j in kept if correlation[j] >= ratio[j]]
    j = max(dominating or kept, key=lambda k: correlation[k])
    if dominating:
        return (
            f"dominated by {names[j]}: their errors correlate {correlation[j]:.2f}, at least "
            f"sqrt({scores[j]:.4g} / {scores[i]:.4g}) = {ratio[j]:.2f}, the ratio of their RMS "
            f"errors on the fitted points, so no mix of the two beats {names[j]} alone"
        )
    return (
        f"the other runs together already give what it adds (no single run dominates it; the "
        f"closest is {names[j]}, errors correlated {correlation[j]:.2f}, mean squared errors "
        f"{scores[i]:.4g} against {scores[j]:.4g})"
    )


def error_correlation(moments: np.ndarray, i: int, j: int) -> float:
    """E[r_i r_j] / sqrt(E[r_i^2] E[r_j^2]) from the matrix of second moments (0 if a run is
    perfect)."""
    scale = np.sqrt(moments[i, i] * moments[j, j])
    return float(moments[i, j] / scale) if scale > 0 else 0.0
