"""`ens show`: a grid of images with their landmarks coloured by region."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import output_option
from ensemble.io.data_folder import DataFolder


@click.command("show")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Number of images."
)
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default="train",
    show_default=True,
    help="Which split (test needs the hidden test/landmarks.csv of demo data).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which random images.")
@output_option("PNG file to write.")
def show(data_dir: Path, n: int, split: str, seed: int, output: Path) -> None:
    """Draw N random images of DATA_DIR with their landmarks coloured by region."""
    from ensemble.cli.show_grid import show_grid
    from ensemble.io.atomic import check_output

    check_output(output, [DataFolder.at(data_dir).landmarks(split)], [data_dir])
    show_grid(data_dir, output, n=n, split=split, seed=seed)
    click.echo(f"wrote {output} ({n} {split} images with landmarks)")
