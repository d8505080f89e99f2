"""`ens make-demo`: write the procedural demo dataset in the competition layout."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.synthetic.demo_defaults import (
    DEFAULT_CROWD,
    DEFAULT_LABEL_ERRORS,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    N_POINTS,
)

SHARE = click.FloatRange(0, 1, max_open=True)


@click.command("make-demo")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--train",
    "n_train",
    type=click.IntRange(min=1),
    default=DEFAULT_TRAIN,
    show_default=True,
    help="Number of training images.",
)
@click.option(
    "--test",
    "n_test",
    type=click.IntRange(min=1),
    default=DEFAULT_TEST,
    show_default=True,
    help="Number of test images.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same bytes)."
)
@click.option(
    "--points-per-row",
    type=click.IntRange(1, N_POINTS),
    default=30,
    show_default=True,
    help="Landmark indices per test_points.csv row (K).",
)
@click.option(
    "--jobs",
    "n_jobs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Worker processes (the output does not depend on it).",
)
@click.option(
    "--force", is_flag=True, help="Write into a non-empty OUT_DIR (replaces its train/ and test/)."
)
@click.option(
    "--format",
    "data_format",
    type=click.Choice(["competition", "fkd"]),
    default="competition",
    show_default=True,
    help="fkd: Kaggle Facial Keypoints files instead (training.csv, test.csv, "
    "IdLookupTable.csv, solution.csv; 96x96 grayscale, 15 keypoints).",
)
@click.option(
    "--label-errors",
    type=SHARE,
    default=None,
    help="Share of train images with a label error: a smaller face in the background carries "
    "the label instead of the subject (listed in train/label_errors.csv). "
    f"Default {DEFAULT_LABEL_ERRORS}; not with --format fkd.",
)
@click.option(
    "--crowd",
    type=SHARE,
    default=None,
    help="Share of train and of test images with a smaller face in the background, labelled "
    "correctly on the subject (the test truth is always the subject). "
    f"Default {DEFAULT_CROWD}; not with --format fkd.",
)
def make_demo(
    out_dir: Path,
    n_train: int,
    n_test: int,
    seed: int,
    points_per_row: int,
    n_jobs: int,
    force: bool,
    data_format: str,
    label_errors: float | None,
    crowd: float | None,
) -> None:
    """Write a procedural face dataset (971 landmarks) in the competition layout to OUT_DIR.

    \b
    OUT_DIR/train/landmarks.csv, OUT_DIR/train/images/*.jpg
    OUT_DIR/test/test_points.csv, OUT_DIR/test/images/*.jpg
    OUT_DIR/test/landmarks.csv (the hidden test truth, for `ens score`)
    OUT_DIR/train/label_errors.csv (the planted label errors, maybe none)
    """
    from ensemble.io.atomic import check_output

    check_output(out_dir, folder=True)
    if data_format == "fkd":
        if label_errors is not None or crowd is not None:
            raise click.UsageError("--label-errors and --crowd do not apply to --format fkd")
        from ensemble.synthetic.fkd import make_fkd_demo

        fkd = make_fkd_demo(out_dir, n_train, n_test, seed, progress=True, force=force)
        click.echo(
            f"wrote {out_dir}: training.csv ({n_train} rows, {fkd.n_train_complete} with all 15 "
            f"keypoints), test.csv ({n_test} images), IdLookupTable.csv ({fkd.n_lookup_rows} "
            f"rows) and the hidden solution.csv (seed {seed})"
        )
        return
    label_errors = DEFAULT_LABEL_ERRORS if label_errors is None else label_errors
    crowd = DEFAULT_CROWD if crowd is None else crowd
    if label_errors + crowd > 1:
        raise click.UsageError(
            f"--label-errors + --crowd must be at most 1, got {label_errors + crowd:g}"
        )
    from ensemble.synthetic.demo import make_demo as write_demo

    summary = write_demo(
        out_dir,
        n_train=n_train,
        n_test=n_test,
        seed=seed,
        points_per_row=points_per_row,
        n_jobs=n_jobs,
        force=force,
        label_errors=label_errors,
        crowd=crowd,
    )
    n_errors, n_crowd = summary.n_label_errors, summary.n_crowd_train + summary.n_crowd_test
    click.echo(
        f"wrote {out_dir}: {n_train} train images with train/landmarks.csv, {n_test} test images "
        f"with test/test_points.csv ({points_per_row} points per row) and the hidden "
        f"test/landmarks.csv (seed {seed}); planted {plural(n_errors, 'label error')} "
        f"(train/label_errors.csv) and {plural(n_crowd, 'crowd image')} "
        f"({summary.n_crowd_train} train, {summary.n_crowd_test} test)"
    )


def plural(count: int, noun: str) -> str:
    """'1 label error', '20 label errors'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
