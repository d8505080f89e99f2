"""configs/seeds.toml: the seed solutions' GPU recipes parse and validate; stage freezing."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

from ensemble.cli import cli
from models.config import load_config
from models.registry import available_architectures
from tests.helpers import write_faces

SEEDS = Path(__file__).resolve().parents[2] / "configs" / "seeds.toml"


def test_seed_recipes_validate() -> None:
    runs = {r.name: r for r in load_config(SEEDS, available_architectures())}
    assert list(runs) == ["resnet101", "densenet169", "resnext101_32x8d", "resnext50_32x4d"]
    assert all(r.pretrained and r.crop_size == 224 and r.device == "cuda" for r in runs.values())
    resnet = runs["resnet101"]
    assert (resnet.batch_size, resnet.stages[0].optimizer, resnet.stages[0].lr) == (
        64,
        "adam",
        1e-3,
    )
    densenet = runs["densenet169"].stages
    assert [s.optimizer for s in densenet] == ["adam", "sgd"]
    assert all(s.scheduler == "cosine-warm-restarts" and s.t_mult == 2 for s in densenet)
    assert all(s.weight_decay > 0 for s in densenet)
    assert [s.freeze for s in runs["resnext101_32x8d"].stages] == ["all", "none", "all"]
    resnext50 = runs["resnext50_32x4d"]
    assert len(resnext50.head_hidden) == 1 and resnext50.head_dropout > 0
    assert resnext50.stages[0].optimizer == "radam"


def test_stage_freeze_trains_the_head_then_everything(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "data", n_train=20, n_test=2)
    config = tmp_path / "runs.toml"
    config.write_text(
        '[defaults]\nrestarts = 0\ncrop_size = 24\nbatch_size = 8\ndevice = "cpu"\n'
        '[[run]]\nname = "head"\narch = "small_cnn_basic"\n'
        'stages = [{epochs = 1, freeze = "all"}]\n'
        '[[run]]\nname = "both"\narch = "small_cnn_basic"\n'
        'stages = [{epochs = 1, freeze = "all"}, {epochs = 1, freeze = "none"}]\n'
    )
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    head = torch.load(tmp_path / "head" / "checkpoints" / "last.pt", weights_only=True)
    both = torch.load(tmp_path / "both" / "checkpoints" / "last.pt", weights_only=True)
    n_head = sum(len(group["params"]) for group in head["optimizer"]["param_groups"])
    n_all = sum(len(group["params"]) for group in both["optimizer"]["param_groups"])
    assert n_head == 2 and n_all == sum(
        1 for k in both["model"] if "running" not in k and "num_batches" not in k
    )
