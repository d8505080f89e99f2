"""Benchmark: every blend method, scored honestly and on the demo's simulated leaderboard.

For the run folders in RUNS (trained on a demo data folder, whose hidden test truth `ens score`
knows): each method's validation score in sample and cross-validated, with its gap to the lowest
and the gap's standard error over images (`ens blend --fit RUNS --compare`'s numbers), then the
blend it writes (`ens blend --fit RUNS --method M`) scored on the public and private halves of
the test set, beside the best single run. With K-fold runs the validation images are every
train image (out-of-fold predictions).

    .venv/bin/python benchmarks/bench_blend_methods.py --runs RUNS [--data DATA]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ensemble.blend import blend_runs, compare_fits, fit_runs
from ensemble.competition.leaderboard import score_files
from ensemble.io.run_folder import find_runs


def main() -> None:
    """Print the Markdown table for the runs in --runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--data", type=Path, help="default: the runs' config.toml data")
    args = parser.parse_args()
    start = time.perf_counter()
    comparison = compare_fits(args.runs, args.data)
    compare_seconds = time.perf_counter() - start
    runs = find_runs(args.runs)
    leaderboard = {}
    with tempfile.TemporaryDirectory() as work:
        for row in comparison.methods:
            method, _, region = row.method.partition(" ")
            report = fit_runs(args.runs, args.data, method, per_region=bool(region))
            output = Path(work) / f"{method}{'_region' if region else ''}.csv"
            blend_runs(report, output)
            leaderboard[row.method] = score_files([output], report.data_dir)[0]
        singles = score_files([run.submission_path for run in runs], report.data_dir)
    print(f"{comparison.n_images} validation images{comparison.shared_note}; ", end="")
    print(f"--compare took {compare_seconds:.0f} s; chosen: {comparison.chosen().method}")
    print("| method | in sample | cross-validated | vs the lowest (s.e.) | public | private |")
    print("|---|---|---|---|---|---|")
    for row in comparison.methods:
        gap, error = comparison.gap(row)
        versus = "lowest" if row is comparison.lowest() else f"{gap:+.3f} ({error:.3f})"
        score = leaderboard[row.method]
        print(
            f"| {row.method} | {row.in_sample:.4f} | {row.cross_validated:.4f} | {versus} | "
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
