"""Benchmark: every blend method, scored honestly and on the demo's simulated leaderboard.

For the run folders in RUNS (trained on a demo data folder, whose hidden test truth `ens score`
knows): each method's validation score in sample and cross-validated (`ens blend --fit RUNS
--compare`'s numbers), then the blend it writes (`ens blend --fit RUNS --method M`) scored on the
public and private halves of the test set, beside the best single run. The difference of each
method's cross-validated score from lsq's comes with a bootstrap standard error over the
validation images (the out-of-fold blends resampled, 1,000 draws), so a gap can be read against
the noise of 30 points per image. With K-fold runs the validation images are every train image
(out-of-fold predictions).

    .venv/bin/python benchmarks/bench_blend_methods.py --runs RUNS [--data DATA]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ensemble.blend import blend_runs, compare_fits, fit_runs
from ensemble.blend.cross_validation import out_of_fold_blend, out_of_fold_fusion
from ensemble.blend.names import FUSION_METHOD
from ensemble.competition.layout import dataset_layout
from ensemble.competition.leaderboard import score_files
from ensemble.competition.metric import subset_mse
from ensemble.competition.subsets import validation_subsets
from ensemble.io.aligned_predictions import load_validation
from ensemble.io.run_folder import find_runs
from ensemble.io.submission import gather_points

BOOTSTRAP_DRAWS = 1000


def per_image_out_of_fold(method: str, per_region: bool, runs_dir: Path, data: Path | None):
    """Each validation image's held-out score (n,) under `method`."""
    validation = load_validation(find_runs(runs_dir), data)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    layout = dataset_layout(validation.data_dir, validation.n_points)
    if method == FUSION_METHOD:
        fused, truth_values = out_of_fold_fusion(
            predictions, validation.sigma(), truth, names, per_region, layout
        )
        return subset_mse(fused, truth_values)
    blended = out_of_fold_blend(predictions, truth, names, method, per_region, layout=layout)
    indices = validation_subsets(names, truth.shape[1])
    return subset_mse(gather_points(blended, indices), gather_points(truth, indices))


def main() -> None:
    """Print the Markdown table for the runs in --runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--data", type=Path, help="default: the runs' config.toml data")
    args = parser.parse_args()
    comparison = compare_fits(args.runs, args.data)
    runs = find_runs(args.runs)
    data = args.data or fit_runs(args.runs, args.data).data_dir
    private = {}
    with tempfile.TemporaryDirectory() as work:
        for row in comparison.methods:
            method, _, region = row.method.partition(" ")
            report = fit_runs(args.runs, args.data, method, per_region=bool(region))
            output = Path(work) / f"{method}{'_region' if region else ''}.csv"
            blend_runs(report, output)
            private[row.method] = score_files([output], data)[0]
        singles = score_files([run.submission_path for run in runs], data)
    rng = np.random.default_rng(0)
    reference = per_image_out_of_fold("lsq", False, args.runs, args.data)
    draws = rng.integers(0, len(reference), size=(BOOTSTRAP_DRAWS, len(reference)))
    print(f"{comparison.n_images} validation images{comparison.shared_note}")
    print("| method | in sample | cross-validated | vs lsq (± s.e.) | public | private |")
    print("|---|---|---|---|---|---|")
    for row in comparison.methods:
        method, _, region = row.method.partition(" ")
        mine = per_image_out_of_fold(method, bool(region), args.runs, args.data)
        difference = (mine - reference)[draws].mean(axis=1)
        gap = f"{100 * (mine - reference).mean() / reference.mean():+.2f}% ± "
        gap += f"{100 * difference.std() / reference.mean():.2f}%"
        score = private[row.method]
        print(
            f"| {row.method} | {row.in_sample:.4f} | {row.cross_validated:.4f} | {gap} | "
            f"{score.public:.4f} | {score.private:.4f} |"
        )
    best = min(range(len(runs)), key=lambda i: comparison.singles[runs[i].name])
    name = runs[best].name
    print(
        f"| best single run ({name}) | {comparison.singles[name]:.4f} | | | "
        f"{singles[best].public:.4f} | {singles[best].private:.4f} |"
    )


if __name__ == "__main__":
    main()
