"""Score-based weighting schemes for blending submissions listed in scores.csv."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.blend.names import SCHEMES, SCORE_COLUMNS
from ensemble.errors import InputError
from ensemble.io.scores_table import read_scores


def scheme_weights(
    scores: np.ndarray | None,
    scheme: str = "inverse",
    *,
    power: float = 1.0,
    temperature: float | None = None,
    higher_is_better: bool = False,
    manual: np.ndarray | None = None,
) -> np.ndarray:
    """Weights summing to one for one scheme (`scores` may be NaN for equal and manual).

    equal: all the same; inverse: score**-power (score**power when higher is better);
    softmax: exp(-score / T) (exp(score / T) when higher is better), T = `temperature` or the
    standard deviation of the scores; rank: proportional to rank, worst = 1, best = R (ties
    share their mean rank); manual: the given `manual` weights, normalised.
    """
    if scheme == "manual":
        if manual is None:
            raise ValueError("the manual scheme needs weights")
        raw = np.asarray(manual, dtype=np.float64)
        if not np.isfinite(raw).all() or (raw < 0).any() or raw.sum() <= 0:
            raise ValueError("manual weights must be finite, non-negative, with a positive sum")
        return raw / raw.sum()
    if scores is None or len(scores) == 0:
        raise ValueError("no submission to weight")
    if scheme == "equal":
        return np.full(len(scores), 1.0 / len(scores))
    values = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"the {scheme} scheme needs a finite score for every submission")
    sign = 1.0 if higher_is_better else -1.0
    if scheme == "inverse":
        if (values <= 0).any():
            raise ValueError("the inverse scheme needs positive scores")
        logs = (power if higher_is_better else -power) * np.log(values)
        raw = np.exp(logs - logs.max())  # in logs: no overflow for large powers
    elif scheme == "softmax":
        spread = float(np.std(values)) if temperature is None else float(temperature)
        if temperature is not None and temperature <= 0:
            raise ValueError("temperature must be positive")
        logits = sign * values / (spread if spread > 0 else 1.0)
        raw = np.exp(logits - logits.max())
    elif scheme == "rank":
        from scipy.stats import rankdata  # imported here: scipy.stats is slow to import

        raw = rankdata(sign * values, method="average")
    else:
        raise ValueError(f"unknown scheme '{scheme}'; choose from {SCHEMES}")
    return raw / raw.sum()


def top_k(scores: np.ndarray, k: int, higher_is_better: bool = False) -> np.ndarray:
    """Boolean mask of the `k` best scores (ties keep the earlier row)."""
    if k < 1:
        raise ValueError("top K needs K >= 1")
    values = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-values if higher_is_better else values, kind="stable")
    mask = np.zeros(len(values), dtype=bool)
    mask[order[:k]] = True
    return mask


@dataclass(frozen=True)
class WeightTable:
    """Submissions chosen from scores.csv with their scores and final weights."""

    names: list[str]
    paths: list[Path]
    scores: np.ndarray
    weights: np.ndarray
    score_column: str | None
    scheme: str

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (submission, path, score, weight)."""
        return pd.DataFrame(
            {
                "submission": self.names,
                "path": [str(p) for p in self.paths],
                "score": self.scores,
                "weight": self.weights,
            }
        )


def choose_score_column(
    frame: pd.DataFrame, by: str | None, path: Path, required: bool
) -> str | None:
    """The score column: `by`, else the first of score/public/val filled for every row."""
    if by is not None:
        if by not in frame.columns or by == "submission_path":
            raise InputError(path, f"no column '{by}' to weight by", 1)
        missing = np.flatnonzero(frame[by].isna().to_numpy())
        if required and len(missing):
            row = int(frame.index[missing[0]])
            raise InputError(path, f"empty '{by}' for '{frame['run'].iloc[missing[0]]}'", row + 2)
        return by
    for column in SCORE_COLUMNS:
        if frame[column].notna().all():
            return column
    if required:
        raise InputError(
            path,
            "no score column (score, public, val) is filled for every chosen submission; "
            "fill one or pick one with --by",
        )
    return None


def _select(frame: pd.DataFrame, path: Path, submissions: Sequence[str | Path] | None):
    """Rows of `frame` for the given submission paths (all rows when None), in that order."""
    if not submissions:
        chosen = frame
    else:
        position = {p: row for row, p in enumerate(frame["submission_path"]) if p}
        rows = []
        for item in submissions:
            resolved = str(Path(item).resolve())
            if resolved not in position:
                raise InputError(path, f"submission {item} is not listed in this file")
            rows.append(position[resolved])
        chosen = frame.iloc[rows]
    empty = np.flatnonzero((chosen["submission_path"] == "").to_numpy())
    if len(empty):
        row = int(chosen.index[empty[0]])
        raise InputError(path, f"run '{chosen['run'].iloc[empty[0]]}' has no submission", row + 2)
    return chosen


def weights_from_scores(
    scores_path: str | Path,
    submissions: Sequence[str | Path] | None = None,
    scheme: str = "inverse",
    *,
    by: str | None = None,
    power: float = 1.0,
    temperature: float | None = None,
    top: int | None = None,
    higher_is_better: bool = False,
) -> WeightTable:
    """Read scores.csv and weight its submissions (or the given subset) with one scheme.

    `top` keeps only the K best-scored submissions (weight 0 for the others) before the
    scheme runs on the kept ones.
    """
    path = Path(scores_path)
    frame = _select(read_scores(path), path, submissions)
    needs_scores = scheme in ("inverse", "softmax", "rank") or top is not None
    column = choose_score_column(frame, by, path, needs_scores)
    scores = frame[column].to_numpy(np.float64) if column else np.full(len(frame), np.nan)
    manual = None
    if scheme == "manual":
        missing = np.flatnonzero(frame["weight"].isna().to_numpy())
        if len(missing):
            row = int(frame.index[missing[0]])
            raise InputError(path, "the manual scheme needs a 'weight' for every row", row + 2)
        manual = frame["weight"].to_numpy(np.float64)
    keep = top_k(scores, top, higher_is_better) if top is not None else np.ones(len(frame), bool)
    weights = np.zeros(len(frame))
    try:
        weights[keep] = scheme_weights(
            scores[keep],
            scheme,
            power=power,
            temperature=temperature,
            higher_is_better=higher_is_better,
            manual=None if manual is None else manual[keep],
        )
    except ValueError as error:
        raise InputError(path, f"cannot weight by '{column}': {error}") from None
    return WeightTable(
        names=frame["run"].tolist(),
        paths=[Path(p) for p in frame["submission_path"]],
        scores=scores,
        weights=weights,
        score_column=column,
        scheme=scheme,
    )
