"""`ens prepare`: build the shared image caches (decode, letterbox, uint8 memmap) once."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import cache_option, config_option, data_option, quiet_option


@click.command()
@data_option("Dataset folder in the competition layout.", required=True, exists=True)
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=click.IntRange(16, 2048),
    help="Crop size (repeatable); default: the crop sizes of --config, else 128.",
)
@config_option("Runs TOML whose crop sizes to prepare.")
@cache_option
@click.option("--jobs", type=click.IntRange(1), help="Parallel decoders (default: all cores).")
@quiet_option
def prepare(
    data_dir: Path,
    sizes: tuple[int, ...],
    config_path: Path | None,
    cache_dir: Path | None,
    jobs: int | None,
    quiet: bool,
) -> None:
    """Decode, scale and letterbox every train and test image once per crop size.

    The image is scaled so its longer side is the crop size and centred on a square canvas
    (nothing is cut off); the per-image geometry maps predictions back to original pixels.
    A cache is rebuilt only when the label files, the file names or the crop size change.
    """
    from ensemble.io.atomic import check_output
    from models.cache import build_cache, cache_dir_for
    from models.train_all import load_runs

    if not sizes:
        sizes = (
            tuple(sorted({r.crop_size for r in load_runs(config_path)})) if config_path else (128,)
        )
    reads = [data_dir / "train", data_dir / "test", *([config_path] if config_path else [])]
    targets = [(size, split) for size in sizes for split in ("train", "test")]
    for size, split in targets:  # a stale cache folder is replaced whole: it must hold no input
        check_output(cache_dir_for(data_dir, split, size, cache_dir), reads, folder=True)
    for size, split in targets:
        cache = build_cache(data_dir, split, size, cache_dir, jobs, progress=not quiet)
        click.echo(f"{split} {size}px: {len(cache)} images in {cache.path}")
