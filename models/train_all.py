"""`ens train-all`: every [[run]] of a config, one after another or K at a time, sharing caches."""

from __future__ import annotations

import dataclasses
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from joblib import Parallel, delayed
from tqdm import tqdm

from ensemble.errors import InputError, TrainingError
from ensemble.io.run_folder import RunFolder
from models import distributed
from models.config import RunConfig, load_config, run_from_dict
from models.data import RunData
from models.folds import has_checkpoint
from models.registry import available_architectures
from models.train import load_shared_data, train_run


def load_runs(config_path: str | Path) -> list[RunConfig]:
    """The validated runs of a train-all config."""
    return load_config(config_path, available_architectures())


def resume_target(run_dir: Path, data_dir: Path | None = None) -> tuple[RunConfig, Path, Path]:
    """(config, data folder, run folder) of a run folder to resume, from its config.toml."""
    values = RunFolder.at(run_dir).config()
    if not values:
        raise InputError(RunFolder.at(run_dir).config_path, "run configuration not found")
    config = run_from_dict(values)
    if not has_checkpoint(run_dir, config.folds):
        raise InputError(RunFolder.at(run_dir).last_checkpoint, "no checkpoint to resume from")
    return config, Path(data_dir or values.get("data", "")), run_dir


class UnknownRun(LookupError):
    """A --run name that the config does not define."""


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run: 'trained', 'finished before' or 'failed' (with the reason)."""

    run: str
    status: str
    val_score: float = math.nan
    reason: str = ""  # why it failed, or the warnings of a run that ended early
    summary: dict | None = None

    @property
    def failed(self) -> bool:
        """True when the run did not finish."""
        return self.status == "failed"


def train_all(
    config_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    cache_root: str | Path | None = None,
    only: tuple[str, ...] = (),
    progress: bool = True,
    resume: bool = False,
    jobs: int = 1,
    checkpoint_every: int | None = None,
) -> list[RunOutcome]:
    """Train every run (skipping finished ones); one outcome per run, in config order.

    A run that fails (bad weights file, divergence with nothing to end on, an exception in its
    data or model, out of memory) is reported and the next runs go on. `resume` continues runs
    that have checkpoints/last.pt; `jobs` > 1 trains that many runs at once, one device each;
    `checkpoint_every` overrides the config's key for every run. Under torchrun the runs go
    one after another, each over all the processes, and every rank agrees on each run's fate.
    """
    runs = load_runs(config_path)
    if only:
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown:
            raise UnknownRun(f"--run {unknown[0]} is not in {config_path}")
        runs = [r for r in runs if r.name in only]
    if checkpoint_every is not None:
        runs = [dataclasses.replace(r, checkpoint_every=checkpoint_every) for r in runs]
    out_dir = Path(out_dir)
    outcomes, todo = {}, []
    for config in runs:
        run_dir = out_dir / config.name
        if RunFolder.at(run_dir).finished:
            if distributed.is_main():
                where = RunFolder.at(run_dir).summary_path
                tqdm.write(f"{config.name}: finished already ({where}), skipped")
            outcomes[config.name] = finished_before(run_dir)
            continue
        todo.append((config, resume and has_checkpoint(run_dir, config.folds)))
    datasets = shared_datasets([config for config, _ in todo], Path(data_dir), cache_root, progress)
    if jobs > 1 and not distributed.active():
        trained = train_parallel(todo, data_dir, out_dir, cache_root, progress, jobs, datasets)
    else:
        trained = train_in_turn(todo, data_dir, out_dir, cache_root, progress, datasets)
    outcomes.update({outcome.run: outcome for outcome in trained})
    return [outcomes[config.name] for config in runs]


def finished_before(run_dir: Path) -> RunOutcome:
    """The outcome of a run that a previous command finished."""
    summary = RunFolder.at(run_dir).summary()
    return RunOutcome(
        run_dir.name,
        "finished before",
        summary.get("val_score", math.nan),
        "; ".join(summary.get("warnings", [])),
        summary,
    )


def shared_datasets(
    configs: list[RunConfig], data_dir: Path, cache_root: str | Path | None, progress: bool
) -> dict[int, RunData | str]:
    """One RunData per crop size, shared by the runs; a failure to load is kept as its reason."""
    datasets: dict[int, RunData | str] = {}
    for config in configs:
        if config.crop_size in datasets:
            continue
        try:
            datasets[config.crop_size] = load_shared_data(config, data_dir, cache_root, progress)
        except Exception as error:  # every run of this crop size fails with this reason
            datasets[config.crop_size] = failure_reason(error)
    return datasets


def failure_reason(error: BaseException) -> str:
    """One line that says why a run failed: the message of input and divergence errors, else
    the exception type and the first line of its message (at most 300 characters)."""
    if isinstance(error, TrainingError):
        text = error.reason  # the run is named beside it
    elif isinstance(error, InputError):
        text = str(error)
    else:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def train_in_turn(
    todo: list[tuple[RunConfig, bool]],
    data_dir: str | Path,
    out_dir: Path,
    cache_root: str | Path | None,
    progress: bool,
    datasets: dict[int, RunData | str] | None = None,
    slot: tuple[int, str, int] | None = None,
) -> list[RunOutcome]:
    """Train runs one after another; the outcomes of those this process reports.

    Alone (`slot` None) each run uses its config's device, shares `datasets` (by crop size)
    and records its score; as parallel slot (index, device, threads) a worker trains on the
    slot's device, on its progress line, and leaves scores.csv to `train_parallel`.
    A failing run is reported and written to its error.txt, and the next run goes on.
    """
    outcomes = []
    for config, resumed in todo:
        run_dir = out_dir / config.name
        data = (datasets or {}).get(config.crop_size)
        summary, reason, trace = None, data if isinstance(data, str) else "", ""
        if not reason:
            try:
                summary = train_run(
                    config,
                    data_dir,
                    run_dir,
                    cache_root,
                    progress,
                    data,
                    resume=resumed,
                    device_name=None if slot is None else run_device(config, slot[1]),
                    threads=None if slot is None else slot[2],
                    record=slot is None,
                    position=None if slot is None else slot[0],
                )
            except Exception as error:  # one failing run stays one failure
                reason, trace = failure_reason(error), traceback.format_exc()
        reason = agreed_reason(reason)
        if distributed.is_main():
            outcome = record_outcome(run_dir, summary, reason, trace, resumed)
            outcomes.append(outcome)
    return outcomes


def agreed_reason(reason: str) -> str:
    """Every rank's verdict on a run, made one: the first rank's failure, else ''."""
    return next((r for r in distributed.gather(reason) if r), "")


def record_outcome(
    run_dir: Path, summary: dict | None, reason: str, trace: str, resumed: bool
) -> RunOutcome:
    """Report one run (a line on the terminal, error.txt for a failure) and return its outcome."""
    folder = RunFolder.at(run_dir)
    log = folder.error_log
    if reason:
        folder.mark_unfinished()  # another rank failed: not finished
        if run_dir.is_dir():
            folder.write_error(trace or reason + "\n")
        where = f" (details in {log})" if log.is_file() else ""
        tqdm.write(f"{run_dir.name}: FAILED: {reason}{where}; going on with the next run")
        return RunOutcome(run_dir.name, "failed", reason=reason)
    log.unlink(missing_ok=True)
    report(summary, resumed)
    warnings = "; ".join(summary.get("warnings", []))
    return RunOutcome(run_dir.name, "trained", summary["val_score"], warnings, summary)


def report(summary: dict, resumed: bool) -> None:
    """One line per finished run."""
    notes = [", resumed" if resumed else ""]
    if summary["rollbacks"]:
        notes.append(f", {len(summary['rollbacks'])} rollback(s)")
    if summary["spikes"]:
        notes.append(f", {len(summary['spikes'])} spike(s) skipped")
    if summary["warnings"]:
        notes.append(", ended early on its best checkpoint")
    tqdm.write(
        f"{summary['run']}: val score {summary['val_score']:.3f}, "
        f"{summary['total_seconds']:.0f} s{''.join(notes)}"
    )


def job_devices(jobs: int) -> list[tuple[str, int]]:
    """(device, CPU threads) of each parallel slot: one GPU each when there are GPUs.

    The threads are the slot's share of the cores, used by runs whose config says 'cpu'.
    """
    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return [(f"cuda:{i % gpus}" if gpus else "cpu", threads) for i in range(jobs)]


def run_device(config: RunConfig, slot_device: str) -> str:
    """The device a run trains on in a slot: the slot's, unless the config asks for the CPU."""
    return "cpu" if config.device == "cpu" else slot_device


def train_parallel(
    todo: list[tuple[RunConfig, bool]],
    data_dir: str | Path,
    out_dir: Path,
    cache_root: str | Path | None,
    progress: bool,
    jobs: int,
    datasets: dict[int, RunData | str],
) -> list[RunOutcome]:
    """Train the runs `jobs` at a time in worker processes (joblib), one device per slot.

    Slot i trains runs i, i + jobs, ... one after another on its device, with progress line i.
    Runs whose data failed to load fail here; a worker that dies fails the runs it had left.
    scores.csv is written here, from the summaries of the runs that finished.
    """
    outcomes = [
        record_outcome(out_dir / config.name, None, datasets[config.crop_size], "", False)
        for config, _ in todo
        if isinstance(datasets[config.crop_size], str)
    ]
    todo = [(c, r) for c, r in todo if not isinstance(datasets[c.crop_size], str)]
    jobs = min(jobs, len(todo))
    devices = job_devices(jobs)
    tasks = [
        delayed(train_in_turn)(
            todo[slot::jobs], data_dir, out_dir, cache_root, progress, slot=(slot, *devices[slot])
        )
        for slot in range(jobs)
    ]
    try:
        for done in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            outcomes += done
    except Exception as error:  # a worker process died (killed, out of memory, a crash)
        reported = {outcome.run for outcome in outcomes}
        reason = f"worker process stopped: {failure_reason(error)}"
        for config, _ in todo:
            run_dir = out_dir / config.name
            if config.name in reported:
                continue
            if RunFolder.at(run_dir).finished:  # it ended before its worker did
                summary = RunFolder.at(run_dir).summary()
                outcomes.append(record_outcome(run_dir, summary, "", "", False))
            else:
                outcomes.append(record_outcome(run_dir, None, reason, "", False))
    finally:
        for config, _ in todo:
            folder = RunFolder.at(out_dir / config.name)
            if folder.finished:
                folder.record_score(folder.summary()["val_score"])
    return outcomes
