"""The training loop: stages of epochs, validation each epoch, best/last checkpoints, early stop."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ensemble.competition.subsets import validation_subsets
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open
from ensemble.io.run_folder import RunFolder
from models import distributed
from models.augment import BatchPipeline
from models.checkpoint import (
    evaluated_weights,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from models.config import RunConfig
from models.data import RunData, epoch_order, iterate_batches, row_blocks, steps_per_epoch
from models.ema import ema_of
from models.factories import LOSSES, build_optimizer, build_schedule
from models.guard import Diverged, FaultHooks, TrainingDiverged, Verdict, judge_loss, scaled_step
from models.heads import scale_parameters, split_outputs
from models.losses import ScaleNLL
from models.predict import PredictOptions, autocast, evaluate
from models.registry import freeze_backbone
from models.val_metrics import (
    METRIC_KEYS,
)

METRIC_COLUMNS = [
    "stage",
    "epoch",
    "lr",
    "train_loss",
    "val_mse_crop",
    "val_score",
    *METRIC_KEYS,  # masked RMSE, MAE, NME, PCK in original pixels (missing labels left out)
    "seconds",
    "images_per_s",
    "events",  # rollbacks and skipped spikes during the epoch
]


@dataclass
class LoopState:
    """Progress of a run (all of it goes into the checkpoints, so a run resumes exactly)."""

    stage: int = 0
    epoch: int = 0  # epochs finished inside the stage
    global_epoch: int = 0
    step: int = 0
    batch: int = 0  # batches done in the current epoch (the sampler position)
    epoch_loss: float = 0.0  # loss x images over those batches
    epoch_images: int = 0
    epoch_seconds: float = 0.0
    stale: int = 0  # epochs of this stage without a better val score
    best_score: float = math.inf
    best_epoch: int = -1
    best_stage: int = -1
    lr_scale: float = 1.0  # product of the rollback lr factors so far
    recent: list[float] = field(default_factory=list)  # recent accepted step losses
    high_streak: int = 0  # steps in a row above the spike threshold (divergence at patience)
    reshuffles: list[int] = field(default_factory=list)  # batches where a rollback reshuffled
    rollbacks: list[dict] = field(default_factory=list)
    spikes: list[dict] = field(default_factory=list)  # single high-loss steps, skipped
    clipped_steps: int = 0  # steps whose gradient norm was above grad_clip (and clipped)
    warnings: list[str] = field(default_factory=list)  # e.g. training stopped on its best epoch
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
    head: nn.Module | None = None  # needed by stages with their own `freeze`
    position: int | None = None  # progress-bar line (parallel runs)
    faults: FaultHooks = field(default_factory=FaultHooks.from_env)
    replica_digests: list[str] = field(default_factory=list)  # per rank, at the last stage end
    fold: int | None = None  # with `folds = K`: the fold this model holds out
    ema: AveragedModel | None = field(init=False, default=None)  # with `ema_decay`

    def __post_init__(self) -> None:
        if self.config.ema_decay:
            self.ema = ema_of(self.model, self.config.ema_decay)

    @property
    def evaluated(self) -> nn.Module:
        """The weights that validate, are kept as best and predict: the EMA, else the model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def label(self) -> str:
        """The run's name (and fold) in progress lines and messages."""
        return self.config.name if self.fold is None else f"{self.config.name} fold {self.fold}"

    @cached_property
    def val_subsets(self) -> np.ndarray:
        """The validation images' fixed K-subsets, drawn once (they depend only on file names)."""
        names = self.data.train.file_names[self.data.val_indices]
        return validation_subsets(names, self.data.n_points)

    @cached_property
    def scale_loss(self) -> ScaleNLL:
        """The negative log-likelihood that trains the predicted sigmas (with `uncertainty`)."""
        return ScaleNLL(self.config.uncertainty)

    @property
    def folder(self) -> RunFolder:
        """The run folder (its checkpoint paths)."""
        return RunFolder.at(self.run_dir)

    def fit(self, resume: bool = False) -> LoopState:
        """Run every stage; the model ends with the best checkpoint's weights.

        Early stopping (`patience` epochs without a better val score) ends the current stage;
        every stage ends by reloading the best weights so far. With `resume`, training goes on
        from checkpoints/last.pt (model, optimizer, scheduler, position inside the epoch, RNGs).
        A diverged step rolls back to last.pt with a lower learning rate and the rest of the
        epoch reshuffled; once `max_rollbacks` are spent, training stops on the best checkpoint.
        """
        loss_fn = LOSSES[self.config.loss](self.config)
        per_rank = math.ceil(len(self.data.train_indices) / distributed.world_size())
        steps = steps_per_epoch(per_rank, self.config.batch_size)
        checkpoint = self._resume_checkpoint() if resume else None
        if checkpoint is None:
            self._save(None, None, False)  # step 0: the first "last good" checkpoint
        while self.state.stage < len(self.config.stages):
            stage = self.config.stages[self.state.stage]
            self._apply_freeze(stage.freeze)
            optimizer = build_optimizer(self.model, stage)
            schedule = build_schedule(optimizer, stage, steps)
            if checkpoint is not None and checkpoint["optimizer"]:
                optimizer.load_state_dict(checkpoint["optimizer"])
                schedule.load_state_dict(checkpoint["scheduler"])
            checkpoint = None
            try:
                self._stage(self._forward(), loss_fn, optimizer, schedule, steps)
            except Diverged as event:
                if len(self.state.rollbacks) >= self.config.max_rollbacks:
                    self._stop_on_best(event)
                    break
                checkpoint = self._rollback(event)
                continue
            self.replica_digests = distributed.check_replicas(self.model)
            self._load_best()  # the next stage (and prediction) starts from the best weights
            self.state.stage, self.state.epoch, self.state.stale = self.state.stage + 1, 0, 0
        return self.state

    def _stage(self, forward, loss_fn, optimizer, schedule, steps: int) -> None:
        state, stage = self.state, self.config.stages[self.state.stage]
        patience = self.config.patience
        while state.epoch < stage.epochs and not (patience and state.stale >= patience):
            row = self._epoch(forward, loss_fn, optimizer, schedule, state.epoch, steps)
            schedule.after_epoch(row["val_score"])
            state.epoch, state.global_epoch = state.epoch + 1, state.global_epoch + 1
            improved = row["val_score"] < state.best_score
            if improved:
                state.best_score = row["val_score"]
                state.best_epoch = state.global_epoch
                state.best_stage = state.stage
                state.stale = 0
            else:
                state.stale += 1
            self._save(optimizer, schedule, improved)

    def _forward(self) -> nn.Module:
        """The model as the training step calls it: DDP-wrapped under torchrun, maybe compiled."""
        forward = self.model
        if distributed.active():
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = DistributedDataParallel(self.model, device_ids=ids)
        return torch.compile(forward) if self.config.compile else forward

    def _apply_freeze(self, freeze: str | int) -> None:
        """A stage's own `freeze` ('' keeps the run's): unfreeze all, then freeze again."""
        if freeze == "" or self.head is None:
            return
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
        freeze_backbone(self.model, self.head, freeze)

    def _epoch(self, forward, loss_fn, optimizer, schedule, epoch: int, steps: int) -> dict:
        self.model.train()
        config, state = self.config, self.state
        start = time.perf_counter() - state.epoch_seconds
        rows = epoch_order(
            self.data.train_indices,
            config.batch_size,
            config.seed,
            state.global_epoch,
            state.reshuffles,
        )
        memory = torch.channels_last if self._channels_last else torch.contiguous_format
        bar = tqdm(
            total=len(rows),
            initial=min(len(rows), state.batch * config.batch_size),
            desc=f"{self.label} s{state.stage + 1} e{epoch + 1}",
            unit="img",
            disable=not self.progress,
            leave=False,
            position=self.position,
        )
        batches = iterate_batches(
            self.data.train.images,
            rows,
            config.batch_size,
            self.device,
            self.data.targets,
            True,
            start_batch=state.batch,
        )
        for pixels, targets in batches:
            warmup = schedule.warmup_factor(epoch * steps + state.batch)
            x, y = self.pipeline.train_batch(pixels, targets)
            x = x.contiguous(memory_format=memory)
            with autocast(self.device, config.bf16):
                output = forward(x)
            predicted, log_sigma = split_outputs(output.float(), self.data.n_points)
            predicted = predicted.view_as(y)
            loss = loss_fn(predicted, y)  # the guard judges the location loss alone
            value, verdict = self._judge(loss)
            if verdict.kind == "spike":
                batch = state.batch * config.batch_size
                self._log_spike(verdict, value, predicted, y, rows[batch : batch + len(x)])
            else:
                optimizer.zero_grad(set_to_none=True)
                if log_sigma is not None:
                    loss = loss + self.scale_loss(predicted, y, log_sigma)
                loss.backward()
                if config.grad_clip:
                    state.clipped_steps += self._clip_gradients(config.grad_clip)
                scaled_step(optimizer, state.lr_scale * warmup)
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
            schedule.after_batch(epoch + (state.batch + 1) / steps)
            state.step, state.batch = state.step + 1, state.batch + 1
            state.epoch_loss += value * len(x)
            state.epoch_images += len(x)
            bar.update(len(x))
            bar.set_postfix(loss=f"{state.epoch_loss / state.epoch_images:.5f}")
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                state.epoch_seconds = time.perf_counter() - start
                self._save(optimizer, schedule, False)
            self.faults.after_step(state.step)
        bar.close()
        train_seconds = time.perf_counter() - start
        seen = state.epoch_images
        row = {
            "stage": state.stage + 1,
            "epoch": state.global_epoch + 1,
            "lr": optimizer.param_groups[0]["lr"] * state.lr_scale * warmup,
            "train_loss": state.epoch_loss / max(seen, 1),
            **self._validate_everywhere(),
            "seconds": time.perf_counter() - start,
            "images_per_s": seen * distributed.world_size() / train_seconds,
            "events": self._events(state.global_epoch + 1),
        }
        state.batch, state.epoch_loss, state.epoch_images, state.epoch_seconds = 0, 0.0, 0, 0.0
        state.reshuffles = []
        state.metrics.append(row)
        self._write_metrics()
        if self.progress:
            tqdm.write(
                f"{self.label} stage {row['stage']} epoch {row['epoch']}: "
                f"loss {row['train_loss']:.5f} val score {row['val_score']:.3f} "
                f"({row['images_per_s']:.0f} img/s)"
            )
        return row

    @cached_property
    def _gradient_sets(self) -> list[list[nn.Parameter]]:
        """The parameters whose gradients are clipped together: those that place the points,
        and those of the uncertainty branch (so sigma never changes how the points train)."""
        scale = scale_parameters(self.model)
        ids = {id(p) for p in scale}
        points = [p for p in self.model.parameters() if id(p) not in ids]
        return [points, scale] if scale else [points]

    def _clip_gradients(self, max_norm: float) -> int:
        """Clip each gradient set's global norm to `max_norm`; 1 when the points' was above."""
        norms = [nn.utils.clip_grad_norm_(group, max_norm) for group in self._gradient_sets]
        return int(norms[0] > max_norm)

    def _judge(self, loss: torch.Tensor) -> tuple[float, Verdict]:
        """The step's loss (the mean over ranks under torchrun) and the guard's verdict.

        Raises Diverged; an accepted loss joins the recent mean, a spike does not.
        """
        state, config = self.state, self.config
        value = float(loss.detach())
        if distributed.active():
            value = distributed.sum_values([value], self.device)[0] / distributed.world_size()
        value = self.faults.loss(state.step, value)
        verdict = judge_loss(
            value,
            state.recent,
            state.high_streak,
            config.divergence_factor,
            config.divergence_window,
            config.divergence_patience,
        )
        if verdict.kind == "diverged":
            raise Diverged(verdict.reason, value)
        if verdict.kind == "spike":
            state.high_streak += 1
        else:
            state.high_streak = 0
            state.recent = [*state.recent, value][-config.divergence_window :]
        return value, verdict

    def _log_spike(
        self,
        verdict: Verdict,
        value: float,
        predicted: torch.Tensor,
        targets: torch.Tensor,
        rows: np.ndarray,
    ) -> None:
        """Record a skipped spike with the batch's worst image (largest MSE, over all ranks)."""
        state = self.state
        errors = torch.nanmean(((predicted.detach() - targets) ** 2).flatten(1), dim=1)
        worst = int(errors.argmax())
        local = (float(errors[worst]), str(self.data.train.file_names[rows[worst]]))
        _, image = max(distributed.gather(local))
        record = {
            "step": state.step + 1,
            "stage": state.stage + 1,
            "epoch": state.global_epoch + 1,
            "loss": value,
            "recent_mean": verdict.recent_mean,
            "reason": verdict.reason,
            "worst_image": image,
        }
        state.spikes.append(record)
        if self.progress:
            tqdm.write(
                f"{self.label}: step {record['step']} spiked ({verdict.reason}; "
                f"worst image {image}): update skipped"
            )

    def _events(self, epoch: int) -> str:
        """The rollbacks and skipped spikes of an epoch, for the `events` column."""
        state = self.state
        rollbacks = [
            f"rollback at step {r['step']}: {r['reason']}; lr x{r['lr_scale']:g}"
            for r in state.rollbacks
            if r["epoch"] == epoch
        ]
        spikes = [
            f"spike at step {s['step']}: {s['reason']}, worst image {s['worst_image']}; skipped"
            for s in state.spikes
            if s["epoch"] == epoch
        ]
        return "; ".join(rollbacks + spikes)

    def _rollback(self, event: Diverged) -> dict:
        """Reload last.pt after a diverged step: a lower lr, the rest of the epoch reshuffled."""
        state, config = self.state, self.config
        where = f"{self.label}: step {state.step + 1} diverged ({event.reason})"
        record = {
            "step": state.step + 1,
            "stage": state.stage + 1,
            "epoch": state.global_epoch + 1,
            "reason": event.reason,
            "loss": event.loss,
            "lr_scale": state.lr_scale * config.rollback_lr_factor,
        }
        rollbacks, scale = [*state.rollbacks, record], record["lr_scale"]
        checkpoint = load_checkpoint(self.folder.last_checkpoint, "cpu")
        self._restore(checkpoint)
        self.state.rollbacks, self.state.lr_scale = rollbacks, scale
        self.state.reshuffles = [*self.state.reshuffles, self.state.batch]
        record["restored_step"] = self.state.step
        if self.progress:
            tqdm.write(
                f"{where}: rolled back to step {self.state.step}, lr x{scale:g}, "
                "rest of the epoch reshuffled"
            )
        return checkpoint

    def _stop_on_best(self, event: Diverged) -> None:
        """Rollbacks spent: end training on the best checkpoint, with a warning.

        Raises TrainingDiverged when no epoch got better than the mean-shape baseline.
        """
        state = self.state
        where = (
            f"step {state.step + 1} diverged ({event.reason}) "
            f"after {len(state.rollbacks)} rollback(s)"
        )
        baseline = self.data.baseline_val_score()
        if not self.folder.best_checkpoint.is_file() or not state.best_score < baseline:
            raise TrainingDiverged(
                self.label,
                f"{where}, and no epoch scored better than the mean-shape baseline "
                f"(val score {baseline:.4g}): nothing to end on",
            )
        warning = (
            f"{where}: training stopped there; the run ends on its best checkpoint "
            f"(stage {state.best_stage + 1}, epoch {state.best_epoch}, "
            f"val score {state.best_score:.4g})"
        )
        state.warnings.append(warning)
        self._load_best()
        self.replica_digests = distributed.check_replicas(self.model)
        if self.progress:
            tqdm.write(f"{self.label}: {warning}")

    def _resume_checkpoint(self) -> dict:
        """last.pt, restored into the model, the loop state and the RNGs."""
        checkpoint = load_checkpoint(self.folder.last_checkpoint, "cpu")
        if "loop" not in checkpoint:
            raise InputError(self.folder.last_checkpoint, "checkpoint has no loop state to resume")
        self._restore(checkpoint)
        if distributed.is_main():
            self._write_metrics()  # drop rows written after the checkpoint
        return checkpoint

    def _restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        if self.ema is not None:
            self.ema.load_state_dict(checkpoint.get("ema") or _fresh_ema(self.model))
        self.state = LoopState(**checkpoint["loop"])
        rank, ranks = distributed.rank(), checkpoint.get("rng_ranks", [])
        same_world = len(ranks) == distributed.world_size()
        restore_rng_state(ranks[rank]["rng"] if same_world else checkpoint["rng"])
        pipeline_rng = ranks[rank]["pipeline"] if same_world else checkpoint["pipeline_rng"]
        self.pipeline.generator.set_state(pipeline_rng)

    @property
    def _channels_last(self) -> bool:
        return self.device.type == "cuda" and self.config.channels_last

    def _validate_everywhere(self) -> dict:
        """Rank 0 validates (with its batch-norm statistics) and every rank gets the metrics."""
        distributed.sync_buffers(self.model)
        return distributed.broadcast(self.validate() if distributed.is_main() else None)

    def validate(self) -> dict:
        """Val MSE in crop pixels, the leaderboard-comparable val score, RMSE/MAE/NME/PCK."""
        options = PredictOptions(
            2 * self.config.batch_size,
            self.device,
            bf16=self.config.bf16,
            channels_last=self._channels_last,
        )
        return evaluate(self.evaluated, self.pipeline, self.data, options, self.val_subsets)[1]

    def _save(self, optimizer, schedule, improved: bool) -> None:
        """last.pt (and best.pt when improved); rank 0 writes, every rank waits for it."""
        state = self.state
        ranks = distributed.gather(
            {"rng": rng_state(), "pipeline": self.pipeline.generator.get_state()}
        )
        if distributed.is_main():
            checkpoint = {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {},
                "optimizer": optimizer.state_dict() if optimizer is not None else {},
                "scheduler": schedule.state_dict() if schedule is not None else {},
                "scaler": {},  # bf16 autocast needs no gradient scaler
                "stage": state.stage,
                "epoch": state.epoch,
                "global_epoch": state.global_epoch,
                "step": state.step,
                "best_score": state.best_score,
                "best_epoch": state.best_epoch,
                "best_stage": state.best_stage,
                "loop": dataclasses.asdict(state),
                "rng": ranks[0]["rng"],
                "pipeline_rng": ranks[0]["pipeline"],
                "rng_ranks": ranks if len(ranks) > 1 else [],
                "config": self.config.to_dict(),
                **self.extra,
            }
            save_checkpoint(self.folder.last_checkpoint, checkpoint)
            if improved:
                save_checkpoint(self.folder.best_checkpoint, checkpoint)
        distributed.barrier()

    def _load_best(self) -> None:
        """The best checkpoint's evaluated weights (the EMA's with `ema_decay`) into the model,
        and the EMA restarted from them: the next stage and the predictions start there."""
        best = self.folder.best_checkpoint
        if not best.is_file():
            return
        checkpoint = load_checkpoint(best, self.device)
        self.model.load_state_dict(evaluated_weights(checkpoint))
        if self.ema is not None:
            self.ema.module.load_state_dict(self.model.state_dict())

    def _write_metrics(self) -> None:
        if not distributed.is_main():
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.state.metrics:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        with atomic_open(self.folder.metrics_path, "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())


def _fresh_ema(model: nn.Module) -> dict:
    """An EMA state for a checkpoint saved without one: the model's weights, no update yet."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    return {**state, "n_averaged": torch.tensor(0, dtype=torch.long)}


def mean_shape_bias(data: RunData) -> torch.Tensor:
    """The head's starting bias: the mean normalised training shape, flattened (2N,)."""
    return torch.from_numpy(np.asarray(data.mean_targets(), dtype=np.float32).reshape(-1))


def spread_log_sigma(data: RunData) -> torch.Tensor:
    """The starting log sigma of each point (N,): log of the training targets' RMS deviation
    from the mean shape, the error of the mean-shape start (missing labels left out)."""
    mean = data.mean_targets()[None]
    total, count = np.zeros(data.n_points), np.zeros(data.n_points, dtype=np.int64)
    for rows in row_blocks(data.train_indices):
        squares = (data.targets[rows] - mean) ** 2
        total += np.nansum(squares, axis=(0, 2))
        count += (~np.isnan(squares)).sum(axis=(0, 2))
    rms = np.sqrt(total / count)
    return torch.from_numpy(np.log(np.maximum(rms, 1e-4)).astype(np.float32))
