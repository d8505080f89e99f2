"""Run configuration: defaults merge into runs; bad keys and values get precise messages."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from models.config import ConfigError, config_reference, parse_config, run_from_dict, to_toml

ARCHS = ["resnet18", "small_cnn_basic"]
GOOD = """
[defaults]
crop_size = 64
val_fraction = 0.2
[defaults.augment]
rotation = 5
[[defaults.stages]]
epochs = 3
optimizer = "adam"
[[defaults.stages]]
epochs = 1
optimizer = "sgd"
lr = 0.01

[[run]]
name = "a"
arch = "resnet18"

[[run]]
name = "b"
arch = "small_cnn_basic"
crop_size = 32
head_hidden = [64]
augment = {flip = false}
stages = [{epochs = 2, scheduler = "onecycle"}]
"""


def test_defaults_merge_into_each_run() -> None:
    a, b = parse_config(GOOD, "runs.toml", ARCHS)
    assert (a.crop_size, b.crop_size) == (64, 32)
    assert [s.optimizer for s in a.stages] == ["adam", "sgd"] and a.stages[1].lr == 0.01
    assert len(b.stages) == 1 and b.stages[0].scheduler == "onecycle"
    assert a.augment.rotation == 5 and a.augment.flip
    assert b.augment.rotation == 5 and not b.augment.flip
    assert a.val_fraction == b.val_fraction == 0.2
    assert b.head_hidden == (64,)


def test_resolved_config_round_trips_through_toml() -> None:
    run = parse_config(GOOD, "runs.toml", ARCHS)[1]
    text = to_toml({"data": "/x/y", **run.to_dict()})
    values = tomllib.loads(text)
    assert values["data"] == "/x/y"
    assert run_from_dict(values) == run


RUN = '[[run]]\nname = "r1"\narch = "resnet18"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            RUN + "crop = 64\n",
            r"runs.toml: \[\[run\]\] 'r1': unknown key 'crop'; allowed: .*crop_size",
        ),
        (
            RUN + "crop_size = 'big'\n",
            r"'r1': bad value 'big' for 'crop_size'; allowed: an integer >= 16",
        ),
        (RUN + "pretrained = 1\n", r"bad value 1 for 'pretrained'; allowed: true or false"),
        (RUN + "loss = 'huber'\n", r"'loss'; allowed: one of \['mse', 'smooth_l1', 'l1', 'wing'\]"),
        (RUN + "freeze = 'some'\n", r"'freeze'; allowed: 'none', 'all' or the number"),
        (RUN + "head_hidden = [0]\n", r"'head_hidden'; allowed: a list of positive integers"),
        (RUN + "stages = [{epochs = 0}]\n", r"bad value 0 for 'stages\[0\].epochs'"),
        (RUN + "stages = [{epoch = 2}]\n", r"unknown key 'stages\[0\].epoch'; allowed: .*'epochs'"),
        (
            RUN + "stages = [{epochs = 2, scheduler = 'cosine-annealing'}]\n",
            r"'stages\[0\].scheduler'; allowed: one of \['cosine', 'cosine-warm-restarts', 'step'",
        ),
        (RUN + "augment = {rotate = 3}\n", r"unknown key 'augment.rotate'"),
        (RUN + "augment = {rotation = -3}\n", r"bad value -3 for 'augment.rotation'"),
        (RUN + "val_fraction = 0.3\n", r"'r1': 'val_fraction' must be set in \[defaults\]"),
        (
            '[[run]]\nname = "r1"\narch = "resnet19"\n',
            r"bad value 'resnet19' for 'arch'; allowed: ",
        ),
        ('[[run]]\nname = "r1"\n', r"'r1': missing 'arch'"),
        ('[[run]]\narch = "resnet18"\n', r"\[\[run\]\] number 1: needs a 'name'"),
        (RUN + RUN, r"'r1': duplicate run name"),
        ("[defaults]\nbatch = 3\n" + RUN, r"\[defaults\]: unknown key 'batch'"),
        ("[default]\n" + RUN, r"unknown top-level key\(s\) \['default'\]"),
        ("[defaults]\n", r"no \[\[run\]\] table"),
        ("[[run]\n", r"not valid TOML"),
    ],
)
def test_bad_configs_name_the_run_the_key_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "runs.toml", ARCHS)


def test_reference_lists_every_key() -> None:
    reference = config_reference()
    for key in ("crop_size", "stages[].scheduler", "augment.flip", "head_hidden", "patience"):
        assert f"| {key} |" in reference
    assert "| arch | (required) |" in reference


def test_the_readme_table_is_the_generated_reference() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert config_reference() in readme


def test_every_key_is_declared_once_with_a_check_and_a_meaning() -> None:
    from models.config import AUGMENT_KEYS, RUN_KEYS, STAGE_KEYS, RunConfig

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(RUN_KEYS) == fields
    assert RUN_KEYS["stages"] is None and RUN_KEYS["augment"] is None
    assert all(callable(check) for check in {**STAGE_KEYS, **AUGMENT_KEYS}.values())
    rows = config_reference().splitlines()[2:]
    assert len(rows) == len(RUN_KEYS) - 2 + len(STAGE_KEYS) + len(AUGMENT_KEYS)
    assert all(row.count("|") == 5 and not row.endswith("|  |") for row in rows)
