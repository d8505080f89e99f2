"""`scores.csv`: one row per submission/run with its validation and leaderboard scores.

Columns: `run`, `submission` (path relative to the file), `val`, `public`, `private`, and
optionally `score` and `weight`; empty cells allowed. A file with only `submission,score` is
valid too. Written by `ens train-all` and `ens score`, read by `ens blend` and `ens analyze`.
Every read-modify-write holds the file's lock (`ensemble.io.locks`): concurrent writers take
turns, so no update is lost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.errors import InputError
from ensemble.io.atomic import atomic_path
from ensemble.io.checks import check_utf8, quoted
from ensemble.io.file_kind import require_file
from ensemble.io.locks import hold

COLUMNS = ["run", "submission", "val", "public", "private"]
NUMERIC = ["val", "public", "private", "score", "weight"]
KNOWN = [*COLUMNS, "score", "weight"]
WAIT_SECONDS = 120.0  # how long a writer waits for another's update of the same file


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read and validate scores.csv; `submission` paths become absolute (relative to the file)."""
    path = Path(path)
    frame = _read_cells(path)
    lines = frame.index.to_numpy()
    if "run" not in frame.columns and "submission" not in frame.columns:
        raise InputError(path, "needs a 'run' or a 'submission' column", 1)
    unknown = [c for c in frame.columns if c not in KNOWN]
    if unknown:
        raise InputError(path, f"unknown column(s) {unknown}; allowed: {KNOWN}", 1)
    for column in NUMERIC:
        if column not in frame.columns:
            frame[column] = np.nan
            continue
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = numbers.isna() & (text != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                path,
                f"non-numeric value {quoted(text.iloc[row])} in column '{column}'",
                int(lines[row]),
            )
        frame[column] = numbers.astype(float)
    for column in ("run", "submission"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].str.strip()
    if (frame["run"] == "").all():
        frame["run"] = [Path(s).stem for s in frame["submission"]]
    frame["submission_path"] = [
        str((path.parent / s).resolve()) if s else "" for s in frame["submission"]
    ]
    return frame[[*KNOWN, "submission_path"]].reset_index(drop=True)


def _read_cells(path: Path) -> pd.DataFrame:
    """The cells of a CSV as strings, indexed by line number; every row as wide as the header."""
    require_file(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        check_utf8(path)
        raise InputError(path, f"not UTF-8 text ({error})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, lines = [], []
    try:
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):  # blank lines are skipped
                rows.append(cells)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise InputError(path, f"cannot parse: {error}", reader.line_num) from None
    if not rows:
        raise InputError(path, "file is empty (expected a header line)", 1)
    header = [cell.strip() for cell in rows[0]]
    repeated = [name for name in header if header.count(name) > 1]
    if repeated:
        raise InputError(path, f"column {quoted(repeated[0])} appears more than once", lines[0])
    for cells, line in zip(rows[1:], lines[1:], strict=True):
        if len(cells) != len(header):
            raise InputError(path, f"{len(cells)} cells where the header has {len(header)}", line)
    return pd.DataFrame(rows[1:], columns=header, index=lines[1:], dtype=str)


def write_scores(path: str | Path, frame: pd.DataFrame) -> None:
    """Write scores.csv atomically with the standard columns first (extra known columns kept)."""
    columns = COLUMNS + [c for c in ("score", "weight") if c in frame and frame[c].notna().any()]
    out = frame.reindex(columns=columns)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, float_format="%.6g")


def update_scores(path: str | Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Read scores.csv (empty when absent), apply `change` and write it back, under its lock."""
    path = Path(path)
    with hold(path, "updating it", wait=WAIT_SECONDS):
        if path.is_file():
            frame = read_scores(path)
        else:
            frame = pd.DataFrame(columns=[*KNOWN, "submission_path"])
        write_scores(path, change(frame))


def upsert_score_row(path: str | Path, row: dict) -> None:
    """Add or replace the row for `row['run']` in scores.csv (created if absent)."""

    def replace_row(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.drop(columns=["submission_path"])
        frame = frame[frame["run"] != row["run"]]
        return pd.concat([frame, pd.DataFrame([row])], ignore_index=True)

    update_scores(path, replace_row)
