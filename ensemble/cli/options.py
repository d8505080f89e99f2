"""Click options and path types shared by the `ens` commands, each declared once.

An option that means the same in several commands (the data folder, the runs TOML, the output,
the image cache, --quiet, --checkpoint-every) is built here; a command passes only what differs
(its help, whether it is required, whether the folder must exist).
"""

from __future__ import annotations

from pathlib import Path

import click

FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)
_PATHS = {"file": FILE, "folder": FOLDER, "any": click.Path(path_type=Path)}


def data_option(help: str, *, required: bool = False, exists: bool = False, dest: str = "data_dir"):
    """--data DIR: the dataset folder in the competition layout (train/, test/)."""
    kind = click.Path(file_okay=False, exists=True, path_type=Path) if exists else FOLDER
    return click.option("--data", dest, required=required, type=kind, help=help)


def config_option(help: str, *, exists: bool = False, dest: str = "config_path"):
    """--config FILE: a runs TOML ([defaults] + one [[run]] per model)."""
    kind = click.Path(dir_okay=False, exists=True, path_type=Path) if exists else FILE
    return click.option("--config", dest, type=kind, help=help)


def output_option(help: str, *, kind: str = "file", required: bool = True, dest: str = "output"):
    """-o/--output: what a command writes; `kind` is "file", "folder" or "any" (a command
    that checks the path itself)."""
    return click.option("-o", "--output", dest, required=required, type=_PATHS[kind], help=help)


out_option = click.option(
    "--out",
    "out_dir",
    default=Path("RUNS"),
    show_default=True,
    type=FOLDER,
    help="Folder of the run folders and scores.csv.",
)

cache_option = click.option(
    "--cache",
    "cache_dir",
    type=FOLDER,
    help="Where the image caches live (default: DATA/.ens_cache).",
)

checkpoint_every_option = click.option(
    "--checkpoint-every",
    type=click.IntRange(0),
    help="Save checkpoints/last.pt every M steps too (overrides the config's checkpoint_every).",
)

quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
