"""The training loop: stages of epochs, validation each epoch, best/last checkpoints, early stop."""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ensemble.atomic import atomic_open
from ensemble.scoring import validation_score
from models.augment import BatchPipeline
from models.checkpoint import load_checkpoint, rng_state, save_checkpoint
from models.config import RunConfig
from models.data import RunData, epoch_order, iterate_batches
from models.factories import LOSSES, OPTIMIZERS, SCHEDULERS
from models.predict import autocast, predict_normalised

METRIC_COLUMNS = [
    "stage",
    "epoch",
    "lr",
    "train_loss",
    "val_mse_crop",
    "val_score",
    "seconds",
    "images_per_s",
]


@dataclass
class LoopState:
    """Progress of a run (all of it goes into the checkpoints)."""

    stage: int = 0
    epoch: int = 0  # epochs finished inside the stage
    global_epoch: int = 0
    step: int = 0
    best_score: float = math.inf
    best_epoch: int = -1
    best_stage: int = -1
    metrics: list[dict] = field(default_factory=list)


@dataclass
class Trainer:
    """Trains one model on one RunData according to a RunConfig."""

    config: RunConfig
    data: RunData
    model: nn.Module
    pipeline: BatchPipeline
    device: torch.device
    run_dir: Path
    extra: dict  # saved in every checkpoint (mean shape, flip permutation, normalisation...)
    progress: bool = True
    state: LoopState = field(default_factory=LoopState)

    @property
    def checkpoints(self) -> Path:
        """The checkpoints/ folder."""
        return self.run_dir / "checkpoints"

    def fit(self) -> LoopState:
        """Run every stage; the model ends with the best checkpoint's weights.

        Early stopping (`patience` epochs without a better val score) ends the current stage;
        every stage ends by reloading the best weights so far.
        """
        forward = self.model
        if self.config.compile:
            forward = torch.compile(self.model)
        loss_fn = LOSSES[self.config.loss](self.config)
        steps = max(1, math.ceil(len(self.data.train_indices) / self.config.batch_size))
        for stage_index, stage in enumerate(self.config.stages):
            self.state.stage, self.state.epoch = stage_index, 0
            parameters = [p for p in self.model.parameters() if p.requires_grad]
            optimizer = OPTIMIZERS[stage.optimizer](parameters, stage)
            schedule = SCHEDULERS[stage.scheduler](optimizer, stage, steps)
            stale = 0
            for epoch in range(stage.epochs):
                row = self._epoch(forward, loss_fn, optimizer, schedule, epoch, steps)
                schedule.after_epoch(row["val_score"])
                self.state.epoch, self.state.global_epoch = epoch + 1, self.state.global_epoch + 1
                improved = row["val_score"] < self.state.best_score
                if improved:
                    self.state.best_score = row["val_score"]
                    self.state.best_epoch = self.state.global_epoch
                    self.state.best_stage = stage_index
                    stale = 0
                else:
                    stale += 1
                self._save(optimizer, schedule, improved)
                if self.config.patience and stale >= self.config.patience:
                    break
            self._load_best()  # the next stage (and prediction) starts from the best weights
        return self.state

    def _epoch(self, forward, loss_fn, optimizer, schedule, epoch: int, steps: int) -> dict:
        self.model.train()
        config, start = self.config, time.perf_counter()
        rows = epoch_order(
            self.data.train_indices, config.batch_size, config.seed, self.state.global_epoch
        )
        memory = torch.channels_last if self._channels_last else torch.contiguous_format
        total, seen = 0.0, 0
        bar = tqdm(
            total=len(rows),
            desc=f"{config.name} s{self.state.stage + 1} e{epoch + 1}",
            unit="img",
            disable=not self.progress,
            leave=False,
        )
        batches = iterate_batches(
            self.data.train.images, rows, config.batch_size, self.device, self.data.targets, True
        )
        for step, (pixels, targets) in enumerate(batches):
            x, y = self.pipeline.train_batch(pixels, targets)
            x = x.contiguous(memory_format=memory)
            with autocast(self.device, config.bf16):
                predicted = forward(x)
            loss = loss_fn(predicted.float().view_as(y), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            optimizer.step()
            schedule.after_batch(epoch + (step + 1) / steps)
            self.state.step += 1
            total += float(loss.detach()) * len(x)
            seen += len(x)
            bar.update(len(x))
            bar.set_postfix(
                loss=f"{total / seen:.5f}", img_s=f"{seen / (time.perf_counter() - start):.0f}"
            )
        bar.close()
        train_seconds = time.perf_counter() - start
        row = {
            "stage": self.state.stage + 1,
            "epoch": self.state.global_epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": total / max(seen, 1),
            **self.validate(),
            "seconds": time.perf_counter() - start,
            "images_per_s": seen / train_seconds,
        }
        self.state.metrics.append(row)
        self._write_metrics()
        if self.progress:
            tqdm.write(
                f"{config.name} stage {row['stage']} epoch {row['epoch']}: "
                f"loss {row['train_loss']:.5f} val score {row['val_score']:.3f} "
                f"({row['images_per_s']:.0f} img/s)"
            )
        return row

    @property
    def _channels_last(self) -> bool:
        return self.device.type == "cuda" and self.config.channels_last

    def validate(self) -> dict:
        """Val MSE in crop pixels and the leaderboard-comparable val score (no TTA)."""
        rows = self.data.val_indices
        normalised = predict_normalised(
            self.model,
            self.pipeline,
            self.data.train.images,
            rows,
            2 * self.config.batch_size,
            self.device,
            bf16=self.config.bf16,
            channels_last=self._channels_last,
        )
        crop_mse = float(((normalised - self.data.targets[rows]) ** 2).mean() * self.data.size**2)
        points = self.data.to_original(normalised, "train", rows)
        score = validation_score(self.data.train.file_names[rows], points, self.data.points[rows])
        return {"val_mse_crop": crop_mse, "val_score": score}

    def _save(self, optimizer, schedule, improved: bool) -> None:
        state = self.state
        checkpoint = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "scaler": {},  # bf16 autocast needs no gradient scaler
            "stage": state.stage,
            "epoch": state.epoch,
            "global_epoch": state.global_epoch,
            "step": state.step,
            "best_score": state.best_score,
            "best_epoch": state.best_epoch,
            "best_stage": state.best_stage,
            "rng": rng_state(),
            "pipeline_rng": self.pipeline.generator.get_state(),
            "config": self.config.to_dict(),
            **self.extra,
        }
        save_checkpoint(self.checkpoints / "last.pt", checkpoint)
        if improved:
            save_checkpoint(self.checkpoints / "best.pt", checkpoint)

    def _load_best(self) -> None:
        best = self.checkpoints / "best.pt"
        if best.is_file():
            self.model.load_state_dict(load_checkpoint(best, self.device)["model"])

    def _write_metrics(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.state.metrics:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        with atomic_open(self.run_dir / "metrics.csv", "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())


def mean_shape_bias(data: RunData) -> torch.Tensor:
    """The head's starting bias: the mean normalised training shape, flattened (2N,)."""
    return torch.from_numpy(np.asarray(data.mean_targets(), dtype=np.float32).reshape(-1))
