"""The loss guard (spike or divergence), lr scaling after a rollback, and fault-injection hooks.

Each step's loss is judged against the mean of the recent accepted losses:

- non-finite, or above `factor` x that mean for `patience` steps in a row: divergence (the loop
  rolls back to the last checkpoint with a lower learning rate);
- above it once (fewer than `patience` steps in a row): a spike, such as a batch holding a
  mislabelled image; the loop logs it and skips that step's update;
- otherwise the step is accepted and its loss joins the recent mean.
"""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass, field

import torch

from ensemble.errors import TrainingError

NAN_STEP_ENV = "ENS_FAULT_NAN_STEP"  # testing aid: the loss of this step becomes NaN (once)
SPIKE_STEPS_ENV = "ENS_FAULT_SPIKE_STEPS"  # testing aid: these steps' losses x SPIKE_FACTOR (once)
KILL_STEP_ENV = "ENS_FAULT_KILL_STEP"  # testing aid: SIGKILL this process after this step
SPIKE_FACTOR = 1000.0


class Diverged(Exception):
    """The loss of a step diverged: `reason` says how."""

    def __init__(self, reason: str, loss: float) -> None:
        super().__init__(reason)
        self.reason, self.loss = reason, loss


class TrainingDiverged(TrainingError):
    """A run diverged and has nothing better than the mean-shape start to end on."""


@dataclass(frozen=True)
class Verdict:
    """The guard's judgement of one step's loss: 'ok', 'spike' or 'diverged', and why."""

    kind: str
    reason: str = ""
    recent_mean: float = math.nan


def judge_loss(
    value: float, recent: list[float], high_streak: int, factor: float, window: int, patience: int
) -> Verdict:
    """Judge a step's loss against the mean of the last `window` accepted losses.

    `high_streak` counts the steps just before this one that were above the threshold; this
    step makes it `patience` in a row, it is a divergence. `factor` 0 switches the high-loss
    rule off (a non-finite loss still diverges).
    """
    if not math.isfinite(value):
        return Verdict("diverged", f"non-finite loss ({value})")
    if not factor or len(recent) < window:
        return Verdict("ok")
    mean = sum(recent[-window:]) / window
    if value <= factor * mean:
        return Verdict("ok", recent_mean=mean)
    if high_streak + 1 >= patience:
        return Verdict(
            "diverged",
            f"loss {value:.4g} > {factor:g} x recent mean {mean:.4g} for {patience} steps in a row",
            mean,
        )
    return Verdict("spike", f"loss {value:.4g} > {factor:g} x recent mean {mean:.4g}", mean)


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
    spike_steps: frozenset[int] = frozenset()
    nan_done: bool = False
    spikes_done: set[int] = field(default_factory=set)

    @classmethod
    def from_env(cls) -> FaultHooks:
        """Hooks from ENS_FAULT_NAN_STEP, ENS_FAULT_KILL_STEP and ENS_FAULT_SPIKE_STEPS (a,b,..)."""
        spikes = os.environ.get(SPIKE_STEPS_ENV, "")
        return cls(
            int(os.environ.get(NAN_STEP_ENV, -1)),
            int(os.environ.get(KILL_STEP_ENV, -1)),
            frozenset(int(step) for step in spikes.split(",") if step.strip()),
        )

    def loss(self, step: int, value: float) -> float:
        """NaN (or value x SPIKE_FACTOR) instead of `value` the first time `step` is planted."""
        if step == self.nan_step and not self.nan_done:
            self.nan_done = True
            return math.nan
        if step in self.spike_steps and step not in self.spikes_done:
            self.spikes_done.add(step)
            return value * SPIKE_FACTOR
        return value

    def after_step(self, steps_done: int) -> None:
        """SIGKILL this process once `steps_done` reaches the planted step."""
        if steps_done == self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
