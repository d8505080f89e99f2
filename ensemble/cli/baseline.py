"""`ens baseline`: the mean-shape submission."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import data_option, output_option
from ensemble.io.data_folder import DataFolder


@click.command()
@data_option("Competition data folder (train/ and test/).", required=True)
@output_option("Submission CSV to write.")
def baseline(data_dir: Path, output: Path) -> None:
    """Write the mean-shape submission: the floor every model must beat.

    The mean training shape, in coordinates divided by each image's width and height, is mapped
    onto every test image. Missing labels (empty cells, Kaggle Facial Keypoints) are left out:
    each point's mean is over the images where it is labelled.
    """
    from ensemble.competition.baseline import baseline_submission
    from ensemble.io.atomic import check_output

    labels = [DataFolder.at(data_dir).train_landmarks, DataFolder.at(data_dir).test_points]
    check_output(output, labels, [data_dir])
    baseline_submission(data_dir, output)
    click.echo(f"wrote {output} (mean-shape baseline)")
