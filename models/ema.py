"""An exponential moving average of a model's weights (and batch-norm statistics).

torch.optim.swa_utils.AveragedModel with an EMA update: after update t (t = 0, 1, ...) every
floating-point parameter and buffer becomes

    ema <- d_t * ema + (1 - d_t) * weights,    d_t = min(decay, (1 + t) / (10 + t))

(the first update copies the weights; integer buffers such as batch norm's step count are
copied). The warm-up of d_t, as in TensorFlow's ExponentialMovingAverage(num_updates) and
timm's ModelEmaV3, lets the average follow the weights early on instead of holding the random
start for 1 / (1 - decay) steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used by update number `updates` (0-based): min(decay, (1 + t) / (10 + t))."""
    return min(decay, (1 + updates) / (10 + updates))


def _ema_update(decay: float) -> Callable:
    @torch.no_grad()
    def update(averaged: list, current: list, updates: torch.Tensor) -> None:
        step = ema_decay_at(decay, int(updates))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - step)
        else:
            for mine, theirs in zip(averaged, current, strict=True):
                mine.copy_(theirs)

    return update


def ema_of(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of `model` (parameters and buffers), updated by `.update_parameters(model)`."""
    return AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=True)
