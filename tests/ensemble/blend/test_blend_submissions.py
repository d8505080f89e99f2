"""Blending submission files: numbers, alignment, combiners, rounding and every bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ensemble.blend import blend_submissions
from ensemble.errors import InputError
from ensemble.io.checks import point_columns

HEADER = ",".join(["file_name", *point_columns(2)])


def _write(path, names, values, header=HEADER):
    lines = [header] + [
        ",".join([name, *(repr(float(v)) for v in row)])
        for name, row in zip(names, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _inputs(tmp_path, count=3, rows=6, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"img{i}.jpg" for i in range(rows)]
    values = rng.uniform(0, 500, size=(count, rows, 4))
    paths = [_write(tmp_path / f"s{i}.csv", names, values[i]) for i in range(count)]
    return paths, names, values


def _read(path):
    frame = pd.read_csv(path)
    return frame["file_name"].tolist(), frame.iloc[:, 1:].to_numpy()


def test_weighted_mean_equals_pandas_blend(tmp_path):
    paths, names, values = _inputs(tmp_path)
    weights = np.array([0.5, 0.3, 0.2])
    result = blend_submissions(paths, [5, 3, 2], tmp_path / "out.csv")
    frames = [pd.read_csv(p) for p in paths]
    expected = frames[0].iloc[:, 1:] * weights[0]
    for frame, weight in zip(frames[1:], weights[1:], strict=True):
        expected = expected + frame.iloc[:, 1:] * weight
    got_names, got = _read(tmp_path / "out.csv")
    assert got_names == names
    assert np.array_equal(got, np.round(expected.to_numpy(), 4))
    assert np.allclose(result.values.reshape(len(names), -1), expected.to_numpy())


def test_rows_are_aligned_by_file_name(tmp_path):
    paths, names, values = _inputs(tmp_path, count=2)
    order = [3, 0, 5, 1, 4, 2]
    _write(paths[1], [names[i] for i in order], values[1][order])
    blend_submissions(paths, None, tmp_path / "out.csv")
    got_names, got = _read(tmp_path / "out.csv")
    assert got_names == names
    assert np.allclose(got, np.round((values[0] + values[1]) / 2, 4))


def test_zero_weight_inputs_are_not_read(tmp_path):
    paths, _, values = _inputs(tmp_path, count=2)
    missing = tmp_path / "absent.csv"
    blend_submissions([paths[0], missing, paths[1]], [1, 0, 1], tmp_path / "out.csv")
    assert np.allclose(_read(tmp_path / "out.csv")[1], np.round(values.mean(axis=0), 4))


def test_median_and_trimmed_mean(tmp_path):
    paths, _, values = _inputs(tmp_path, count=5)
    median = blend_submissions(paths, combine="median").values.reshape(6, -1)
    assert np.allclose(median, np.median(values, axis=0))
    trimmed = blend_submissions(paths, combine="trimmed", trim=0.2).values.reshape(6, -1)
    ordered = np.sort(values, axis=0)
    assert np.allclose(trimmed, ordered[1:4].mean(axis=0))  # cut 1 of 5 at each end


def test_rounding_is_half_even_never_truncation(tmp_path):
    names = ["a.jpg"]
    row = np.array([[0.09375, 1.99999, 2.00004, -0.09375]])  # 937.5 -> 938; truncation 937
    path = _write(tmp_path / "s.csv", names, row)
    blend_submissions([path], None, tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text().splitlines()
    assert text[0] == HEADER
    assert [float(v) for v in text[1].split(",")[1:]] == [0.0938, 2.0, 2.0, -0.0938]


def test_quoted_header_is_accepted(tmp_path):
    paths, _, values = _inputs(tmp_path, count=1)
    quoted = ",".join(f'"{c}"' for c in HEADER.split(","))
    lines = paths[0].read_text().splitlines()
    paths[0].write_text("\n".join([quoted, *lines[1:]]) + "\n")
    result = blend_submissions(paths)
    assert np.allclose(result.values.reshape(6, -1), values[0])


def _bad(tmp_path, edit):
    """Two good inputs; `edit` breaks the second one's text; returns (paths, output)."""
    paths, _, _ = _inputs(tmp_path, count=2)
    lines = paths[1].read_text().splitlines()
    paths[1].write_text(edit(lines))
    return paths, tmp_path / "out.csv"


BAD_INPUTS = {
    "nan value": (
        lambda ls: "\n".join([ls[0], ls[1], ls[2].rsplit(",", 1)[0] + ",nan", *ls[3:]]) + "\n",
        r"s1\.csv, line 3: non-finite value in column 'Point_M1_Y'",
    ),
    "non-numeric": (
        lambda ls: (
            "\n".join([ls[0], ls[1].replace(",", ",abc,", 1).rsplit(",", 1)[0], *ls[2:]]) + "\n"
        ),
        r"s1\.csv, line 2: non-numeric value 'abc' in column 'Point_M0_X'",
    ),
    "empty cell": (
        lambda ls: "\n".join([ls[0], *ls[1:4], ls[4].rsplit(",", 1)[0] + ",", *ls[5:]]) + "\n",
        r"s1\.csv, line 5: empty value in column 'Point_M1_Y'",
    ),
    "truncated last row": (
        lambda ls: "\n".join(ls[:-1]) + "\n" + ls[-1][:15],
        r"s1\.csv, line 7: expected 5 columns, found \d \(truncated",
    ),
    "last value cut short": (
        lambda ls: "\n".join(ls)[:-3],
        r"s1\.csv, line 7: the last line has no line end: the file looks truncated",
    ),
    "missing rows": (
        lambda ls: "\n".join(ls[:-2]) + "\n",
        r"s1\.csv: file name 'img4\.jpg' \(line 6 of .*s0\.csv\) is missing",
    ),
    "other file name": (
        lambda ls: "\n".join([*ls[:3], "zzz.jpg" + ls[3][8:], *ls[4:]]) + "\n",
        r"s1\.csv: file name 'img2\.jpg' \(line 4 of .*s0\.csv\) is missing",
    ),
    "extra row": (
        lambda ls: "\n".join([*ls, "new.jpg" + ls[1][8:]]) + "\n",
        r"s1\.csv, line 8: file name 'new\.jpg' is not in .*s0\.csv",
    ),
    "duplicate": (
        lambda ls: "\n".join([*ls[:3], ls[2], *ls[4:]]) + "\n",
        r"s1\.csv, line 4: duplicate file name 'img1\.jpg' \(first seen on line 3\)",
    ),
    "blank line": (
        lambda ls: "\n".join([*ls[:3], "", *ls[3:]]) + "\n",
        r"s1\.csv, line 4: blank line",
    ),
    "other header": (
        lambda ls: (
            "\n".join(
                [",".join(["file_name", *point_columns(1)])]
                + [line.rsplit(",", 2)[0] for line in ls[1:]]
            )
            + "\n"
        ),
        r"s1\.csv, line 1: header has 2 value columns, .*s0\.csv has 4",
    ),
    "wrong header name": (
        lambda ls: "\n".join([ls[0].replace("Point_M1_X", "Point_M1_x"), *ls[1:]]) + "\n",
        r"s1\.csv, line 1: header column 4 is 'Point_M1_x', expected 'Point_M1_X'",
    ),
    "empty file": (lambda ls: "", r"s1\.csv, line 1: file is empty"),
    "header only": (lambda ls: ls[0] + "\n", r"s1\.csv, line 2: no data rows"),
    "empty file name": (
        lambda ls: "\n".join([*ls[:2], ls[2][8:], *ls[3:]]) + "\n",
        r"s1\.csv, line 3: empty file name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, case):
    edit, message = BAD_INPUTS[case]
    paths, output = _bad(tmp_path, edit)
    with pytest.raises(InputError, match=message):
        blend_submissions(paths, None, output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.csv", "s1.csv"]


def test_missing_file_and_output_over_input(tmp_path):
    paths, _, _ = _inputs(tmp_path, count=2)
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        blend_submissions([paths[0], tmp_path / "nope.csv"], None, tmp_path / "out.csv")
    before = paths[1].read_bytes()
    with pytest.raises(InputError, match="it is an input of this command"):
        blend_submissions(paths, None, paths[1])
    assert paths[1].read_bytes() == before
    assert not (tmp_path / "out.csv").exists()


def test_failed_blend_keeps_an_existing_output(tmp_path):
    paths, _, _ = _inputs(tmp_path, count=2)
    output = tmp_path / "out.csv"
    output.write_text("old")
    paths[1].write_text(paths[1].read_text().replace("img3.jpg", "img3.jpg,1"))
    with pytest.raises(InputError, match="line 5: expected 5 columns, found 6"):
        blend_submissions(paths, None, output)
    assert output.read_text() == "old"


# ----------------------------------------------------------------------------------------------
# ragged submissions (Kaggle Facial Keypoints): empty cells pad short rows

RAGGED_HEADER = ",".join(["file_name", *point_columns(3)])
RAGGED_NAMES = [f"img{i}.jpg" for i in range(5)]
RAGGED_PAIRS = [3, 2, 3, 1, 3]  # points asked for in each row; the rest is empty padding


def _ragged_values(seed):
    values = np.random.default_rng(seed).uniform(0, 96, size=(5, 6))
    for row, pairs in enumerate(RAGGED_PAIRS):
        values[row, 2 * pairs :] = np.nan
    return values


def _write_ragged(path, names, values):
    lines = [RAGGED_HEADER] + [
        ",".join([name, *("" if np.isnan(v) else repr(float(v)) for v in row)])
        for name, row in zip(names, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ragged_inputs(tmp_path, count=3):
    values = [_ragged_values(seed) for seed in range(count)]
    paths = [_write_ragged(tmp_path / f"s{i}.csv", RAGGED_NAMES, v) for i, v in enumerate(values)]
    return paths, values


def test_ragged_blend_keeps_empty_cells_and_blends_the_present_ones(tmp_path):
    paths, values = _ragged_inputs(tmp_path)
    order = [2, 4, 0, 3, 1]  # the second input lists its rows in another order
    _write_ragged(paths[1], [RAGGED_NAMES[i] for i in order], values[1][order])
    weights = [0.5, 0.3, 0.2]
    result = blend_submissions(paths, [5, 3, 2], tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == RAGGED_HEADER
    for row, line in enumerate(lines[1:]):
        fields = line.split(",")
        assert fields[0] == RAGGED_NAMES[row]
        for column, field in enumerate(fields[1:]):
            if column >= 2 * RAGGED_PAIRS[row]:
                assert field == ""
                assert np.isnan(result.values.reshape(5, -1)[row, column])
                continue
            expected = 0.0
            for weight, v in zip(weights, values, strict=True):
                expected = expected + weight * v[row, column]
            assert float(field) == round(expected, 4)
    median = blend_submissions(paths, combine="median").values.reshape(5, -1)
    present = ~np.isnan(values[0])
    stack = np.stack(values)
    assert np.allclose(median[present], np.median(stack[:, present], axis=0))
    assert np.isnan(median[~present]).all()


RAGGED_BAD = {
    "extra empty pair": (
        1,
        lambda v: v.__setitem__((0, slice(4, 6)), np.nan),
        r"s1\.csv, line 2: empty value in column 'Point_M2_X' where .*s0\.csv \(line 2\) has "
        r"a value: all submissions must have the same empty cells",
    ),
    "padding filled": (
        1,
        lambda v: v.__setitem__((3, 2), 1.5),
        r"s1\.csv, line 5: value in column 'Point_M1_X' where .*s0\.csv \(line 5\) has an "
        r"empty cell",
    ),
    "half an empty pair": (
        0,
        lambda v: v.__setitem__((2, 5), np.nan),
        r"s0\.csv, line 4: empty value in column 'Point_M2_Y' is not ragged padding \(only "
        r"one of the pair is empty\)",
    ),
    "empty pair before a filled one": (
        0,
        lambda v: v.__setitem__((4, slice(2, 4)), np.nan),
        r"s0\.csv, line 6: empty value in column 'Point_M1_X' is not ragged padding \(a "
        r"later pair of the row is filled\)",
    ),
}


@pytest.mark.parametrize("case", sorted(RAGGED_BAD))
def test_ragged_inputs_with_other_empty_cells_are_rejected(tmp_path, case):
    number, edit, message = RAGGED_BAD[case]
    paths, values = _ragged_inputs(tmp_path, count=2)
    edit(values[number])
    _write_ragged(paths[number], RAGGED_NAMES, values[number])
    with pytest.raises(InputError, match=message):
        blend_submissions(paths, None, tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.csv", "s1.csv"]


def test_ragged_mismatch_names_the_line_of_the_reordered_file(tmp_path):
    paths, values = _ragged_inputs(tmp_path, count=2)
    order = [4, 3, 2, 1, 0]
    values[1][1, 4:6] = 7.0  # img1.jpg fills its padding pair; it is on line 5 of s1.csv
    _write_ragged(paths[1], [RAGGED_NAMES[i] for i in order], values[1][order])
    with pytest.raises(
        InputError,
        match=r"s1\.csv, line 5: value in column 'Point_M2_X' where .*s0\.csv \(line 3\)",
    ):
        blend_submissions(paths, None, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
