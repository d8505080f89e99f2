"""Bad input to the readers and to the blend options: a clear message, exit 1 or 2, no writes.

Each failing case checks the exit code, the message (file, line, problem), that no traceback
is printed and that the folder holds exactly the bytes it held before.
"""

from __future__ import annotations

import builtins
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ensemble.io.checks
from ensemble.errors import InputError
from ensemble.io.predictions import load_predictions
from tests.helpers import fails_cleanly, invoke_ens, write_demo_with_baseline

LANDMARKS = "demo/train/landmarks.csv"
TEST_POINTS = "demo/test/test_points.csv"
SUBMISSION_COMMANDS = {
    "score": ["score", "sub.csv", "--data", "demo"],
    "blend": ["blend", "sub.csv", "base.csv", "-o", "out.csv"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A tiny competition (demo/) and its mean-shape submission (base.csv)."""
    root = write_demo_with_baseline(tmp_path_factory.mktemp("template"))
    return root


def _edit_line(path: Path, line: int, edit) -> None:
    """Replace line `line` (1-based) of `path` by `edit(bytes of the line)`."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = edit(lines[line - 1])
    path.write_bytes(b"\n".join(lines))


def _set_cell(path: Path, line: int, column: int, value: bytes, sep: bytes = b",") -> None:
    def edit(text: bytes) -> bytes:
        cells = text.split(sep)
        cells[column] = value
        return sep.join(cells)

    _edit_line(path, line, edit)


def _sub(root: Path) -> Path:
    """sub.csv: a copy of base.csv, to be spoilt."""
    return Path(shutil.copy(root / "base.csv", root / "sub.csv"))


# ----------------------------------------------------------------------------------------------
# not UTF-8


@pytest.mark.parametrize("command", sorted(SUBMISSION_COMMANDS))
def test_a_non_utf8_byte_in_a_submission_names_file_and_line(root, command) -> None:
    _edit_line(_sub(root), 4, lambda text: text[:5] + b"\xff" + text[5:])
    fails_cleanly(root, SUBMISSION_COMMANDS[command], "sub.csv, line 4: not UTF-8 text (byte 0xff")


def test_a_non_utf8_byte_in_test_points_names_file_and_line(root) -> None:
    _edit_line(root / TEST_POINTS, 3, lambda text: text[:3] + b"\xe9" + text[3:])
    fails_cleanly(
        root, ["score", "base.csv", "--data", "demo"], f"{TEST_POINTS}, line 3: not UTF-8 text"
    )


def test_a_non_utf8_byte_in_scores_names_file_and_line(root) -> None:
    (root / "scores.csv").write_bytes(b"submission,score\nbase.csv,1\nba\xffse.csv,2\n")
    fails_cleanly(
        root,
        ["blend", "--weights", "scores.csv", "-o", "out.csv"],
        "scores.csv, line 3: not UTF-8 text (byte 0xff",
    )


def test_a_non_utf8_header_is_line_one(root) -> None:
    _edit_line(root / LANDMARKS, 1, lambda text: b"\xfe" + text)
    fails_cleanly(
        root, ["baseline", "--data", "demo", "-o", "out.csv"], f"{LANDMARKS}, line 1: not UTF-8"
    )


# ----------------------------------------------------------------------------------------------
# unreadable files


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["baseline", "--data", "demo", "-o", "out.csv"], LANDMARKS),
        (["score", "base.csv", "--data", "demo"], "demo/test/landmarks.csv"),
    ],
)
def test_an_unreadable_landmarks_file_is_named(root, monkeypatch, args, path) -> None:
    def refusing_open(file, *rest, **options):
        if Path(file).name == "landmarks.csv":
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *rest, **options)

    monkeypatch.setattr(ensemble.io.checks, "open", refusing_open, raising=False)
    fails_cleanly(root, args, f"{path}: cannot read the file (Permission denied)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_a_chmod_000_landmarks_file_is_named(root) -> None:
    (root / LANDMARKS).chmod(0)
    try:
        fails_cleanly(root, ["baseline", "--data", "demo", "-o", "out.csv"], "Permission denied")
    finally:
        (root / LANDMARKS).chmod(0o644)


# ----------------------------------------------------------------------------------------------
# option ranges


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--combine", "trimmed", "--trim", "0.6"], "'--trim': 0.6 is not in the range 0<=x<0.5"),
        (["--combine", "trimmed", "--trim", "-0.1"], "'--trim': -0.1 is not in the range 0<=x<0.5"),
        (
            ["--combine", "trimmed", "--trim", "nan"],
            "'--trim': nan is not a finite number in the range 0<=x<0.5",
        ),
        (["--power", "nan"], "'--power': nan is not a finite number in the range x>=0"),
        (["--power", "inf"], "'--power': inf is not a finite number in the range x>=0"),
        (["--power", "-1"], "'--power': -1.0 is not in the range x>=0"),
        (["--temperature", "0"], "'--temperature': 0.0 is not in the range x>0"),
        (["--method", "greedy", "--rounds", "0"], "'--rounds': 0 is not in the range x>=1"),
        (["--decimals", "400"], "'--decimals': 400 is not in the range 0<=x<=10"),
        (["--decimals", "308"], "'--decimals': 308 is not in the range 0<=x<=10"),
        (["--decimals", "-1"], "'--decimals': -1 is not in the range 0<=x<=10"),
    ],
)
def test_blend_options_out_of_range_are_usage_errors(root, options, message) -> None:
    fails_cleanly(
        root, ["blend", "base.csv", "base.csv", "-o", "out.csv", *options], message, code=2
    )


def test_rounds_are_checked_before_the_runs_are_read(root) -> None:
    args = ["blend", "--fit", "runs", "--method", "greedy", "--rounds", "0", "-o", "out.csv"]
    fails_cleanly(root, args, "'--rounds': 0 is not in the range x>=1", code=2)


def test_ten_decimals_are_written(root) -> None:
    result = invoke_ens(["blend", "base.csv", "base.csv", "--decimals", "10", "-o", "out.csv"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        pd.read_csv(root / "out.csv").iloc[:, 1:], pd.read_csv(root / "base.csv").iloc[:, 1:]
    )


# ----------------------------------------------------------------------------------------------
# implausible coordinates


@pytest.mark.parametrize("command", sorted(SUBMISSION_COMMANDS))
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"1e300", "value 1e+300 in column 'Point_M1_X' is not a plausible pixel coordinate"),
        (b"-2000000", "value -2e+06 in column 'Point_M1_X' is not a plausible pixel coordinate"),
        (b"inf", "non-finite value in column 'Point_M1_X' (inf)"),
        (b"nan", "non-finite value in column 'Point_M1_X' (nan)"),
    ],
)
def test_an_implausible_submission_value_names_line_and_column(
    root, command, value, problem
) -> None:
    _set_cell(_sub(root), 3, 3, value)
    fails_cleanly(root, SUBMISSION_COMMANDS[command], f"sub.csv, line 3: {problem}")


def test_an_implausible_train_landmark_names_line_and_column(root) -> None:
    _set_cell(root / LANDMARKS, 4, 4, b"1e300", b"\t")
    fails_cleanly(
        root,
        ["baseline", "--data", "demo", "-o", "out.csv"],
        f"{LANDMARKS}, line 4: value 1e+300 in column 'Point_M1_Y' is not a plausible pixel",
    )


def test_a_coordinate_of_a_million_pixels_is_still_read(root) -> None:
    _set_cell(_sub(root), 3, 3, b"-1000000")
    result = invoke_ens(["blend", "sub.csv", "base.csv", "-o", "out.csv"])
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------------------------
# scores.csv and prediction files


def test_a_scores_row_with_extra_cells_is_named(root) -> None:
    (root / "scores.csv").write_text(
        "run,submission,val,public,private\nbase,base.csv,1,2,3\na,base.csv,1,2,3,x.csv,5\n"
    )
    fails_cleanly(
        root,
        ["blend", "--weights", "scores.csv", "-o", "out.csv"],
        "scores.csv, line 3: 7 cells where the header has 5",
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "No data left in file"), (b"PK\x03\x04 not a zip", "File is not a zip file")],
)
def test_a_corrupt_predictions_file_is_named(root, content, reason) -> None:
    (root / "runs" / "a").mkdir(parents=True)
    (root / "runs" / "a" / "val_predictions.npz").write_bytes(content)
    fails_cleanly(
        root,
        ["blend", "--fit", "runs", "--data", "demo", "-o", "out.csv"],
        f"runs/a/val_predictions.npz: not a valid .npz file ({reason})",
    )


def test_a_single_npy_array_is_not_a_predictions_file(tmp_path) -> None:
    path = tmp_path / "val_predictions.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(InputError, match=r"not a valid \.npz file \(a single \.npy array"):
        load_predictions(path)


# ----------------------------------------------------------------------------------------------
# one submission reader for score and blend


@pytest.mark.parametrize("command", sorted(SUBMISSION_COMMANDS))
def test_a_megabyte_file_name_is_quoted_short(root, command) -> None:
    _set_cell(_sub(root), 3, 0, b"x" * 1_000_000)
    output = fails_cleanly(
        root, SUBMISSION_COMMANDS[command], "x" * 60 + "...' (1,000,000 characters)"
    )
    assert len(output) < 1000


@pytest.mark.parametrize("command", sorted(SUBMISSION_COMMANDS))
def test_a_name_with_a_comma_inside_quotes_is_refused(root, command) -> None:
    _set_cell(_sub(root), 2, 0, b'"a,b.jpg"')
    fails_cleanly(
        root,
        SUBMISSION_COMMANDS[command],
        "sub.csv, line 2: file name 'a,b.jpg' holds a comma, a quote or a line end",
    )


def _quote_names(path: Path) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(
        b"\n".join(
            [lines[0], *(b'"' + line.replace(b",", b'",', 1) for line in lines[1:] if line), b""]
        )
    )


def test_score_and_blend_both_read_quoted_names(root) -> None:
    _quote_names(_sub(root))
    assert (root / "sub.csv").read_text().splitlines()[1].startswith('"0')
    plain = invoke_ens(["score", "base.csv", "--data", "demo"])
    quoted = invoke_ens(["score", "sub.csv", "--data", "demo"])
    assert quoted.exit_code == 0, quoted.output
    assert quoted.output.splitlines()[1].split()[1:] == plain.output.splitlines()[1].split()[1:]
    blended = invoke_ens(["blend", "sub.csv", "base.csv", "-o", "out.csv"])
    assert blended.exit_code == 0, blended.output
    assert (root / "out.csv").read_bytes() == (root / "base.csv").read_bytes()


# ----------------------------------------------------------------------------------------------
# UTF-8 byte-order marks are skipped


def _add_bom(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def test_files_starting_with_a_bom_are_read(root) -> None:
    for name in (LANDMARKS, TEST_POINTS, "demo/test/landmarks.csv"):
        _add_bom(root / name)
    baseline = invoke_ens(["baseline", "--data", "demo", "-o", "again.csv"])
    assert baseline.exit_code == 0, baseline.output
    assert (root / "again.csv").read_bytes() == (root / "base.csv").read_bytes()
    _add_bom(_sub(root))
    scored = invoke_ens(["score", "sub.csv", "--data", "demo"])
    assert scored.exit_code == 0, scored.output
    (root / "scores.csv").write_text("submission,score\nsub.csv,1\nbase.csv,2\n")
    _add_bom(root / "scores.csv")
    blended = invoke_ens(["blend", "--weights", "scores.csv", "-o", "out.csv"])
    assert blended.exit_code == 0, blended.output
    assert (root / "out.csv").read_bytes() == (root / "base.csv").read_bytes()


def test_a_large_power_gives_finite_weights(root) -> None:
    (root / "scores.csv").write_text("submission,score\nbase.csv,0.5\nsub.csv,1\n")
    _sub(root)
    result = invoke_ens(["blend", "--weights", "scores.csv", "--power", "2000", "-o", "out.csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split() == ["base", "0.5", "1.0000"]
