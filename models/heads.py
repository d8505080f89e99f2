"""Regression heads: 2N outputs, linear or an MLP with dropout, started at the mean shape."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def make_head(
    in_features: int, n_outputs: int, hidden: Sequence[int] = (), dropout: float = 0.0
) -> nn.Sequential:
    """Linear head, or Linear-ReLU-Dropout blocks of the `hidden` sizes then the output Linear."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def last_linear(module: nn.Module) -> tuple[str, nn.Linear]:
    """The last nn.Linear of a module (in registration order) and its dotted name."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"{type(module).__name__} has no nn.Linear layer to replace by a head")
    return found[-1]


@torch.no_grad()
def start_at_mean_shape(head: nn.Module, mean_targets: torch.Tensor) -> None:
    """Zero the output layer's weights and set its bias to the mean normalised shape (2N,)."""
    _, output = last_linear(head)
    if output.out_features != mean_targets.numel():
        raise ValueError(
            f"head has {output.out_features} outputs, mean shape {mean_targets.numel()}"
        )
    output.weight.zero_()
    output.bias.copy_(mean_targets.reshape(-1).to(output.bias))
