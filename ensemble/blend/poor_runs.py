"""Poor runs among a blend's inputs (`ensemble.competition.health`), and what they cost it.

A run's health is the one `ens train-all` recorded in its summary.json; a run without one (an
older run folder) is judged here against the other inputs. The cost is measured on validation:
the blend's score with the poor runs and without them (their weights left out and the others
renormalised, or the fit redone without them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ensemble.competition.health import Health, run_health
from ensemble.io.run_folder import RunFolder


@dataclass(frozen=True)
class PoorRuns:
    """The poor runs of a blend and its validation score with and without them."""

    health: dict[str, Health]  # the poor runs' verdicts, by name
    weights: dict[str, float]  # their (mean) weight in the blend
    score_with: float
    score_without: float | None  # None when every input is poor

    def lines(self, fitted: bool) -> list[str]:
        """What `ens blend` prints: each poor run and why, then what they cost."""
        out = [
            f"poor run: {name} ({verdict.reason}); weight {self.weights[name]:.4f}"
            for name, verdict in self.health.items()
        ]
        if self.score_without is None:
            return [*out, "every input is poor: train them again (ens train-all, restarts)"]
        names = ", ".join(self.health)
        if all(self.weights[name] < 1e-6 for name in self.health):
            return [*out, f"the fit gives {names} no weight: the blend is the same without"]
        change = 100 * (self.score_with - self.score_without) / self.score_without
        how = "the fit redone" if fitted else "the other weights renormalised"
        subject = "it" if len(self.health) == 1 else "they"
        if abs(change) < 0.005:
            verdict = "change nothing" if subject == "they" else "changes nothing"
        elif change > 0:
            verdict = f"{'cost' if subject == 'they' else 'costs'} {change:.2f}%"
        else:
            verdict = f"{'gain' if subject == 'they' else 'gains'} {-change:.2f}%"
        line = (
            f"on validation the blend scores {self.score_with:.6g} with {names} and "
            f"{self.score_without:.6g} without ({how}): {subject} {verdict}"
        )
        if fitted and change < -0.005:
            line += ", in-sample (a fit never loses on the images it is fitted on)"
        return [*out, line]


def poor_among(runs: list[RunFolder]) -> dict[str, Health]:
    """The poor runs among `runs`, by name (empty when every run is ok)."""
    return {name: h for name, h in run_health(runs).items() if h.poor}
