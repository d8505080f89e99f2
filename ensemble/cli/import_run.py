"""`ens import-run`: predictions made elsewhere -> a run folder, scored like a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import FILE, data_option, out_option


@click.command("import-run")
@click.argument("name")
@out_option
@data_option(
    "Data folder the predictions are for (train/landmarks.csv, test/test_points.csv).",
    required=True,
    exists=True,
)
@click.option(
    "--test",
    "test_path",
    required=True,
    type=FILE,
    help="Test predictions: every landmark of each test image, or a submission CSV.",
)
@click.option(
    "--val",
    "val_path",
    type=FILE,
    help="Validation predictions (every landmark) of some or all train images: the run's val "
    "score, and what fitted blends and the analyses use.",
)
@click.option(
    "--order",
    type=click.Choice(["names", "data"]),
    default="names",
    show_default=True,
    help="How rows are matched to images: by their file names, or for points saved without "
    "names ('data') row by row in the order of train/landmarks.csv (--val) and "
    "test/test_points.csv (--test).",
)
@click.option("--force", is_flag=True, help="Replace an existing OUT/NAME.")
def import_run(
    name: str,
    out_dir: Path,
    data_dir: Path,
    test_path: Path,
    val_path: Path | None,
    order: str,
    force: bool,
) -> None:
    """Make the run folder OUT/NAME from predictions made elsewhere.

    It holds what a trained run holds, so blend, analyze and score take it as one:
    test_predictions.npz and submission.csv, val_predictions.npz and its val score with
    --val, and summary.json (source "imported", the inputs, the mean-shape baseline's val
    score on the same images, the run's health); OUT/scores.csv gets its row. Points are
    original image pixels. Nothing is written unless every input fits the data set: each
    test image once, no image the data set lacks, N landmarks per image (K requested
    points for a submission), every value finite.

    \b
    Formats (--test and --val alike; told apart by content):
      pickle  the organisers' dict; paths are matched by file name:
                pickle.dump({"image_names": ["data/test/images/000123.jpg", ...],
                             "landmarks": points}, f)        # points: (n, N, 2)
              only data is loaded (lists, dicts, strings, numbers, numpy arrays); a
              pickle that would run code is refused
      .npz    names and points, as the runs' own predictions files:
                np.savez("test.npz", file_names=names, points=points)
              (or image_names= and landmarks=)
      .npy    points alone (or an .npz without names), rows in the data's order:
                np.save("test.npy", points)       # then pass --order data
      TSV     the train/landmarks.csv layout (tab-separated, every landmark):
                file_name  Point_M0_X  Point_M0_Y  ...  Point_M970_Y
      CSV     a submission (--test only), the points test_points.csv requests:
                file_name,Point_M0_X,Point_M0_Y,...,Point_M29_Y
              the run then has no test_predictions.npz (summary.json says so)

    \b
    Validation predictions may cover some train images only: the blends and analyses use
    the images the runs share. Example:
      ens import-run kaggle_r101 --data DATA --test test.pkl --val val.pkl --out RUNS
    """
    from ensemble.competition.imported_run import import_run as run_import
    from ensemble.errors import InputError
    from ensemble.io.atomic import check_output
    from ensemble.io.checks import quoted
    from ensemble.io.data_folder import DataFolder
    from ensemble.io.run_folder import SCORES, run_name_problem

    problem = run_name_problem(name)
    if problem is not None:
        raise InputError(f"run name {quoted(name)}", problem)
    run_dir, data = out_dir / name, DataFolder.at(data_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise InputError(run_dir, "the run folder exists; use --force to replace it")
    inputs = [p for p in (test_path, val_path) if p is not None]
    check_output(run_dir, [*inputs, data.train_landmarks, data.test_points], folder=True)
    check_output(out_dir / SCORES, inputs)
    summary = run_import(run_dir, data_dir, test_path, val_path, order == "data")
    click.echo(_written(run_dir, out_dir / SCORES, summary))
    click.echo(_scored(summary))


def _written(run_dir: Path, scores: Path, summary: dict) -> str:
    """The first line: what was written, for how many images."""
    parts = []
    if "n_val" in summary:
        parts.append(
            f"val_predictions.npz ({summary['n_val']} of {summary['n_train_images']} train images)"
        )
    if summary["full_test_points"]:
        parts.append(f"test_predictions.npz and submission.csv ({summary['n_test']} test images)")
    else:
        parts.append(
            f"submission.csv ({summary['n_test']} test images; a submission has no full test "
            "points: no test_predictions.npz)"
        )
    return f"wrote {run_dir}: {', '.join(parts)}, summary.json; its row in {scores}"


def _scored(summary: dict) -> str:
    """The second line: the val score beside the mean-shape baseline's, and the health."""
    if "val_score" not in summary:
        return "no val score (no --val): fitted blends and the analyses of runs leave it out"
    line = f"val score {summary['val_score']:.4f} on {summary['n_val']} images"
    if "baseline_val_score" in summary:
        line += f", the mean-shape baseline's {summary['baseline_val_score']:.4f} on the same"
    else:
        line += f"; no mean-shape baseline ({summary['baseline_problem']})"
    health = summary["health"]
    reason = f": {health['reason']}" if health["reason"] else ""
    return f"{line} (health {health['status']}{reason})"
