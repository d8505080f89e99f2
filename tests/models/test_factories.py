"""Optimizer groups (no weight decay on norms and biases) and the warm-up in front of every
learning-rate schedule, against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.config import SCHEDULER_NAMES, StageConfig
from models.factories import build_optimizer, build_schedule, parameter_groups
from models.small_cnn import SmallCNN

LR, STEPS, EPOCHS, WARMUP = 0.1, 4, 3, 1.5  # warm-up: round(1.5 x 4) = 6 steps


def test_norm_weights_and_biases_get_no_weight_decay() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)  # frozen: in no group
    optimizer = build_optimizer(model, StageConfig(optimizer="adamw", weight_decay=0.05))
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay == {
        id(model[0].bias): 0.0,
        id(model[1].weight): 0.0,
        id(model[1].bias): 0.0,
        id(model[3].weight): 0.05,
        id(model[3].bias): 0.0,
    }
    # a whole network: every parameter of one dimension or less, and only those, is undecayed
    cnn = SmallCNN("residual", 10)
    decayed, undecayed = parameter_groups(cnn, 0.01)
    norms = [m for m in cnn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for m in norms for p in m.parameters()} <= {id(p) for p in undecayed["params"]}
    assert all(p.ndim > 1 for p in decayed["params"]) and decayed["weight_decay"] == 0.01
    assert len(decayed["params"]) + len(undecayed["params"]) == len(list(cnn.parameters()))


def _cosine(start: float, end: float, share: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * share) + 1)


def scheduler_lr(name: str, epoch: int, batch: int) -> float:
    """The closed form of each scheduler's lr at a step (without warm-up)."""
    step = epoch * STEPS + batch
    if name in ("none", "plateau"):  # plateau: the val score improves every epoch
        return LR
    if name == "step":  # step_size 1, gamma 0.5
        return LR * 0.5**epoch
    if name == "cosine":  # one half cosine over the stage's steps, to eta_min 0
        return _cosine(LR, 0.0, step / (EPOCHS * STEPS))
    if name == "cosine-warm-restarts":  # t0 1, t_mult 2: cycles [0, 1), [1, 3), ...
        t = epoch + batch / STEPS
        start, length = (0.0, 1.0) if t < 1 else (1.0, 2.0)
        return _cosine(LR, 0.0, (t - start) / length)
    total = EPOCHS * STEPS  # onecycle, pct_start 0.3
    peak = 0.3 * total - 1
    if step <= peak:
        return _cosine(LR / 25, LR, step / peak)
    return _cosine(LR, LR / 25 / 1e4, (step - peak) / (total - 1 - peak))


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_warmup_scales_every_schedule_linearly_then_lets_it_be(name: str) -> None:
    stage = StageConfig(
        epochs=EPOCHS,
        optimizer="sgd",
        lr=LR,
        momentum=0.0,
        scheduler=name,
        gamma=0.5,
        plateau_patience=0,
        plateau_factor=0.5,
        warmup_epochs=WARMUP,
    )
    weight = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(nn.ParameterList([weight]), stage)
    schedule = build_schedule(optimizer, stage, STEPS)
    assert schedule.warmup_steps == 6
    for epoch in range(EPOCHS):
        for batch in range(STEPS):
            step = epoch * STEPS + batch
            applied = optimizer.param_groups[0]["lr"] * schedule.warmup_factor(step)
            warmup = min(1.0, (step + 1) / 6)
            assert applied == pytest.approx(warmup * scheduler_lr(name, epoch, batch), rel=1e-9)
            optimizer.step()  # no gradient: nothing moves, the schedule may step
            schedule.after_batch(epoch + (batch + 1) / STEPS)
        schedule.after_epoch(10.0 - epoch)  # an improving val score


def test_no_warmup_is_a_factor_of_one() -> None:
    stage = StageConfig(warmup_epochs=0)
    schedule = build_schedule(build_optimizer(nn.Linear(2, 2), stage), stage, STEPS)
    assert [schedule.warmup_factor(s) for s in range(3)] == [1.0, 1.0, 1.0]
