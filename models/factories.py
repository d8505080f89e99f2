"""Optimizers, learning-rate schedules and losses by name (dicts of factories).

The losses live in models.losses (masked: missing labels are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from models.config import StageConfig
from models.losses import LOSSES as LOSSES  # re-exported: losses by name
from models.losses import WingLoss as WingLoss


def _adam(params: Iterable, stage: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)


def _adamw(params: Iterable, stage: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)


def _sgd(params: Iterable, stage: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=stage.lr,
        momentum=stage.momentum,
        weight_decay=stage.weight_decay,
        nesterov=stage.momentum > 0,
    )


def _radam(params: Iterable, stage: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.RAdam(params, lr=stage.lr, weight_decay=stage.weight_decay)


OPTIMIZERS: dict[str, Callable[[Iterable, StageConfig], torch.optim.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
    "radam": _radam,
}


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two optimizer groups: weights with `weight_decay`, and
    biases and normalisation weights (every parameter of one dimension or less) without it.

    Decay pulls a batch-norm scale or a bias toward zero, which only limits what the layer can
    express (timm's and torchvision's references filter them the same way).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, stage: StageConfig) -> torch.optim.Optimizer:
    """The stage's optimizer over the model's trainable parameters (no decay on norms, biases)."""
    return OPTIMIZERS[stage.optimizer](parameter_groups(model, stage.weight_decay), stage)


@dataclass
class Schedule:
    """A stage's learning-rate schedule; the loop calls after_batch and after_epoch."""

    scheduler: object | None = None
    per_batch: bool = False
    uses_metric: bool = False
    fractional: bool = False
    warmup_steps: int = 0  # the stage's first steps, whose lr rises linearly to the schedule's

    def warmup_factor(self, stage_step: int) -> float:
        """The warm-up's lr factor for step `stage_step` (0-based) of the stage:
        (stage_step + 1) / warmup_steps during the warm-up, then 1."""
        if stage_step >= self.warmup_steps:
            return 1.0
        return (stage_step + 1) / self.warmup_steps

    def after_batch(self, epoch_progress: float) -> None:
        """Called after every optimizer step with the (fractional) epoch inside the stage."""
        if self.scheduler is None or not self.per_batch:
            return
        if self.fractional:
            self.scheduler.step(epoch_progress)
        else:
            self.scheduler.step()

    def after_epoch(self, metric: float) -> None:
        """Called after each epoch's validation with the val score."""
        if self.scheduler is None or self.per_batch:
            return
        if self.uses_metric:
            self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        """The wrapped scheduler's state ({} without one)."""
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore the wrapped scheduler's state."""
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


def _no_schedule(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    return Schedule()


def _cosine(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=stage.t0, T_mult=stage.t_mult, eta_min=stage.eta_min
    )
    return Schedule(scheduler, per_batch=True, fractional=True)


def _cosine_decay(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=stage.epochs * steps_per_epoch, eta_min=stage.eta_min
    )
    return Schedule(scheduler, per_batch=True)


def _step(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, stage.step_size, stage.gamma)
    return Schedule(scheduler)


def _plateau(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=stage.plateau_factor, patience=stage.plateau_patience
    )
    return Schedule(scheduler, uses_metric=True)


def _onecycle(optimizer, stage: StageConfig, steps_per_epoch: int) -> Schedule:
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=stage.lr,
        total_steps=stage.epochs * steps_per_epoch,
        pct_start=stage.pct_start,
    )
    return Schedule(scheduler, per_batch=True)


SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer, StageConfig, int], Schedule]] = {
    "cosine": _cosine_decay,
    "cosine-warm-restarts": _cosine,
    "step": _step,
    "plateau": _plateau,
    "onecycle": _onecycle,
    "none": _no_schedule,
}


def build_schedule(
    optimizer: torch.optim.Optimizer, stage: StageConfig, steps_per_epoch: int
) -> Schedule:
    """The stage's schedule with its linear warm-up (`warmup_epochs` x steps per epoch, rounded)
    in front: during it the scheduler's lr is multiplied by the warm-up factor."""
    schedule = SCHEDULERS[stage.scheduler](optimizer, stage, steps_per_epoch)
    schedule.warmup_steps = round(stage.warmup_epochs * steps_per_epoch)
    return schedule
