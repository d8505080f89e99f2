"""`ens score`: the simulated leaderboard (demo data ships the hidden test truth)."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import FILE, data_option
from ensemble.io.data_folder import DataFolder


@click.command()
@click.argument("submissions", nargs=-1, required=True, type=FILE)
@data_option(
    "Data folder whose test/landmarks.csv holds the hidden truth (demo data).", required=True
)
@click.option(
    "--scores",
    "scores_path",
    type=FILE,
    help="scores.csv to fill with the public/private scores (row matched by submission path).",
)
def score(submissions: tuple[Path, ...], data_dir: Path, scores_path: Path | None) -> None:
    """Score SUBMISSIONS like the leaderboard: public and private MSE.

    The metric is the competition's: for each test image the mean squared error over the
    requested points (x and y), averaged over images. Public and private are two disjoint
    halves of the test rows, fixed by file name.
    """
    from ensemble.competition.leaderboard import record_scores, score_files
    from ensemble.io.atomic import check_output

    if scores_path is not None:  # --scores is updated in place; it must not be another input
        truth = [DataFolder.at(data_dir).test_landmarks, DataFolder.at(data_dir).test_points]
        check_output(scores_path, [*submissions, *truth], [data_dir])
    _refuse_imported_fkd(data_dir)
    results = score_files(submissions, data_dir)
    width = max(len(str(path)) for path in submissions)
    click.echo(f"{'submission':<{width}}  {'public':>10}  {'private':>10}")
    for path, result in zip(submissions, results, strict=True):
        click.echo(f"{str(path):<{width}}  {result.public:>10.4f}  {result.private:>10.4f}")
    if scores_path is not None:
        record_scores(scores_path, submissions, results)
        click.echo(f"updated {scores_path}")


def _refuse_imported_fkd(data_dir: Path) -> None:
    """Say why a folder written by `ens import-fkd` cannot be scored here, and what to do."""
    from ensemble.errors import InputError

    truth = DataFolder.at(data_dir).test_landmarks
    if (data_dir / "fkd.json").is_file() and not truth.is_file():
        raise InputError(
            truth,
            "no test truth: this folder was written by `ens import-fkd`, and Kaggle keeps the "
            "test keypoints hidden (a make-demo solution.csv is not imported either). Score on "
            "Kaggle: `ens export-fkd SUBMISSION --lookup IdLookupTable.csv -o kaggle.csv`, then "
            "upload kaggle.csv; compare runs locally by their val scores (RUNS/scores.csv)",
        )
