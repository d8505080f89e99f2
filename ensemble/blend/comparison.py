"""`ens blend --fit RUNS --compare`: every fitting method scored in sample and held out.

Each method's out-of-fold blend (`ensemble.blend.cross_validation`) gives every validation image
a held-out score; their mean is the cross-validated score. The per-image scores also say how
sure a gap is: the difference of two methods on the same images has a standard error, and a
method is chosen by the one-standard-error rule (Breiman et al.; Hastie, Tibshirani and
Friedman, 7.10): the simplest whose cross-validated score is within one standard error of the
lowest. On a few hundred validation images most gaps between blends are inside that noise, and
the simpler blend is the safer bet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.blend.cross_validation import held_out_scores, mean_score
from ensemble.blend.fusion import fit_gamma, scored_values
from ensemble.blend.methods import fit_method
from ensemble.blend.names import CV_FOLDS, FUSION_METHOD, LEARNED_METHODS
from ensemble.competition.layout import dataset_layout
from ensemble.competition.metric import validation_score

# simplest first (fewest fitted numbers: uncertainty adds one gamma to lsq, per region a weight
# set per region, shrink one per landmark, stack two per landmark with intercepts); per region
# only with more than one region, uncertainty only when some run has sigma
COMPARED_FITS = (
    ("lsq", False),
    ("greedy", False),
    (FUSION_METHOD, False),
    ("lsq", True),
    ("greedy", True),
    ("shrink", False),
    ("stack", False),
)


@dataclass(frozen=True)
class MethodScore:
    """A fitting method's validation score in sample, and held out image by image."""

    method: str  # as asked for on the command line: "lsq", "greedy --per-region", ...
    in_sample: float
    held_out: np.ndarray | None  # (n,) each image's out-of-fold score; None: too few images

    @property
    def cross_validated(self) -> float | None:
        """The mean held-out score over the labelled images (None with too few images)."""
        return mean_score(self.held_out)


@dataclass(frozen=True)
class Comparison:
    """Every fitting method scored on the same validation images, beside the single runs."""

    methods: list[MethodScore]
    singles: dict[str, float]  # each run's own val score on the same images
    n_images: int
    shared_note: str = ""  # which runs have fewer validation images, when they differ

    def lowest(self) -> MethodScore:
        """The method with the lowest cross-validated score (the first, lsq, when none has one)."""
        scored = [m for m in self.methods if m.cross_validated is not None]
        return min(scored, key=lambda m: m.cross_validated) if scored else self.methods[0]

    def gap(self, method: MethodScore) -> tuple[float, float]:
        """Mean held-out score of `method` minus the lowest's, and its standard error (paired
        over images); NaN without held-out scores."""
        lowest = self.lowest()
        if method.held_out is None or lowest.held_out is None:
            return math.nan, math.nan
        difference = method.held_out - lowest.held_out
        difference = difference[np.isfinite(difference)]
        if len(difference) < 2:
            return math.nan, math.nan
        error = float(difference.std(ddof=1) / math.sqrt(len(difference)))
        return float(difference.mean()), error

    def chosen(self) -> MethodScore:
        """The simplest method (COMPARED_FITS order) within one standard error of the lowest
        cross-validated score; lsq when nothing could be cross-validated."""
        for method in self.methods:
            gap, error = self.gap(method)
            if method is self.lowest() or gap <= error:
                return method
        return self.lowest()


def compare_fits(
    runs_dir: str | Path, data_dir: str | Path | None = None, rounds: int = 50
) -> Comparison:
    """Score every fitting method (COMPARED_FITS) on the runs' validation images, in sample
    and held out."""
    from ensemble.io.aligned_predictions import load_validation
    from ensemble.io.run_folder import find_runs

    runs = find_runs(runs_dir)
    validation = load_validation(runs, data_dir)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    layout = dataset_layout(validation.data_dir, validation.n_points)
    has_sigma = any(item.sigma is not None for item in validation.aligned)
    sigma = validation.sigma() if has_sigma else None  # (runs, n, N): only when some run has it
    enough = len(names) >= 2 * CV_FOLDS
    methods = []
    for method, per_region in COMPARED_FITS:
        if (per_region and len(layout.regions) < 2) or (method == FUSION_METHOD and not has_sigma):
            continue  # one region: the same fit as the global one; no sigma: lsq again
        if method in LEARNED_METHODS and not enough:
            continue  # its strength cannot be chosen across the folds
        fitted = fit_method(method, predictions, truth, names, per_region, rounds, layout)
        if method == FUSION_METHOD:
            scored = scored_values(predictions, sigma, truth, names)
            base = fitted.point_weights()[scored.indices]
            in_sample = fit_gamma(scored.values, scored.sigma, scored.truth, base).score
        else:
            in_sample = validation_score(names, fitted.blend(predictions), truth)
        held_out = held_out_scores(
            predictions, truth, names, method, per_region, rounds, layout, sigma
        )
        label = f"{method} --per-region" if per_region else method
        methods.append(MethodScore(label, in_sample, held_out))
    singles = {
        run.name: validation_score(names, points, truth)
        for run, points in zip(runs, predictions, strict=True)
    }
    return Comparison(methods, singles, len(names), validation.shared_note())
