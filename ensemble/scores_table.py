"""`scores.csv`: one row per submission/run with its validation and leaderboard scores.

Columns: `run`, `submission` (path relative to the file), `val`, `public`, `private`, and
optionally `score` and `weight`; empty cells allowed. A file with only `submission,score` is
valid too. Written by `ens train-all` and `ens score`, read by `ens blend` and `ens analyze`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.atomic import atomic_path
from ensemble.errors import InputError

COLUMNS = ["run", "submission", "val", "public", "private"]
NUMERIC = ["val", "public", "private", "score", "weight"]
KNOWN = [*COLUMNS, "score", "weight"]


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read and validate scores.csv; `submission` paths become absolute (relative to the file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(path, f"cannot parse: {error}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
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
                path, f"non-numeric value '{text.iloc[row]}' in column '{column}'", row + 2
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
    return frame[[*KNOWN, "submission_path"]]


def write_scores(path: str | Path, frame: pd.DataFrame) -> None:
    """Write scores.csv atomically with the standard columns first (extra known columns kept)."""
    columns = COLUMNS + [c for c in ("score", "weight") if c in frame and frame[c].notna().any()]
    out = frame.reindex(columns=columns)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, float_format="%.6g")


def upsert_score_row(path: str | Path, row: dict) -> None:
    """Add or replace the row for `row['run']` in scores.csv (created if absent)."""
    path = Path(path)
    frame = read_scores(path) if path.is_file() else pd.DataFrame(columns=KNOWN)
    frame = frame.drop(columns=["submission_path"], errors="ignore")
    frame = frame[frame["run"] != row["run"]]
    frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    write_scores(path, frame)
