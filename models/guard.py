"""Divergence detection, learning-rate scaling after a rollback, and fault-injection hooks."""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass

import torch

NAN_STEP_ENV = "ENS_FAULT_NAN_STEP"  # testing aid: the loss of this step becomes NaN (once)
KILL_STEP_ENV = "ENS_FAULT_KILL_STEP"  # testing aid: SIGKILL this process after this step


class Diverged(Exception):
    """The loss of a step diverged: `reason` says how."""

    def __init__(self, reason: str, loss: float) -> None:
        super().__init__(reason)
        self.reason, self.loss = reason, loss


class TrainingDiverged(RuntimeError):
    """A run still diverged after its allowed rollbacks."""


def divergence(value: float, recent: list[float], factor: float, window: int) -> str | None:
    """Why a step's loss counts as diverged (None when it does not).

    Non-finite, or (when `factor` > 0 and `window` losses are known) above `factor` times the
    mean of the last `window` losses.
    """
    if not math.isfinite(value):
        return f"non-finite loss ({value})"
    if factor and len(recent) >= window:
        mean = sum(recent[-window:]) / window
        if value > factor * mean:
            return f"loss {value:.4g} > {factor:g} x recent mean {mean:.4g}"
    return None


def scaled_step(optimizer: torch.optim.Optimizer, scale: float) -> None:
    """optimizer.step() with every group's lr multiplied by `scale` for this step only.

    The schedulers keep their own (unscaled) state, so the reduction after a rollback holds
    for any schedule; scale 1 is a plain step.
    """
    if scale == 1.0:
        optimizer.step()
        return
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * scale
    optimizer.step()
    for group, lr in zip(optimizer.param_groups, saved, strict=True):
        group["lr"] = lr


@dataclass
class FaultHooks:
    """Planted faults for tests, read from the environment (-1 = none)."""

    nan_step: int = -1
    kill_step: int = -1
    nan_done: bool = False

    @classmethod
    def from_env(cls) -> FaultHooks:
        """Hooks from ENS_FAULT_NAN_STEP and ENS_FAULT_KILL_STEP."""
        return cls(int(os.environ.get(NAN_STEP_ENV, -1)), int(os.environ.get(KILL_STEP_ENV, -1)))

    def loss(self, step: int, value: float) -> float:
        """NaN instead of `value` the first time `step` is the planted one."""
        if step == self.nan_step and not self.nan_done:
            self.nan_done = True
            return math.nan
        return value

    def after_step(self, steps_done: int) -> None:
        """SIGKILL this process once `steps_done` reaches the planted step."""
        if steps_done == self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
