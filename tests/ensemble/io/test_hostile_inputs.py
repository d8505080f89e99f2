"""Hostile files, one reader or check at a time: decompression bombs, FIFOs, devices, sockets,
nesting deeper than any real file, run names and values too long to quote whole."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from ensemble.competition.layout import dataset_layout, read_layout
from ensemble.errors import TOO_DEEP, InputError
from ensemble.io.atomic import check_output
from ensemble.io.checks import decode_utf8, literal, quoted, read_first_line
from ensemble.io.file_kind import require_regular_file, special_file_kind
from ensemble.io.images import MAX_PIXELS, open_image
from ensemble.io.run_folder import RUN_NAME_RULE, run_name_problem
from tests.helpers import bomb_png


@pytest.fixture
def fifo(tmp_path: Path, no_hang) -> Path:
    """A FIFO with no writer: opening it for reading would block for ever."""
    path = tmp_path / "fifo.csv"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("width", "height", "declared"),
    [
        (30000, 30000, f"more than {2 * MAX_PIXELS:,} pixels"),  # Pillow refuses it in open
        (12000, 12000, "12,000 x 12,000 = 144,000,000 pixels"),  # under Pillow's error, over ours
    ],
)
def test_a_decompression_bomb_is_an_image_that_cannot_be_decoded(
    tmp_path: Path, width: int, height: int, declared: str
) -> None:
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bomb_png(width, height))
    assert path.stat().st_size < 1000
    with pytest.raises(InputError) as caught, open_image(path):
        pass
    assert str(caught.value) == (
        f"{path}: cannot decode image: its header declares {declared}, over the limit of "
        f"{MAX_PIXELS:,} (a decompression bomb?)"
    )


def test_an_image_at_the_limit_opens(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(10000, 10000))
    with open_image(path) as image:
        assert image.size == (10000, 10000)


def test_an_image_that_is_a_fifo_is_refused_without_opening_it(fifo: Path) -> None:
    refused = "cannot decode image: it is a FIFO, not a regular file"
    with pytest.raises(InputError, match=refused), open_image(fifo):
        pass


def test_readers_refuse_a_fifo_or_a_folder_without_opening_it(fifo: Path) -> None:
    with pytest.raises(InputError, match=f"^{fifo}: is a FIFO, not a regular file$"):
        read_first_line(fifo)
    with pytest.raises(InputError, match="is a folder, not a regular file"):
        require_regular_file(fifo.parent)
    require_regular_file(fifo.parent / "missing.csv")  # a missing file is the reader's to name


def test_special_file_kinds(tmp_path: Path, fifo: Path) -> None:
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))
    try:
        assert special_file_kind(tmp_path / "sock") == "a socket"
    finally:
        listening.close()
    assert special_file_kind(fifo) == "a FIFO"
    assert special_file_kind("/dev/null") == "a character device"
    assert special_file_kind(tmp_path) is None and special_file_kind(tmp_path / "none") is None


@pytest.mark.parametrize("kind", ["/dev/null", "fifo", "socket"])
def test_an_output_that_is_a_device_fifo_or_socket_is_refused(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    output = {"/dev/null": Path("/dev/null"), "fifo": fifo, "socket": tmp_path / "s"}[kind]
    if kind == "socket":
        listening = socket.socket(socket.AF_UNIX)
        listening.bind(str(output))
    with pytest.raises(InputError, match="refusing to write the output here: it is a"):
        check_output(output)
    assert not stat.S_ISREG(os.stat(output).st_mode)  # as a root user would also find it


def test_a_layout_nested_deeper_than_any_real_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "layout.json"
    path.write_text('{"regions": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match=f"^{path}: {TOO_DEEP}$"):
        read_layout(path, 12)


def test_a_layout_file_that_is_a_fifo_is_refused_not_ignored(tmp_path: Path, no_hang) -> None:
    (tmp_path / "train").mkdir()
    os.mkfifo(tmp_path / "train" / "layout.json")
    with pytest.raises(InputError, match="layout.json: is a FIFO, not a regular file"):
        dataset_layout(tmp_path, 12)


def test_a_bad_byte_is_named_by_line_and_byte(tmp_path: Path) -> None:
    raw = b"first\nsecond\nthi\xe9rd\n"
    with pytest.raises(InputError) as caught:
        decode_utf8(tmp_path / "x.toml", raw)
    assert caught.value.line == 3
    assert "byte 0xe9 at byte 4 of the line" in caught.value.problem


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("resnet18_s1-v2.b", None),
        ("n" * 100, None),
        ("n" * 101, f"is longer than 100 characters; {RUN_NAME_RULE}"),
        ("", f"is empty; {RUN_NAME_RULE}"),
        ("a b", f"holds ' '; {RUN_NAME_RULE}"),
        ("../x", f"holds '/'; {RUN_NAME_RULE}"),
        (".hidden", f"starts with '.'; {RUN_NAME_RULE}"),
        ("é", f"holds 'é'; {RUN_NAME_RULE}"),
    ],
)
def test_run_names(name: str, problem: str | None) -> None:
    assert run_name_problem(name) == problem


def test_quoted_values_are_shortened() -> None:
    long = "x" * 1_000_000
    assert quoted(long) == f"'{'x' * 60}...' (1,000,000 characters)"
    assert literal(long) == quoted(long)
    assert literal(1) == "1" and literal([1, 2]) == "[1, 2]"
    many = list(range(10_000))
    assert literal(many) == f"{repr(many)[:60]}... ({len(repr(many)):,} characters)"
