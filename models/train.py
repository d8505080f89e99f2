"""One run: build the model(s), train, write the run folder (README, "Training")."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from ensemble.competition.health import judge
from ensemble.competition.layout import Layout, layout_for
from ensemble.errors import InputError
from ensemble.io.run_folder import RunFolder
from ensemble.io.temps import remove_stale
from models import distributed
from models.augment import BatchPipeline
from models.checkpoint import load_checkpoint
from models.config import RunConfig, to_toml
from models.data import RunData, load_run_data
from models.exclude import read_exclude_list
from models.folds import combine_folds, fold_dirs, fold_is_current
from models.heads import start_at_mean_shape
from models.loop import Trainer, mean_shape_bias, spread_log_sigma
from models.predict import PredictOptions, write_predictions
from models.registry import BuiltModel, build_model


def select_device(name: str, threads: int | None = None) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda:i' names a GPU.

    Under torchrun each process takes its local rank's GPU, or on CPU its share of the cores
    (`threads` overrides the CPU thread count, e.g. for parallel runs).
    """
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device = '{name}' but no CUDA device is available")
    device = torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")
    if name.startswith("cuda:"):
        device = torch.device(name)
    elif device.type == "cuda" and distributed.active():
        device = torch.device("cuda", distributed.local_rank())
        if not distributed.cuda_for_every_local_rank():
            raise RuntimeError(
                f"torchrun started {distributed.local_world_size()} processes on this node but it"
                f" has {torch.cuda.device_count()} GPU(s): use --nproc_per_node"
                f" {torch.cuda.device_count()}, or device = 'cpu' in the config"
            )
    elif device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    else:
        local_world = distributed.local_world_size() if distributed.active() else 1
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // local_world))
    return device


def load_shared_data(
    config: RunConfig, data_dir: Path, cache_root: str | Path | None, progress: bool
) -> RunData:
    """The run's data; under torchrun rank 0 builds the caches, the others then read them."""
    split = (config.crop_size, config.val_fraction, config.split_seed)
    if distributed.is_main():
        data = load_run_data(data_dir, *split, cache_root, progress, folds=config.folds)
    distributed.barrier()
    if not distributed.is_main():
        data = load_run_data(data_dir, *split, cache_root, False, folds=config.folds)
    return data


def excluding(config: RunConfig, data: RunData) -> RunData:
    """The data without the images of the run's `exclude` file (unchanged without one)."""
    if not config.exclude:
        return data
    return data.without(read_exclude_list(config.exclude, data.train.file_names))


def exclusion_summary(config: RunConfig, data: RunData) -> dict:
    """summary.json's record of the excluded images: how many, and from which file."""
    count = 0 if data.excluded is None else int(data.excluded.sum())
    return {"excluded": {"count": count, "file": config.exclude or None}}


def run_flip_permutation(mean_targets: np.ndarray, layout: Layout | None = None) -> np.ndarray:
    """The layout's flip permutation (`Layout.flip_permutation`) for the mean training shape.

    `layout` defaults to the built-in or generic layout for N
    (`ensemble.competition.layout.layout_for`).
    """
    layout = layout if layout is not None else layout_for(len(mean_targets))
    return layout.flip_permutation(mean_targets)


def build_for_run(config: RunConfig, n_points: int, weights_path: str | None = None) -> BuiltModel:
    """The run's model (pretrained weights only when training, never when re-predicting)."""
    return build_model(
        config.arch,
        n_points,
        head_hidden=config.head_hidden,
        head_dropout=config.head_dropout,
        pretrained=config.pretrained if weights_path is None else False,
        weights_path=config.weights_path if weights_path is None else weights_path,
        freeze=config.freeze,
        in_channels=config.in_channels,
        bn_momentum=config.bn_momentum,
        uncertainty=config.uncertainty,
    )


def versions() -> dict:
    """Library versions for summary.json."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
    }


def train_run(
    config: RunConfig,
    data_dir: str | Path,
    run_dir: str | Path,
    cache_root: str | Path | None = None,
    progress: bool = True,
    data: RunData | None = None,
    resume: bool = False,
    device_name: str | None = None,
    threads: int | None = None,
    record: bool = True,
    position: int | None = None,
) -> dict:
    """Train one run into `run_dir`; return its summary (also written to summary.json).

    One model, or with `folds = K` one per fold in RUN/fold_<k>/ and the out-of-fold
    predictions at the root (models/folds.py). `resume` continues from checkpoints/last.pt
    (per fold: a finished fold is kept); `device_name` and `threads` override the config's
    device; `record` = False leaves RUNS/scores.csv to the caller. Under torchrun every rank
    trains and rank 0 alone writes; the other ranks return {"run", "rank"}.
    """
    started = time.perf_counter()
    data_dir, run_dir = Path(data_dir).resolve(), Path(run_dir)
    if data is None:  # before the run folder is written: bad data leaves nothing behind
        data = load_shared_data(config, data_dir, cache_root, progress and distributed.is_main())
    data = excluding(config, data)
    options = dict(device_name=device_name, threads=threads, position=position)
    if not config.folds:
        summary = train_model(config, data_dir, run_dir, data, progress, resume, **options)
    else:
        if distributed.is_main():
            RunFolder.at(run_dir).mark_unfinished()
            run_dir.mkdir(parents=True, exist_ok=True)
            write_run_config(run_dir, data_dir, config)
        fold_summaries = []
        for fold, fold_dir in enumerate(fold_dirs(run_dir, config.folds)):
            if fold_is_current(fold_dir, data_dir, config):  # finished by an earlier command
                fold_summaries.append(RunFolder.at(fold_dir).summary())
                continue
            resume_fold = resume and RunFolder.at(fold_dir).last_checkpoint.is_file()
            options["fold"] = fold
            fold_summaries.append(
                train_model(
                    config,
                    data_dir,
                    fold_dir,
                    data.for_fold(fold),
                    progress,
                    resume_fold,
                    **options,
                )
            )
        if not distributed.is_main():
            return fold_summaries[-1]
        summary = combine_folds(run_dir, data_dir, data, fold_summaries, config.uncertainty)
        summary.update(exclusion_summary(config, data), resumed=resume, seed=config.seed)
        summary["total_seconds"] = time.perf_counter() - started
        RunFolder.at(run_dir).update_summary(summary)
    if distributed.is_main():  # against the mean shape here; train-all adds the siblings
        health = judge(summary["val_score"], summary.get("baseline_val_score"), [])
        RunFolder.at(run_dir).update_summary({"health": health.as_dict()})
        summary["health"] = health.as_dict()
        if record:
            RunFolder.at(run_dir).record_score(summary["val_score"])
    return summary


def write_run_config(run_dir: Path, data_dir: Path, config: RunConfig) -> None:
    """RUN/config.toml: the data folder and the resolved configuration."""
    RunFolder.at(run_dir).write_config(to_toml({"data": str(data_dir), **config.to_dict()}))


def train_model(
    config: RunConfig,
    data_dir: Path,
    run_dir: Path,
    data: RunData,
    progress: bool,
    resume: bool,
    device_name: str | None,
    threads: int | None,
    position: int | None,
    fold: int | None = None,
) -> dict:
    """Train one model on `data` into `run_dir` (a run, or fold `fold` of it); its summary."""
    started = time.perf_counter()
    main = distributed.is_main()
    progress = progress and main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoints = RunFolder.at(run_dir).checkpoints
        remove_stale(checkpoints)  # a checkpoint write that a SIGKILL cut short
        if resume:
            check_resumable(run_dir, config)
        else:
            for old in checkpoints.glob("*.pt"):
                old.unlink()  # a fresh start must not inherit a killed run's best.pt
        write_run_config(run_dir, data_dir, config)
    distributed.barrier()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    device = select_device(device_name or config.device, threads)
    mean_targets = data.mean_targets()
    perm = torch.from_numpy(run_flip_permutation(mean_targets, data.layout))
    built = build_for_run(config, data.n_points)
    log_sigma = spread_log_sigma(data) if config.uncertainty != "none" else None
    start_at_mean_shape(built.head, mean_shape_bias(data), log_sigma)
    model = built.model.to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    rank_seed = config.seed + 7919 * distributed.rank()  # own augmentation/dropout per rank
    if rank_seed != config.seed:
        torch.manual_seed(rank_seed)  # after the model is built: weights stay identical
    pipeline = BatchPipeline(
        built.mean, built.std, built.in_channels, config.augment, perm, rank_seed
    )
    extra = {
        "flip_perm": perm,
        "mean_targets": torch.from_numpy(mean_targets.astype(np.float32)),
        "norm_mean": list(built.mean),
        "norm_std": list(built.std),
        "crop_size": data.size,
        "n_points": data.n_points,
    }
    trainer = Trainer(
        config,
        data,
        model,
        pipeline,
        device,
        run_dir,
        extra,
        progress,
        head=built.head,
        position=position,
        fold=fold,
    )
    train_start = time.perf_counter()
    state = trainer.fit(resume)
    train_seconds = time.perf_counter() - train_start
    if not main:
        return {"run": run_dir.name, "rank": distributed.rank()}
    options = PredictOptions(
        2 * config.batch_size,
        device,
        perm if config.tta else None,
        config.bf16,
        device.type == "cuda" and config.channels_last,
    )
    results = write_predictions(
        run_dir, data_dir, data, model, pipeline, options, config.uncertainty
    )
    summary = {
        "run": run_dir.name,
        "arch": config.arch,
        "seed": config.seed,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "crop_size": data.size,
        "n_points": data.n_points,
        "n_train": len(data.train_indices),
        "n_val": len(data.val_indices),
        "n_test": len(data.test),
        "best_epoch": state.best_epoch,
        "best_stage": state.best_stage + 1,
        "epochs_run": state.global_epoch,
        "best_val_score_no_tta": state.best_score,
        "baseline_val_score": data.baseline_val_score(),
        **results,
        "train_seconds": train_seconds,
        "train_images_per_s": float(np.mean([m["images_per_s"] for m in state.metrics])),
        "total_seconds": time.perf_counter() - started,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()}",
        "versions": versions(),
        "command": " ".join(sys.argv),
        "resumed": resume,
        "rollbacks": state.rollbacks,
        "spikes": state.spikes,
        "clipped_steps": state.clipped_steps,
        "warnings": state.warnings,
        "bad_images": {"train": data.train.bad_images, "test": data.test.bad_images},
        "world_size": distributed.world_size(),
        "replica_digests": trainer.replica_digests,
        **exclusion_summary(config, data),
    }
    folder = RunFolder.at(run_dir)
    folder.mark_unfinished()
    folder.update_summary(summary)
    return summary


RESUME_FREE_KEYS = ("checkpoint_every", "device", "compile", "max_rollbacks", "restarts")


def check_resumable(run_dir: Path, config: RunConfig) -> None:
    """Refuse to resume without last.pt or with a config that changed what is trained."""
    path = RunFolder.at(run_dir).last_checkpoint
    saved = load_checkpoint(path, "cpu").get("config", {})
    now = config.to_dict()
    changed = [  # a key the checkpoint lacks is newer than it: its default applies
        k for k in now if k not in RESUME_FREE_KEYS and k in saved and saved[k] != now[k]
    ]
    if changed:
        key = changed[0]
        raise InputError(
            path,
            f"cannot resume: '{key}' was {saved.get(key)!r} and is now {now[key]!r} "
            "(train afresh without --resume, or use the run's own config)",
        )
