"""The streamed landmarks reader: blocks of float32 rows, the same numbers as a plain parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ensemble.errors import InputError
from ensemble.io import landmarks
from ensemble.io.landmarks import landmark_blocks, read_landmark_names, read_landmarks

N_POINTS = 7
TINY_BLOCK = 2048  # bytes: a few dozen rows of the test files a block


def write_by_hand(path: Path, rows: int, seed: int = 0, missing: bool = False) -> list[str]:
    """A landmarks TSV written as plain text (integers, decimals, maybe empty cells); its lines."""
    rng = np.random.default_rng(seed)
    header = ["file_name"] + [f"Point_M{i}_{axis}" for i in range(N_POINTS) for axis in "XY"]
    lines = ["\t".join(header)]
    for row in range(rows):
        cells = []
        for _ in range(2 * N_POINTS):
            kind = rng.integers(4)
            if kind == 0:
                cells.append(str(int(rng.integers(-50, 1200))))
            elif kind == 3 and missing:
                cells.append("")
            else:
                cells.append(f"{rng.uniform(-50, 1200):.{int(rng.integers(1, 7))}f}")
        lines.append("\t".join([f"img_{row:05d}.jpg", *cells]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def parse_by_hand(lines: list[str]) -> tuple[list[str], np.ndarray]:
    """File names and float32 points (n, N, 2) of the lines, by Python's float()."""
    rows = [line.split("\t") for line in lines[1:]]
    values = [[float(cell) if cell else np.nan for cell in row[1:]] for row in rows]
    points = np.array(values, dtype=np.float64).astype(np.float32)
    return [row[0] for row in rows], points.reshape(len(rows), N_POINTS, 2)


@pytest.mark.parametrize("missing", [False, True])
def test_blocks_match_a_plain_parse(tmp_path: Path, missing: bool) -> None:
    path = tmp_path / "landmarks.csv"
    names, expected = parse_by_hand(write_by_hand(path, 300, missing=missing))
    blocks = list(landmark_blocks(path, allow_missing=missing, block_bytes=TINY_BLOCK))
    assert len(blocks) > 3
    assert [block.start for block in blocks] == list(np.cumsum([0] + [len(b) for b in blocks[:-1]]))
    points = np.concatenate([block.points for block in blocks])
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points, expected)
    assert list(np.concatenate([block.file_names for block in blocks])) == names


def test_read_landmarks_over_several_blocks(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "landmarks.csv"
    names, expected = parse_by_hand(write_by_hand(path, 300, missing=True))
    monkeypatch.setattr(landmarks, "_BLOCK_BYTES", TINY_BLOCK)
    read = read_landmarks(path, allow_missing=True)
    assert read.points.dtype == np.float32
    assert read.points.shape == (300, N_POINTS, 2)
    np.testing.assert_array_equal(read.points, expected)
    assert list(read.file_names) == names
    assert list(read_landmark_names(path, allow_missing=True)) == names


def test_a_bad_value_in_a_later_block_is_named(tmp_path: Path) -> None:
    path = tmp_path / "landmarks.csv"
    lines = write_by_hand(path, 300)
    cells = lines[250].split("\t")
    cells[5] = "12x"
    lines[250] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"line 251: non-numeric value '12x' in column 'Point_M2_X'"
    ):
        list(landmark_blocks(path, block_bytes=TINY_BLOCK))


def test_a_name_repeated_blocks_apart_is_named(tmp_path: Path) -> None:
    path = tmp_path / "landmarks.csv"
    lines = write_by_hand(path, 300)
    lines[280] = lines[3].split("\t")[0] + "\t" + lines[280].split("\t", 1)[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 281: duplicate file name 'img_00002.jpg'"):
        list(landmark_blocks(path, block_bytes=TINY_BLOCK))


@pytest.mark.parametrize("cut", [-3, -1])  # inside the last number; right after a tab
def test_a_last_line_cut_short_is_an_error(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "landmarks.csv"
    lines = write_by_hand(path, 40)
    text = "\n".join(lines) + "\n"
    end = text.rstrip("\n").rfind("\t") + 1 if cut == -1 else len(text) + cut
    path.write_text(text[:end], encoding="utf-8")
    message = r"line 41: the last line has no line end: the file looks truncated"
    with pytest.raises(InputError, match=message):
        read_landmarks(path, allow_missing=True)
    with pytest.raises(InputError, match=message):
        list(landmark_blocks(path, allow_missing=True))


def test_a_header_without_line_end_has_no_data_rows(tmp_path: Path) -> None:
    path = tmp_path / "landmarks.csv"
    path.write_text(write_by_hand(path, 1)[0], encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: no data rows after the header"):
        list(landmark_blocks(path))
