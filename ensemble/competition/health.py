"""A run's health: did it learn clearly more than the mean shape, and as much as its siblings?

A run is `poor` when either rule holds (each is stated in the reason it gets):

- its val score is not under POOR_BASELINE_SHARE (half) of the mean-shape baseline's on the
  same validation images: it learned too little to be worth blending (on real photos a good
  run is 2-3x below the mean shape, a run that went wrong is near it);
- its val score is over POOR_SIBLING_FACTOR (twice) the median val score of its siblings, the
  other runs of the same train-all: it went wrong where the others did not.

Otherwise it is `ok`. `ens train-all` records the verdict in summary.json (`health`), trains a
poor run again with the next seed (`restarts`) and keeps the better attempt; the closing table,
the report and the blends name a run that stays poor.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from ensemble.io.run_folder import RunFolder

POOR_BASELINE_SHARE = 0.5
POOR_SIBLING_FACTOR = 2.0
RULE = (
    f"poor when the val score is not under {POOR_BASELINE_SHARE:g} x the mean-shape baseline's, "
    f"or is over {POOR_SIBLING_FACTOR:g} x the median of the other runs' val scores"
)


@dataclass(frozen=True)
class Health:
    """The verdict on one run: `status` "ok" or "poor", and why."""

    status: str
    reason: str
    rule: str = RULE

    @property
    def poor(self) -> bool:
        """True for a poor run."""
        return self.status == "poor"

    def as_dict(self) -> dict:
        """summary.json's `health` entry."""
        return asdict(self)


def judge(val_score: float, baseline: float | None, siblings: list[float]) -> Health:
    """The health of a run with `val_score`, its mean-shape `baseline` on the same images
    (None: unknown) and its siblings' val scores (non-finite ones left out)."""
    reasons = []
    known = baseline is not None and math.isfinite(baseline)
    if known and not val_score < POOR_BASELINE_SHARE * baseline:
        reasons.append(
            f"val score {val_score:.4g} is not under {POOR_BASELINE_SHARE:g} x the "
            f"mean-shape baseline's {baseline:.4g}"
        )
    others = [s for s in siblings if math.isfinite(s)]
    if others:
        median = statistics.median(others)
        if val_score > POOR_SIBLING_FACTOR * median:
            reasons.append(
                f"val score {val_score:.4g} is {val_score / median:.2f}x the median of the other "
                f"runs ({median:.4g})"
            )
    if reasons:
        return Health("poor", "; ".join(reasons))
    if known and val_score > 0:
        return Health("ok", f"{baseline / val_score:.1f}x below the mean-shape baseline")
    return Health("ok", "")


def judge_runs(summaries: dict[str, dict]) -> dict[str, Health]:
    """The health of every run of one train-all, by name, from their summaries (`val_score`,
    `baseline_val_score`); a run's siblings are all the others."""
    scores = {name: float(s.get("val_score", math.nan)) for name, s in summaries.items()}
    return {
        name: judge(
            scores[name],
            summary.get("baseline_val_score"),
            [score for other, score in scores.items() if other != name],
        )
        for name, summary in summaries.items()
    }


def run_health(runs: list[RunFolder]) -> dict[str, Health]:
    """Each run's health: recorded in its summary.json, else judged against the other runs."""
    summaries = {run.name: run.summary() for run in runs}
    judged = judge_runs({n: s for n, s in summaries.items() if "val_score" in s})
    out = {}
    for name, summary in summaries.items():
        recorded = summary.get("health")
        if recorded:
            out[name] = Health(recorded["status"], recorded.get("reason", ""))
        elif name in judged:
            out[name] = judged[name]
    return out
