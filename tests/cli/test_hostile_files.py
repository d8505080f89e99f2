"""Hostile files through whole commands: each is a clear error (file, problem, exit 1, no
traceback) that leaves the folder as it was, and nothing hangs on a FIFO.

A decompression bomb among the training images is covered with the other broken images in
tests/models/test_faults.py; the readers one by one in tests/ensemble/io/test_hostile_inputs.py.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ensemble.errors import TOO_DEEP, TOO_MANY_DIGITS
from ensemble.io.run_folder import RUN_NAME_RULE
from tests.helpers import bomb_png, fails_cleanly, invoke_ens, write_demo_with_baseline

RUN = '[[run]]\nname = "a"\narch = "small_cnn_basic"\n'


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """demo/ (a tiny competition) and base.csv (its baseline)."""
    return write_demo_with_baseline(tmp_path_factory.mktemp("hostile"))


def _train_all(config: str) -> list[str]:
    return ["train-all", "--data", "demo", "--config", config, "--out", "RUNS", "--quiet"]


def test_dev_null_as_output_is_refused(root: Path) -> None:
    result = invoke_ens(["blend", "base.csv", "base.csv", "-o", "/dev/null"])
    assert result.exit_code == 1, result.output
    assert result.output == (
        "Error: /dev/null: refusing to write the output here: it is a character device, not a "
        "regular file\n"
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # (as root it became a regular file)


@pytest.mark.parametrize(
    "args",
    [
        ["blend", "base.csv", "base.csv", "-o", "fifo"],
        ["score", "base.csv", "--data", "demo", "--scores", "fifo"],
        ["baseline", "--data", "demo", "-o", "fifo"],
    ],
)
def test_a_fifo_as_output_is_refused(root: Path, no_hang, args: list[str]) -> None:
    os.mkfifo("fifo")
    fails_cleanly(root, args, "Error: fifo: refusing to write the output here: it is a FIFO")


@pytest.mark.parametrize(
    ("fifo", "args"),
    [
        ("in.csv", ["blend", "in.csv", "base.csv", "-o", "out.csv"]),
        ("in.csv", ["score", "in.csv", "--data", "demo"]),
        ("runs.toml", _train_all("runs.toml")),
        ("demo/train/landmarks.csv", ["baseline", "--data", "demo", "-o", "out.csv"]),
        ("demo/test/test_points.csv", ["analyze", "uniformity", "--data", "demo"]),
    ],
)
def test_an_input_that_is_a_fifo_is_refused(
    root: Path, no_hang, fifo: str, args: list[str]
) -> None:
    Path(fifo).unlink(missing_ok=True)
    os.mkfifo(fifo)
    fails_cleanly(root, args, f"Error: {Path(fifo)}: is a FIFO, not a regular file\n")


def test_a_bomb_among_the_test_images_is_named_and_left_out_of_the_cache(root: Path) -> None:
    name = sorted(os.listdir("demo/test/images"))[1]
    Path("demo/test/images", name).write_bytes(bomb_png(30000, 30000))
    result = invoke_ens(["prepare", "--data", "demo", "--size", "32", "--quiet"])
    assert result.exit_code == 0, result.output
    bad = json.loads(Path("demo/.ens_cache/test_32/bad_images.json").read_text())
    assert [item["file_name"] for item in bad] == [name]
    assert "decompression bomb" in bad[0]["reason"]


def test_a_config_nested_deeper_than_any_real_file_is_a_clear_error(root: Path) -> None:
    Path("deep.toml").write_text(RUN + "head_hidden = " + "[" * 10_000 + "]" * 10_000 + "\n")
    fails_cleanly(root, _train_all("deep.toml"), f"Error: deep.toml: {TOO_DEEP}\n")


def test_a_layout_nested_deeper_than_any_real_file_is_a_clear_error(root: Path) -> None:
    Path("demo/train/layout.json").write_text("[" * 100_000 + "]" * 100_000)
    args = ["analyze", "uniformity", "--data", "demo"]
    fails_cleanly(root, args, f"Error: {Path('demo/train/layout.json')}: {TOO_DEEP}\n")


def test_numbers_longer_than_python_reads_are_a_clear_error(root: Path) -> None:
    Path("digits.toml").write_text(RUN + "seed = " + "9" * 5000 + "\n")
    fails_cleanly(root, _train_all("digits.toml"), f"Error: digits.toml: {TOO_MANY_DIGITS}\n")
    Path("demo/train/layout.json").write_text('{"eyes": [0, ' + "9" * 5000 + "]}")
    args = ["analyze", "uniformity", "--data", "demo"]
    fails_cleanly(root, args, f"Error: {Path('demo/train/layout.json')}: {TOO_MANY_DIGITS}\n")


def test_a_config_with_a_byte_that_is_not_utf8_names_the_line(root: Path) -> None:
    Path("latin1.toml").write_bytes(RUN.encode() + b"# caf\xe9\n")
    fails_cleanly(
        root,
        _train_all("latin1.toml"),
        "Error: latin1.toml, line 4: not UTF-8 text (byte 0xe9 at byte 6 of the line)",
    )


def test_a_run_name_too_long_for_a_folder_is_refused_before_anything_is_written(
    root: Path,
) -> None:
    name = "n" * 300
    Path("long.toml").write_text(RUN.replace('"a"', f'"{name}"'))
    output = fails_cleanly(
        root,
        _train_all("long.toml"),
        f"Error: long.toml: [[run]] number 1: name '{'n' * 60}...' (300 characters) is longer "
        f"than 100 characters; {RUN_NAME_RULE}\n",
    )
    assert name not in output


@pytest.mark.parametrize("name", ["n" * 300, "a b", "x/y", ".hidden"])
def test_import_run_checks_the_run_name_first(root: Path, name: str) -> None:
    args = ["import-run", name, "--data", "demo", "--test", "base.csv", "--out", "RUNS"]
    fails_cleanly(root, args, "Error: run name '", RUN_NAME_RULE)


def test_a_huge_config_value_is_not_echoed_whole(root: Path) -> None:
    arch = "x" * 1_000_000
    Path("huge.toml").write_text(RUN.replace('"small_cnn_basic"', f'"{arch}"'))
    output = fails_cleanly(
        root,
        _train_all("huge.toml"),
        f"bad value '{'x' * 60}...' (1,000,000 characters) for 'arch'; allowed: ",
    )
    assert len(output) < 2000
