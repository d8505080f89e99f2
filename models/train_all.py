"""`ens train-all`: every [[run]] of a config, one after another or K at a time, sharing caches."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from joblib import Parallel, delayed
from tqdm import tqdm

from ensemble.errors import InputError
from ensemble.runs import CONFIG, SUMMARY, RunFolder
from models import distributed
from models.config import RunConfig, load_config, run_from_dict
from models.data import RunData
from models.predict import record_score
from models.registry import available_architectures
from models.train import load_shared_data, train_run


def load_runs(config_path: str | Path) -> list[RunConfig]:
    """The validated runs of a train-all config."""
    return load_config(config_path, available_architectures())


def resume_target(run_dir: Path, data_dir: Path | None = None) -> tuple[RunConfig, Path, Path]:
    """(config, data folder, run folder) of a run folder to resume, from its config.toml."""
    values = RunFolder(run_dir.name, run_dir).config()
    if not values:
        raise InputError(run_dir / CONFIG, "run configuration not found")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise InputError(run_dir / "checkpoints" / "last.pt", "no checkpoint to resume from")
    return run_from_dict(values), Path(data_dir or values.get("data", "")), run_dir


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
    resume: bool = False,
    jobs: int = 1,
    checkpoint_every: int | None = None,
) -> list[dict]:
    """Train every run (skipping finished ones); return the summaries of the runs trained.

    `resume` continues runs that have checkpoints/last.pt; `jobs` > 1 trains that many runs at
    once, one device each; `checkpoint_every` overrides the config's key for every run.
    Under torchrun the runs go one after another, each over all the processes.
    """
    runs = load_runs(config_path)
    if only:
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown:
            raise ValueError(f"--run {unknown[0]} is not in {config_path}")
        runs = [r for r in runs if r.name in only]
    if checkpoint_every is not None:
        runs = [dataclasses.replace(r, checkpoint_every=checkpoint_every) for r in runs]
    out_dir = Path(out_dir)
    todo = []
    for config in runs:
        run_dir = out_dir / config.name
        if is_finished(run_dir):
            if distributed.is_main():
                tqdm.write(f"{config.name}: finished already ({run_dir / SUMMARY}), skipped")
            continue
        todo.append((config, resume and (run_dir / "checkpoints" / "last.pt").is_file()))
    datasets: dict[int, RunData] = {}
    for config, _ in todo:
        if config.crop_size not in datasets:
            datasets[config.crop_size] = load_shared_data(
                config, Path(data_dir), cache_root, progress
            )
    if jobs > 1 and not distributed.active():
        return train_parallel(todo, data_dir, out_dir, cache_root, progress, jobs)
    return train_in_turn(todo, data_dir, out_dir, cache_root, progress, datasets)


def train_in_turn(
    todo: list[tuple[RunConfig, bool]],
    data_dir: str | Path,
    out_dir: Path,
    cache_root: str | Path | None,
    progress: bool,
    datasets: dict[int, RunData] | None = None,
    slot: tuple[int, str, int] | None = None,
) -> list[dict]:
    """Train runs one after another; the summaries of those this process reports.

    Alone (`slot` None) each run uses its config's device, shares `datasets` (by crop size)
    and records its score; as parallel slot (index, device, threads) a worker trains on the
    slot's device, on its progress line, and leaves scores.csv to `train_parallel`.
    """
    summaries = []
    for config, resumed in todo:
        summary = train_run(
            config,
            data_dir,
            out_dir / config.name,
            cache_root,
            progress,
            (datasets or {}).get(config.crop_size),
            resume=resumed,
            device_name=None if slot is None else run_device(config, slot[1]),
            threads=None if slot is None else slot[2],
            record=slot is None,
            position=None if slot is None else slot[0],
        )
        if distributed.is_main():
            report(summary, resumed)
            summaries.append(summary)
    return summaries


def report(summary: dict, resumed: bool) -> None:
    """One line per finished run."""
    how = ", resumed" if resumed else ""
    rollbacks = f", {len(summary['rollbacks'])} rollback(s)" if summary["rollbacks"] else ""
    tqdm.write(
        f"{summary['run']}: val score {summary['val_score']:.3f}, "
        f"{summary['total_seconds']:.0f} s{how}{rollbacks}"
    )


def job_devices(jobs: int) -> list[tuple[str, int]]:
    """(device, CPU threads) of each parallel slot: one GPU each when there are GPUs.

    The threads are the slot's share of the cores, used by runs whose config says 'cpu'.
    """
    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return [(f"cuda:{i % gpus}" if gpus else "cpu", threads) for i in range(jobs)]


def run_device(config: RunConfig, slot_device: str) -> str:
    """The device a run trains on in a slot: the slot's, unless the config asks for the CPU."""
    return "cpu" if config.device == "cpu" else slot_device


def train_parallel(
    todo: list[tuple[RunConfig, bool]],
    data_dir: str | Path,
    out_dir: Path,
    cache_root: str | Path | None,
    progress: bool,
    jobs: int,
) -> list[dict]:
    """Train the runs `jobs` at a time in worker processes (joblib), one device per slot.

    Slot i trains runs i, i + jobs, ... one after another on its device, with progress line i.
    scores.csv is written here, from the summaries of the runs that finished.
    """
    jobs = min(jobs, len(todo))
    devices = job_devices(jobs)
    tasks = [
        delayed(train_in_turn)(
            todo[slot::jobs], data_dir, out_dir, cache_root, progress, slot=(slot, *devices[slot])
        )
        for slot in range(jobs)
    ]
    summaries = []
    try:
        for done in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            summaries += done
    finally:
        for config, _ in todo:
            path = out_dir / config.name / SUMMARY
            if path.is_file():
                record_score(path.parent, json.loads(path.read_text())["val_score"])
    return summaries
