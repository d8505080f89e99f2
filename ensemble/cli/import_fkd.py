"""`ens import-fkd`: Kaggle Facial Keypoints files -> the package layout."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import FILE, output_option


@click.command("import-fkd")
@click.option("--training", "training_csv", required=True, type=FILE, help="Kaggle training.csv.")
@click.option("--test", "test_csv", required=True, type=FILE, help="Kaggle test.csv.")
@click.option("--lookup", "lookup_csv", required=True, type=FILE, help="IdLookupTable.csv.")
@output_option("Data folder to create (must not exist or be empty).", kind="folder", dest="out_dir")
def import_fkd(training_csv: Path, test_csv: Path, lookup_csv: Path, out_dir: Path) -> None:
    """Convert Kaggle Facial Keypoints files to the competition layout.

    \b
    Writes OUTPUT/train/images/<row>.png (96x96 grayscale), OUTPUT/train/landmarks.csv
    (15 points, empty cells for missing keypoints), OUTPUT/test/images/<ImageId>.png,
    OUTPUT/test/test_points.csv (each image's requested keypoints, in lookup order) and
    OUTPUT/fkd.json (keypoint names, lookup mapping). Nothing is written unless every input
    is valid.
    """
    from ensemble.fkd.importer import import_fkd as run_import
    from ensemble.io.atomic import check_output

    check_output(out_dir, [training_csv, test_csv, lookup_csv], folder=True)
    summary = run_import(training_csv, test_csv, lookup_csv, out_dir)
    click.echo(
        f"wrote {out_dir}: {summary.n_train} training images "
        f"({summary.n_train_complete} with all 15 keypoints), {summary.n_test} test images "
        f"({summary.n_requested_images} requested, {summary.n_lookup_rows} lookup rows)"
    )
