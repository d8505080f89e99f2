"""The errors a command reports without a traceback: bad input, and a run that cannot finish."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: names the file, the line (1-based, header = 1) and the problem."""

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {problem}")


class TrainingError(RuntimeError):
    """A training run that cannot finish: names the run and why."""

    def __init__(self, run: str, reason: str) -> None:
        self.run, self.reason = run, reason
        super().__init__(f"{run}: {reason}")
