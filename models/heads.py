"""Regression heads: 2N outputs (+ N log sigmas with `uncertainty`), linear or an MLP with
dropout, started at the mean shape."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ScaleBranch(nn.Module):
    """The output layer of an uncertainty head: 2N coordinates, then N log sigmas computed
    from detached features, so the scale never changes what the locations learn."""

    def __init__(self, width: int, n_points: int) -> None:
        super().__init__()
        self.points = nn.Linear(width, 2 * n_points)
        with torch.random.fork_rng(devices=[]):  # the run's random stream stays the plain one
            self.log_sigma = nn.Linear(width, n_points)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, width) -> (B, 3N)."""
        return torch.cat([self.points(features), self.log_sigma(features.detach())], dim=1)


def make_head(
    in_features: int,
    n_points: int,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    uncertainty: str = "none",
) -> nn.Sequential:
    """Linear head, or Linear-ReLU-Dropout blocks of the `hidden` sizes then the output layer
    (a Linear of 2N outputs, or a ScaleBranch when `uncertainty` is not "none")."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    plain = uncertainty == "none"
    layers.append(nn.Linear(width, 2 * n_points) if plain else ScaleBranch(width, n_points))
    return nn.Sequential(*layers)


def scale_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the model's uncertainty branch (none without one): they learn from
    detached features, apart from everything that places the points."""
    return [
        p
        for module in model.modules()
        if isinstance(module, ScaleBranch)
        for p in module.log_sigma.parameters()
    ]


def split_outputs(output: torch.Tensor, n_points: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A head's output (B, 2N or 3N) -> points (B, N, 2) and log sigmas (B, N) or None."""
    points = output[:, : 2 * n_points].reshape(len(output), n_points, 2)
    if output.shape[1] == 2 * n_points:
        return points, None
    return points, output[:, 2 * n_points :]


def last_linear(module: nn.Module) -> tuple[str, nn.Linear]:
    """The last nn.Linear of a module (in registration order) and its dotted name."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"{type(module).__name__} has no nn.Linear layer to replace by a head")
    return found[-1]


@torch.no_grad()
def start_at_mean_shape(
    head: nn.Module, mean_targets: torch.Tensor, log_sigma: torch.Tensor | None = None
) -> None:
    """Zero the output layer's weights and set its bias to the mean normalised shape (2N,),
    followed by `log_sigma` (N,) for a head that predicts uncertainty."""
    branch = next((m for m in head.modules() if isinstance(m, ScaleBranch)), None)
    output = last_linear(head)[1] if branch is None else branch.points
    if output.out_features != mean_targets.numel():
        raise ValueError(
            f"head has {output.out_features} outputs, mean shape {mean_targets.numel()}"
        )
    output.weight.zero_()
    output.bias.copy_(mean_targets.reshape(-1).to(output.bias))
    if branch is not None:
        if log_sigma is None:
            raise ValueError("an uncertainty head needs its starting log sigma")
        branch.log_sigma.weight.zero_()
        branch.log_sigma.bias.copy_(log_sigma.reshape(-1).to(branch.log_sigma.bias))
