"""Backbones, heads, factories and checkpoints."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from ensemble.errors import InputError
from models.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from models.config import RunConfig, StageConfig
from models.factories import LOSSES, OPTIMIZERS, SCHEDULERS, WingLoss
from models.heads import start_at_mean_shape
from models.registry import available_architectures, backbone_stages, build_model


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "small_cnn_residual"])
def test_head_has_2n_outputs_and_starts_at_the_mean_shape(arch: str) -> None:
    built = build_model(arch, 7, head_hidden=(16,), head_dropout=0.1, in_channels=3)
    mean = torch.linspace(-0.4, 0.4, 14)
    start_at_mean_shape(built.head, mean)
    built.model.eval()
    out = built.model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 14)
    assert torch.allclose(out, mean.expand(2, -1))


def test_small_cnn_takes_grayscale_and_every_family_member_is_registered() -> None:
    names = available_architectures()
    for variant in ("basic", "wider", "deeper", "residual"):
        assert f"small_cnn_{variant}" in names
    built = build_model("small_cnn_deeper", 15, in_channels=1)
    assert built.in_channels == 1 and len(built.mean) == 1
    assert built.model(torch.randn(2, 1, 96, 96)).shape == (2, 30)
    assert {"resnet101", "densenet121", "efficientnet_b0", "convnext_tiny"} <= set(names)


def test_freeze_all_or_the_first_stages() -> None:
    built = build_model("resnet18", 3, freeze="all")
    trainable = {n for n, p in built.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in built.model.named_parameters() if n.startswith("fc.")}
    built = build_model("resnet18", 3, freeze=3)
    stages = backbone_stages(built.model, built.head)
    assert [n for n, _ in stages] == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    frozen = {n.split(".")[0] for n, p in built.model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}
    with pytest.raises(InputError, match="freeze = 9 but the backbone has 6 stages"):
        build_model("resnet18", 3, freeze=9)


def test_weights_path_loads_a_state_dict_like_pretrained_weights(tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = torchvision.models.get_model("resnet18", weights=None)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    built = build_model("resnet18", 4, weights_path=str(tmp_path / "r18.pth"))
    loaded = built.model.state_dict()
    for name, value in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded[name], value), name
    torch.save(build_model("resnet34", 4).model.state_dict(), tmp_path / "bad.pth")
    with pytest.raises(InputError, match="bad.pth: weights do not fit the architecture"):
        build_model("resnet18", 4, weights_path=str(tmp_path / "bad.pth"))


def test_wing_loss_matches_its_closed_form() -> None:
    error = np.array([-0.2, -0.03, 0.0, 0.01, 0.049, 0.05, 0.3])
    width, epsilon = 0.05, 0.01
    offset = width - width * math.log(1 + width / epsilon)
    expected = np.where(
        np.abs(error) < width,
        width * np.log(1 + np.abs(error) / epsilon),
        np.abs(error) - offset,
    ).mean()
    got = WingLoss(width, epsilon)(torch.tensor(error), torch.zeros(len(error)))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    config = RunConfig(name="r", arch="resnet18")
    assert set(LOSSES) == {"mse", "smooth_l1", "l1", "wing"}
    for make in LOSSES.values():
        assert make(config)(torch.ones(3), torch.ones(3)).item() == 0.0


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_and_schedule_trains_a_step(optimizer: str, scheduler: str) -> None:
    model = nn.Linear(3, 1)
    stage = StageConfig(
        epochs=2, optimizer=optimizer, lr=0.1, scheduler=scheduler, weight_decay=0.01
    )
    opt = OPTIMIZERS[optimizer](model.parameters(), stage)
    schedule = SCHEDULERS[scheduler](opt, stage, 4)
    before = model.weight.detach().clone()
    for epoch in range(2):
        for step in range(4):
            opt.zero_grad()
            model(torch.ones(2, 3)).pow(2).mean().backward()
            opt.step()
            schedule.after_batch(epoch + (step + 1) / 4)
        schedule.after_epoch(1.0)
    assert not torch.equal(before, model.weight)
    assert isinstance(schedule.state_dict(), dict)


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    save_checkpoint(
        tmp_path / "c" / "last.pt",
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": state, "best": 1.5},
    )
    loaded = load_checkpoint(tmp_path / "c" / "last.pt")
    assert torch.equal(loaded["model"]["weight"], model.weight)
    assert loaded["optimizer"]["state"][0]["step"] == 1 and loaded["best"] == 1.5
    restore_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["last.pt"]
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
