"""`ens train-all`: every [[run]] of a config, one after another, sharing caches and the split."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ensemble.runs import SUMMARY
from models.config import RunConfig, load_config
from models.data import RunData, load_run_data
from models.registry import available_architectures
from models.train import train_run


def load_runs(config_path: str | Path) -> list[RunConfig]:
    """The validated runs of a train-all config."""
    return load_config(config_path, available_architectures())


def is_finished(run_dir: Path) -> bool:
    """A run is finished when its summary.json exists."""
    return (run_dir / SUMMARY).is_file()


def train_all(
    config_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    cache_root: str | Path | None = None,
    only: tuple[str, ...] = (),
    progress: bool = True,
) -> list[dict]:
    """Train every run (skipping finished ones); return the summaries of the runs trained."""
    runs = load_runs(config_path)
    if only:
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown:
            raise ValueError(f"--run {unknown[0]} is not in {config_path}")
        runs = [r for r in runs if r.name in only]
    out_dir = Path(out_dir)
    datasets: dict[int, RunData] = {}
    summaries = []
    for config in runs:
        run_dir = out_dir / config.name
        if is_finished(run_dir):
            tqdm.write(f"{config.name}: finished already ({run_dir / SUMMARY}), skipped")
            continue
        if config.crop_size not in datasets:
            datasets[config.crop_size] = load_run_data(
                data_dir,
                config.crop_size,
                config.val_fraction,
                config.split_seed,
                cache_root,
                progress,
            )
        summary = train_run(
            config, data_dir, run_dir, cache_root, progress, datasets[config.crop_size]
        )
        tqdm.write(
            f"{config.name}: val score {summary['val_score']:.3f}, {summary['total_seconds']:.0f} s"
        )
        summaries.append(summary)
    return summaries
