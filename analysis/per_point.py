"""Which landmarks and regions carry the error: per-point MSE on the validation K-subsets.

Every number here uses `ensemble.subsets.validation_subsets`, so a run's score equals
`ensemble.scoring.validation_score`. The per-point MSE of landmark j is the mean over images
whose subset contains j of the squared error (x and y averaged); the dense version averages
over every image and every landmark (same expectation, less noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ensemble.formats import gather_points
from ensemble.layout import Layout
from ensemble.scoring import public_mask
from ensemble.subsets import validation_subsets

_CHUNK = 2048


@dataclass(frozen=True)
class PointErrors:
    """The errors of one set of predictions (a run or a blend) on the validation images."""

    name: str
    image_scores: np.ndarray  # (n,) leaderboard-style MSE of each image on its subset
    subset_sq: np.ndarray  # (n, K) squared error (x, y averaged) of each scored entry
    point_sq_sum: np.ndarray  # (N,) sum of the squared errors of each point's scored entries
    point_hits: np.ndarray  # (N,) how many images score each point
    point_mse_dense: np.ndarray  # (N,) per-point MSE over all images
    image_region_mse: np.ndarray  # (n, regions) dense MSE of each image in each region
    residuals: np.ndarray  # (n * K * 2,) signed errors of the scored entries

    @property
    def point_mse(self) -> np.ndarray:
        """Per-point MSE on the subsets, (N,); NaN where a point is never scored."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.point_hits > 0, self.point_sq_sum / self.point_hits, np.nan)

    @property
    def score(self) -> float:
        """The leaderboard-style validation score."""
        return float(self.image_scores.mean())


def point_errors(
    name: str, predicted: np.ndarray, truth: np.ndarray, subsets: np.ndarray, layout: Layout
) -> PointErrors:
    """Errors of predictions (n, N, 2) against truth (n, N, 2) on the subsets (n, K)."""
    n_points = truth.shape[1]
    difference = gather_points(predicted, subsets) - gather_points(truth, subsets)
    subset_sq = (difference**2).mean(axis=2)
    sums = np.bincount(subsets.ravel(), weights=subset_sq.ravel(), minlength=n_points)
    hits = np.bincount(subsets.ravel(), minlength=n_points)
    dense_sum = np.zeros(n_points)
    starts = np.array([region.start for region in layout.regions])
    sizes = np.array([len(region) for region in layout.regions])
    image_region = np.empty((len(truth), len(starts)))
    for start in range(0, len(truth), _CHUNK):
        stop = start + _CHUNK
        error = predicted[start:stop].astype(np.float64) - truth[start:stop]
        squared = (error**2).mean(axis=2)
        dense_sum += squared.sum(axis=0)
        image_region[start:stop] = np.add.reduceat(squared, starts, axis=1) / sizes
    return PointErrors(
        name=name,
        image_scores=subset_sq.mean(axis=1),
        subset_sq=subset_sq,
        point_sq_sum=sums,
        point_hits=hits,
        point_mse_dense=dense_sum / len(truth),
        image_region_mse=image_region,
        residuals=difference.ravel(),
    )


def bootstrap_ci(
    image_scores: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap CI of the mean over images, paired across rows: (S, n) -> (S, 2)."""
    scores = np.atleast_2d(np.asarray(image_scores, dtype=np.float64))
    n = scores.shape[1]
    rng = np.random.default_rng(seed)
    means = np.empty((len(scores), n_boot))
    chunk = max(1, min(n_boot, 4_000_000 // max(n * len(scores), 1)))
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        picks = rng.integers(0, n, size=(stop - start, n))
        means[:, start:stop] = scores[:, picks].mean(axis=2)
    tail = (1 - level) / 2 * 100
    return np.percentile(means, [tail, 100 - tail], axis=1).T


@dataclass(frozen=True)
class RegionPick:
    """A per-region pick: each region's points from the run best on that region."""

    best_run: list[int]  # per region, index into the runs
    score_in_sample: float  # chosen and scored on the same images (optimistic)
    score_cross_fit: float  # chosen on one half of the images, scored on the other


def region_pick(
    runs: list[PointErrors], subsets: np.ndarray, halves: np.ndarray, layout: Layout
) -> RegionPick:
    """Score a per-region pick of runs, in sample and cross-fitted over two image halves."""
    region_of_entry = layout.region_ids()[subsets]  # (n, K)
    stacked = np.stack([run.subset_sq for run in runs])  # (R, n, K)
    dense = np.stack([run.image_region_mse for run in runs])  # (R, n, regions)

    def image_scores(best_per_region: np.ndarray, rows: np.ndarray) -> np.ndarray:
        choice = best_per_region[region_of_entry[rows]][None]
        return np.take_along_axis(stacked[:, rows], choice, axis=0)[0].mean(axis=1)

    everyone = np.ones(len(subsets), dtype=bool)
    best = dense.mean(axis=1).argmin(axis=0)
    cross_fit = np.empty(len(subsets))
    for half in (halves, ~halves):
        other = ~half if (~half).any() else half
        cross_fit[half] = image_scores(dense[:, other].mean(axis=1).argmin(axis=0), half)
    return RegionPick(
        best_run=[int(b) for b in best],
        score_in_sample=float(image_scores(best, everyone).mean()),
        score_cross_fit=float(cross_fit.mean()),
    )


@dataclass(frozen=True)
class PointAnalysis:
    """Per-point analysis of several runs and their equal-weight blend on the same images."""

    file_names: np.ndarray
    layout: Layout
    k: int
    runs: list[PointErrors]
    blend: PointErrors | None
    ci: np.ndarray  # (len(runs) + blend, 2) bootstrap CI of each score, same order as `all`
    correlation: np.ndarray  # (R, R) correlation of the runs' signed errors
    mean_shape: np.ndarray  # (N, 2) mean true shape of the validation images
    pick: RegionPick | None
    level: float

    @property
    def all(self) -> list[PointErrors]:
        """The runs, then the blend (if there are two runs or more)."""
        return [*self.runs, *([self.blend] if self.blend is not None else [])]

    @property
    def best(self) -> PointErrors:
        """The run with the lowest score."""
        return min(self.runs, key=lambda run: run.score)


def analyze_points(
    run_names: list[str],
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    layout: Layout,
    k: int = 30,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
) -> PointAnalysis:
    """Analyse predictions (R, n, N, 2) of `run_names` against truth (n, N, 2)."""
    subsets = validation_subsets(file_names, truth.shape[1], k=k, seed=seed)
    runs = [
        point_errors(name, predictions[r], truth, subsets, layout)
        for r, name in enumerate(run_names)
    ]
    blend = None
    if len(runs) > 1:
        blend = point_errors("equal-weight blend", predictions.mean(axis=0), truth, subsets, layout)
    everything = [*runs, *([blend] if blend else [])]
    ci = bootstrap_ci(np.stack([item.image_scores for item in everything]), n_boot, level, seed)
    correlation = (
        np.corrcoef(np.stack([run.residuals for run in runs]))
        if len(runs) > 1
        else (np.ones((1, 1)))
    )
    pick = region_pick(runs, subsets, public_mask(file_names), layout) if len(runs) > 1 else None
    return PointAnalysis(
        file_names=np.asarray(file_names),
        layout=layout,
        k=subsets.shape[1],
        runs=runs,
        blend=blend,
        ci=ci,
        correlation=np.atleast_2d(correlation),
        mean_shape=truth.mean(axis=0, dtype=np.float64),
        pick=pick,
        level=level,
    )


@dataclass(frozen=True)
class RegionError:
    """The error of one region: dense and subset MSE, and its share of the score."""

    name: str
    size: int
    mse_dense: float
    mse_subset: float
    share: float


def region_errors(errors: PointErrors, layout: Layout) -> list[RegionError]:
    """Per-region MSE of `errors`; `share` is the region's part of the summed scored error."""
    total = errors.point_sq_sum.sum()
    out = []
    for region in layout.regions:
        part = slice(region.start, region.stop)
        hits = errors.point_hits[part].sum()
        sq = errors.point_sq_sum[part].sum()
        out.append(
            RegionError(
                name=region.name,
                size=len(region),
                mse_dense=float(errors.point_mse_dense[part].mean()),
                mse_subset=float(sq / hits) if hits else float("nan"),
                share=float(sq / total) if total > 0 else float("nan"),
            )
        )
    return out
