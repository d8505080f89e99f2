"""One run: build the model, train it, write the run folder (DESIGN.md, "Runs")."""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision

from ensemble.atomic import atomic_open
from ensemble.layout import FACE_971, FACE_971_TWINS, flip_mismatches, flip_permutation
from ensemble.runs import CONFIG, SUMMARY
from models.augment import BatchPipeline
from models.config import RunConfig, to_toml
from models.data import RunData, load_run_data
from models.heads import start_at_mean_shape
from models.loop import Trainer, mean_shape_bias
from models.predict import record_score, update_summary, write_predictions
from models.registry import BuiltModel, build_model


def select_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU (which then uses every core)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device = 'cuda' but no CUDA device is available")
    device = torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(os.cpu_count() or 1)
    return device


def run_flip_permutation(mean_targets: np.ndarray) -> np.ndarray:
    """Flip permutation from the mean training shape; checked against the 971-point layout."""
    perm = flip_permutation(mean_targets)
    if len(perm) == FACE_971.n_points:
        problems = flip_mismatches(perm, FACE_971, FACE_971_TWINS)
        if problems:
            warnings.warn(
                "flip permutation from the mean shape disagrees with the 971-point layout: "
                + "; ".join(problems[:3]),
                stacklevel=2,
            )
    return perm


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
) -> dict:
    """Train one run into `run_dir`; return its summary (also written to summary.json)."""
    started = time.perf_counter()
    data_dir, run_dir = Path(data_dir).resolve(), Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(run_dir / CONFIG, "w", encoding="utf-8") as handle:
        handle.write(to_toml({"data": str(data_dir), **config.to_dict()}))
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    device = select_device(config.device)
    if data is None:
        data = load_run_data(
            data_dir, config.crop_size, config.val_fraction, config.split_seed, cache_root, progress
        )
    mean_targets = data.mean_targets()
    perm = torch.from_numpy(run_flip_permutation(mean_targets))
    built = build_for_run(config, data.n_points)
    start_at_mean_shape(built.head, mean_shape_bias(data))
    model = built.model.to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    pipeline = BatchPipeline(
        built.mean, built.std, built.in_channels, config.augment, perm, config.seed
    )
    extra = {
        "flip_perm": perm,
        "mean_targets": torch.from_numpy(mean_targets.astype(np.float32)),
        "norm_mean": list(built.mean),
        "norm_std": list(built.std),
        "crop_size": data.size,
        "n_points": data.n_points,
    }
    trainer = Trainer(config, data, model, pipeline, device, run_dir, extra, progress)
    train_start = time.perf_counter()
    state = trainer.fit()
    train_seconds = time.perf_counter() - train_start
    results = write_predictions(
        run_dir,
        data_dir,
        data,
        model,
        pipeline,
        2 * config.batch_size,
        device,
        perm if config.tta else None,
        config.bf16,
        device.type == "cuda" and config.channels_last,
    )
    summary = {
        "run": run_dir.name,
        "arch": config.arch,
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
    }
    (run_dir / SUMMARY).unlink(missing_ok=True)
    update_summary(run_dir, summary)
    record_score(run_dir, results["val_score"])
    return summary
