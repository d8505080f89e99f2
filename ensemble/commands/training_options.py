"""Click options shared by the training commands (train, train-all, prepare, predict)."""

from __future__ import annotations

from pathlib import Path

import click

out_option = click.option(
    "--out",
    "out_dir",
    default=Path("RUNS"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the run folders and scores.csv.",
)

cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the image caches live (default: DATA/.ens_cache).",
)

quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
