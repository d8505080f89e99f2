"""Optimizers, learning-rate schedules and losses by name (dicts of factories).

The losses live in models.losses (masked: missing labels are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

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


@dataclass
class Schedule:
    """A stage's learning-rate schedule; the loop calls after_batch and after_epoch."""

    scheduler: object | None = None
    per_batch: bool = False
    uses_metric: bool = False
    fractional: bool = False

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
    "cosine-warm-restarts": _cosine,
    "step": _step,
    "plateau": _plateau,
    "onecycle": _onecycle,
    "none": _no_schedule,
}
