"""Run folders (`ens train-all`'s RUNS/<run>/): every path in one, and its reads and writes."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ensemble.errors import TOO_DEEP, TOO_MANY_DIGITS, InputError
from ensemble.io.atomic import atomic_open
from ensemble.io.predictions import Predictions, load_predictions

VAL_PREDICTIONS = "val_predictions.npz"
TEST_PREDICTIONS = "test_predictions.npz"
SUBMISSION = "submission.csv"
SUMMARY = "summary.json"
CONFIG = "config.toml"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"  # every epoch (and every checkpoint_every steps): what resumes
BEST_CHECKPOINT = "best.pt"  # the best val score so far: what predicts
ERROR_LOG = "error.txt"  # a failed run's traceback
SCORES = "scores.csv"  # RUNS/scores.csv: one row per run
MAX_RUN_NAME = 100  # characters: a folder name on any file system, with room for temp suffixes
RUN_NAME_RULE = (
    f"a run name is 1 to {MAX_RUN_NAME} letters, digits, '.', '_' or '-', not starting with '.'"
)
_RUN_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9._-]*")


def run_name_problem(name: str) -> str | None:
    """Why `name` cannot name a run folder ('is longer than 100 characters; ...'), or None."""
    if not name:
        return f"is empty; {RUN_NAME_RULE}"
    if len(name) > MAX_RUN_NAME:
        return f"is longer than {MAX_RUN_NAME} characters; {RUN_NAME_RULE}"
    bad = _RUN_NAME_CHARACTERS.match(name).end()
    if bad < len(name):
        return f"holds {name[bad]!r}; {RUN_NAME_RULE}"
    if name.startswith("."):
        return f"starts with '.'; {RUN_NAME_RULE}"
    return None


@dataclass(frozen=True)
class RunFolder:
    """One finished (or partial) run folder."""

    name: str
    path: Path

    @classmethod
    def at(cls, path: str | Path) -> RunFolder:
        """The run folder at `path` (named after its last component)."""
        return cls(Path(path).name, Path(path))

    @property
    def checkpoints(self) -> Path:
        """The checkpoints/ folder."""
        return self.path / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """checkpoints/last.pt: the state a resume or a rollback continues from."""
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        """checkpoints/best.pt: the weights of the best val score so far."""
        return self.checkpoints / BEST_CHECKPOINT

    @property
    def val_predictions_path(self) -> Path:
        """Path of the validation predictions."""
        return self.path / VAL_PREDICTIONS

    @property
    def test_predictions_path(self) -> Path:
        """Path of the test predictions."""
        return self.path / TEST_PREDICTIONS

    @property
    def submission_path(self) -> Path:
        """Path of the ready submission."""
        return self.path / SUBMISSION

    @property
    def config_path(self) -> Path:
        """config.toml: the data folder and the resolved configuration."""
        return self.path / CONFIG

    @property
    def summary_path(self) -> Path:
        """summary.json: written last, so its presence means the run finished."""
        return self.path / SUMMARY

    @property
    def metrics_path(self) -> Path:
        """metrics.csv: one row per epoch."""
        return self.path / METRICS

    @property
    def error_log(self) -> Path:
        """error.txt: the traceback of a failed run."""
        return self.path / ERROR_LOG

    @property
    def finished(self) -> bool:
        """True when summary.json exists."""
        return self.summary_path.is_file()

    def write_config(self, text: str) -> None:
        """Write config.toml atomically."""
        with atomic_open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write(text)

    def update_summary(self, values: dict) -> None:
        """Merge `values` into summary.json (written atomically)."""
        summary = self.summary()
        summary.update(values)
        with atomic_open(self.summary_path, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)

    def mark_unfinished(self) -> None:
        """Remove summary.json: the run is to be (re)trained."""
        self.summary_path.unlink(missing_ok=True)

    def write_error(self, text: str) -> None:
        """Write error.txt atomically."""
        with atomic_open(self.error_log, "w", encoding="utf-8") as handle:
            handle.write(text)

    def record_score(self, score: float) -> None:
        """Add or replace this run's row of RUNS/scores.csv (the folder above the run)."""
        from ensemble.io.scores_table import upsert_score_row

        upsert_score_row(
            self.path.parent / SCORES,
            {"run": self.name, "submission": f"{self.name}/{SUBMISSION}", "val": score},
        )

    def val_predictions(self) -> Predictions:
        """Load the validation predictions."""
        return load_predictions(self.val_predictions_path)

    def test_predictions(self) -> Predictions:
        """Load the test predictions."""
        return load_predictions(self.test_predictions_path)

    def summary(self) -> dict:
        """summary.json as a dict ({} when absent); InputError when it is not valid JSON."""
        path = self.summary_path
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
            raise InputError(path, f"not valid JSON ({error})") from None

    def config(self) -> dict:
        """config.toml as a dict ({} when absent); InputError when it is not valid TOML."""
        path = self.config_path
        if not path.is_file():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise InputError(path, f"not UTF-8 text: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(path, f"not valid TOML: {error}") from None
        except RecursionError:
            raise InputError(path, TOO_DEEP) from None
        except ValueError:  # an integer over Python's digit limit
            raise InputError(path, TOO_MANY_DIGITS) from None


def find_runs(runs_dir: str | Path, require: str = VAL_PREDICTIONS) -> list[RunFolder]:
    """Run folders under `runs_dir` (sorted by name) that hold the file `require`."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise InputError(root, "runs folder not found")
    runs = [
        RunFolder(child.name, child)
        for child in sorted(root.iterdir())
        if child.is_dir() and (child / require).is_file()
    ]
    if not runs:
        raise InputError(root, f"no run folder with {require} inside")
    return runs


def data_dir_of(runs: list[RunFolder]) -> Path | None:
    """The data folder recorded in the runs' config.toml (`data` key; an imported run's in its
    summary.json), if any."""
    for run in runs:
        data = run.config().get("data") or run.summary().get("data")
        if data:
            return Path(data)
    return None
