"""`ens demo`: the whole workflow on the embedded demo data, stage by stage."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ensemble.cli.options import config_option


@click.command()
@click.argument("directory", default="ens-demo", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=20), help="Training images to make.")
@click.option("--test", "n_test", type=click.IntRange(min=10), help="Test images to make.")
@config_option("Run configuration (default: the packaged configs/demo.toml).", dest="config")
def demo(directory: Path, n_train: int | None, n_test: int | None, config: Path | None) -> None:
    """Run the whole job on procedural demo data in DIRECTORY (default ./ens-demo).

    \b
    Stages (each reuses what a previous run already finished):
      1. make-demo   a competition-format dataset with a hidden test truth
      2. baseline    the mean-shape submission, the floor every model must beat
      3. train-all   the architectures of configs/demo.toml
      4. score       every submission on the simulated public/private leaderboard
      5. blend       score-weighted and validation-fitted blends, both scored
      6. analyze     the HTML report (uniformity, val-to-leaderboard line, per-point MSE)
    Finishes with a table of every run and blend: val, public and private MSE.
    """
    from ensemble.cli.demo_pipeline import run_demo

    started = time.perf_counter()
    run_demo(directory, n_train=n_train, n_test=n_test, config=config)
    click.echo(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
