"""Landmark regression losses that leave missing labels out (NaN target = not labelled).

Every loss is an element-wise penalty averaged over the present target values only, so a batch
with all labels present gives exactly the usual mean, and a missing label contributes neither
to the value nor to the gradient (it is never treated as zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.config import RunConfig

Penalty = Callable[[torch.Tensor], torch.Tensor]  # error (pred - target) -> element-wise loss


class MaskedLoss(nn.Module):
    """Mean of an element-wise penalty of (predicted - target) over the finite target values."""

    def __init__(self, penalty: Penalty) -> None:
        super().__init__()
        self.penalty = penalty

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Averaged over present values; a batch without any label gives 0 (no gradient)."""
        present = torch.isfinite(target)
        # where() before the penalty: a NaN target must not reach the graph (0 * NaN = NaN)
        error = torch.where(present, predicted - torch.nan_to_num(target), 0.0)
        total = (self.penalty(error) * present).sum()
        return total / present.sum().clamp(min=1)


def wing_penalty(width: float, epsilon: float) -> Penalty:
    """Wing loss (Feng et al. 2018): w log(1 + |e| / eps) below `width`, |e| - C beyond."""
    offset = width - width * math.log1p(width / epsilon)

    def penalty(error: torch.Tensor) -> torch.Tensor:
        size = error.abs()
        return torch.where(size < width, width * torch.log1p(size / epsilon), size - offset)

    return penalty


def smooth_l1_penalty(beta: float) -> Penalty:
    """Huber-like SmoothL1: e^2 / (2 beta) below `beta`, |e| - beta / 2 beyond."""

    def penalty(error: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(error, torch.zeros_like(error), reduction="none", beta=beta)

    return penalty


class WingLoss(MaskedLoss):
    """Masked Wing loss with its two parameters (see `wing_penalty`)."""

    def __init__(self, width: float, epsilon: float) -> None:
        super().__init__(wing_penalty(width, epsilon))


LOSSES: dict[str, Callable[[RunConfig], nn.Module]] = {
    "mse": lambda config: MaskedLoss(torch.square),
    "smooth_l1": lambda config: MaskedLoss(smooth_l1_penalty(config.smooth_l1_beta)),
    "l1": lambda config: MaskedLoss(torch.abs),
    "wing": lambda config: WingLoss(config.wing_w, config.wing_epsilon),
}


class ScaleNLL(nn.Module):
    """Negative log-likelihood of the errors under each point's predicted isotropic scale.

    Per present coordinate: 0.5 (e / sigma)^2 + log sigma (Gaussian) or |e| / sigma + log sigma
    (Laplace), constants dropped, averaged. The errors are detached: only the scale learns from
    it, so the locations train exactly as without uncertainty (the backbone still sees both).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(
        self, predicted: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor
    ) -> torch.Tensor:
        """Mean over present coordinates; `log_sigma` (B, N) for points (B, N, 2)."""
        present = torch.isfinite(target)
        error = torch.where(present, predicted.detach() - torch.nan_to_num(target), 0.0)
        ratio = error.abs() * torch.exp(-log_sigma)[..., None]
        penalty = 0.5 * ratio**2 if self.kind == "gaussian" else ratio
        total = ((penalty + log_sigma[..., None]) * present).sum()
        return total / present.sum().clamp(min=1)
