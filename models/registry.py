"""Backbones by name: torchvision classification models and the small CNN family.

The classifier (generically: the last nn.Linear of the model) is replaced by a regression head
of 2N outputs. `pretrained = true` loads torchvision's weights with their own normalisation;
`weights_path` loads a state_dict file through the same code path (offline use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torchvision
from torch import nn

from ensemble.errors import InputError
from models.heads import last_linear, make_head
from models.small_cnn import VARIANTS, SmallCNN

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CUSTOM_MODELS: dict[str, Callable[..., nn.Module]] = {
    f"small_cnn_{variant}": partial(SmallCNN, variant) for variant in VARIANTS
}


@dataclass
class BuiltModel:
    """A model with its regression head and the input normalisation it expects."""

    model: nn.Module
    head: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_channels: int


def available_architectures() -> list[str]:
    """Every `arch` name the registry builds."""
    names = torchvision.models.list_models(module=torchvision.models)
    return sorted([*names, *CUSTOM_MODELS])


def load_backbone_state(model: nn.Module, state: dict, source: str) -> None:
    """Load a classification state_dict into a backbone (before its head is replaced)."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise InputError(source, f"weights do not fit the architecture: {first}") from None


def _pretrained_state(arch: str) -> tuple[dict, tuple, tuple]:
    """Download (or take from torch's cache) torchvision's default weights for `arch`."""
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:
        raise InputError(
            weights.url,
            f"cannot load pretrained weights ({error}); offline, set pretrained = false or "
            "weights_path = a state_dict file",
        ) from None
    transform = weights.transforms()
    return state, tuple(transform.mean), tuple(transform.std)


def build_model(
    arch: str,
    n_points: int,
    head_hidden: tuple[int, ...] = (),
    head_dropout: float = 0.0,
    pretrained: bool = False,
    weights_path: str = "",
    freeze: str | int = "none",
    in_channels: int = 3,
    bn_momentum: float = 0.1,
    uncertainty: str = "none",
) -> BuiltModel:
    """Build `arch` with a 2N-output head; optionally pretrained / loaded, optionally frozen.

    With `uncertainty` other than "none" the head has N more outputs: each point's log sigma.

    `bn_momentum` (0 keeps the architecture's own) is set on every batch-norm layer: some
    torchvision models use 0.01, whose running statistics lag far behind on short runs.
    """
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if arch in CUSTOM_MODELS:
        if pretrained:
            raise InputError(None, f"'{arch}' has no pretrained weights; set pretrained = false")
        model = CUSTOM_MODELS[arch](in_channels=in_channels)
        model_channels = in_channels
    else:
        model = torchvision.models.get_model(arch, weights=None)
        model_channels = 3
        if pretrained:
            state, mean, std = _pretrained_state(arch)
            load_backbone_state(model, state, f"torchvision weights of {arch}")
    if weights_path:
        if not Path(weights_path).is_file():
            raise InputError(weights_path, "weights_path: no such file")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        load_backbone_state(model, state, weights_path)
    if in_channels == 1:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    name, linear = last_linear(model)
    head = make_head(linear.in_features, n_points, head_hidden, head_dropout, uncertainty)
    model.set_submodule(name, head)
    freeze_backbone(model, head, freeze)
    if bn_momentum:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    return BuiltModel(model, head, mean, std, model_channels)


def backbone_stages(model: nn.Module, head: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's stages in order: top-level children with parameters, excluding the head.

    A model whose backbone is one or two big Sequentials (densenet, mobilenet, efficientnet,
    convnext, regnet...) has those Sequentials' children as its stages instead.
    """
    head_params = {id(p) for p in head.parameters()}

    def has_backbone_params(module: nn.Module) -> bool:
        return any(id(p) not in head_params for p in module.parameters())

    top = [(n, m) for n, m in model.named_children() if has_backbone_params(m)]
    if len(top) > 2:
        return top
    stages = []
    for name, module in top:
        children = [(f"{name}.{n}", m) for n, m in module.named_children()]
        if isinstance(module, nn.Sequential) and children:
            stages += [(n, m) for n, m in children if has_backbone_params(m)]
        else:
            stages.append((name, module))
    return stages


def freeze_backbone(model: nn.Module, head: nn.Module, freeze: str | int) -> None:
    """Stop gradients of the whole backbone ('all') or of its first `freeze` stages."""
    if freeze == "none" or freeze == 0:
        return
    head_params = {id(p) for p in head.parameters()}
    if freeze == "all":
        for parameter in model.parameters():
            if id(parameter) not in head_params:
                parameter.requires_grad_(False)
        return
    stages = backbone_stages(model, head)
    if freeze > len(stages):
        names = [n for n, _ in stages]
        raise InputError(
            None, f"freeze = {freeze} but the backbone has {len(stages)} stages: {names}"
        )
    for _, module in stages[:freeze]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
