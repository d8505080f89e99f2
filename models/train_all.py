"""`ens train-all`: every [[run]] of a config, one after another or K at a time, sharing caches."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

from joblib import delayed
from tqdm import tqdm

from ensemble.competition.health import Health, judge_runs
from ensemble.errors import InputError, TrainingError, full_disk
from ensemble.io.processes import process_pool
from ensemble.io.run_folder import SCORES, RunFolder
from models import distributed
from models.config import RunConfig, load_config, run_from_dict
from models.data import RunData
from models.folds import has_checkpoint
from models.registry import available_architectures
from models.run_locks import lock_runs
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


RESTARTS = ".restarts"  # RUNS/.restarts/: where a poor run's next attempt trains
DISCARDED = "discarded"  # RUN/discarded/seed<s>/: an attempt that lost (no checkpoints)


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run: 'trained', 'finished before' or 'failed' (with the reason),
    and its health once every run is done."""

    run: str
    status: str
    val_score: float = math.nan
    reason: str = ""  # why it failed, or the warnings of a run that ended early
    summary: dict | None = None
    health: Health | None = None

    @property
    def failed(self) -> bool:
        """True when the run did not finish."""
        return self.status == "failed"

    @property
    def poor(self) -> bool:
        """True when the run finished but is judged poor (models.health)."""
        return self.health is not None and self.health.poor


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
    The run folders are locked for the command (LockHeld when another process writes one).
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
    with lock_runs([out_dir / config.name for config in runs], "training"):
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
        datasets = shared_datasets(
            [config for config, _ in todo], Path(data_dir), cache_root, progress
        )
        if jobs > 1 and not distributed.active():
            trained = train_parallel(todo, data_dir, out_dir, cache_root, progress, jobs, datasets)
        else:
            trained = train_in_turn(todo, data_dir, out_dir, cache_root, progress, datasets)
        outcomes.update({outcome.run: outcome for outcome in trained})
        train = (data_dir, out_dir, cache_root, progress, jobs, datasets)
        outcomes = restart_poor_runs(runs, outcomes, *train)
        return [outcomes[config.name] for config in runs]


def restart_poor_runs(
    runs: list[RunConfig],
    outcomes: dict[str, RunOutcome],
    data_dir: str | Path,
    out_dir: Path,
    cache_root: str | Path | None,
    progress: bool,
    jobs: int,
    datasets: dict[int, RunData | str],
) -> dict[str, RunOutcome]:
    """Judge every finished run (ensemble.competition.health); train each poor run again with
    the next seed, up to its `restarts`, and keep the better attempt. Every summary gets its
    `health`.

    A restart trains in RUNS/.restarts/<run>/; the attempt that loses goes to
    RUN/discarded/seed<s>/ without its checkpoints, and summary.json lists every `attempts`.
    """
    configs = {config.name: config for config in runs}
    staging = out_dir / RESTARTS
    for _ in range(max(config.restarts for config in runs)):
        health = distributed.broadcast(judge_outcomes(outcomes) if distributed.is_main() else None)
        todo = [
            (next_attempt(configs[name], outcomes[name].summary), False)
            for name, verdict in health.items()
            if verdict.poor and attempts_left(configs[name], outcomes[name].summary)
        ]
        if not todo:
            break
        if distributed.is_main():
            clear_staging(staging, todo)  # a killed command's leftovers
            for config, _ in todo:
                tqdm.write(
                    f"{config.name}: poor ({health[config.name].reason}); "
                    f"training it again with seed {config.seed}"
                )
        distributed.barrier()
        train = (data_dir, staging, cache_root, progress)
        if jobs > 1 and not distributed.active():
            retrained = train_parallel(todo, *train, jobs, datasets)
        else:
            retrained = train_in_turn(todo, *train, datasets)
        if distributed.is_main():
            for config, _ in todo:
                outcome = next(o for o in retrained if o.run == config.name)
                outcomes[config.name] = keep_better(out_dir, config, health[config.name], outcome)
            clear_staging(staging, todo)
        distributed.barrier()
    if distributed.is_main():
        for name, verdict in judge_outcomes(outcomes).items():
            folder = RunFolder.at(out_dir / name)
            if folder.summary().get("health") != verdict.as_dict():  # else leave it untouched
                folder.update_summary({"health": verdict.as_dict()})
            outcomes[name] = dataclasses.replace(outcomes[name], health=verdict)
    return outcomes


def clear_staging(staging: Path, todo: list[tuple[RunConfig, bool]]) -> None:
    """Remove the restart folders of these runs (RUNS/.restarts/<run>, <run>.previous) and the
    staging scores.csv, and RUNS/.restarts when it is empty: another command may be restarting
    other runs there."""
    for config, _ in todo:
        for name in (config.name, f"{config.name}.previous"):
            shutil.rmtree(staging / name, ignore_errors=True)
    (staging / SCORES).unlink(missing_ok=True)  # the attempts' rows; keep_better records
    with contextlib.suppress(OSError):
        staging.rmdir()


def judge_outcomes(outcomes: dict[str, RunOutcome]) -> dict[str, Health]:
    """The health of every run that finished, judged against its siblings."""
    finished = {name: o.summary for name, o in outcomes.items() if o.summary is not None}
    return judge_runs(finished)


def attempts_of(summary: dict) -> list[dict]:
    """The attempts a run's summary records (one, its own, when it was never restarted)."""
    return summary.get("attempts") or [
        {"seed": summary.get("seed", 0), "val_score": summary.get("val_score"), "kept": True}
    ]


def attempts_left(config: RunConfig, summary: dict) -> bool:
    """True while the run has used fewer restarts than its config allows."""
    return len(attempts_of(summary)) - 1 < config.restarts


def next_attempt(config: RunConfig, summary: dict) -> RunConfig:
    """The config of the run's next attempt: the seed after the last one tried."""
    last = max(attempt["seed"] for attempt in attempts_of(summary))
    return dataclasses.replace(config, seed=last + 1)


def keep_better(
    out_dir: Path, config: RunConfig, verdict: Health, retrained: RunOutcome
) -> RunOutcome:
    """Keep the better of RUN and its retrained attempt (lower val score) as RUN; the other
    goes to RUN/discarded/seed<s>/. summary.json's `attempts` records both."""
    run_dir, staged = out_dir / config.name, out_dir / RESTARTS / config.name
    previous = RunFolder.at(run_dir).summary()
    attempts = attempts_of(previous)
    for attempt in attempts:
        if attempt.get("seed") == previous.get("seed"):
            attempt.setdefault("health", verdict.as_dict())
    if retrained.failed:
        attempts.append({"seed": config.seed, "failed": retrained.reason, "kept": False})
        shutil.rmtree(staged, ignore_errors=True)
        kept = previous
    else:
        attempt = {"seed": config.seed, "val_score": retrained.val_score, "kept": False}
        attempts.append(attempt)
        if retrained.val_score < previous["val_score"]:
            aside = out_dir / RESTARTS / f"{config.name}.previous"
            os.replace(run_dir, aside)
            os.replace(staged, run_dir)
            for old in sorted((aside / DISCARDED).glob("seed*")):
                discard(old, run_dir / DISCARDED / old.name)
            discard(aside, run_dir / DISCARDED / f"seed{previous.get('seed', 0)}")
            kept = retrained.summary
        else:
            discard(staged, run_dir / DISCARDED / f"seed{config.seed}")
            kept = previous
    for attempt in attempts:
        attempt["kept"] = attempt.get("seed") == kept.get("seed") and "failed" not in attempt
    folder = RunFolder.at(run_dir)
    folder.update_summary({"attempts": attempts})
    folder.record_score(kept["val_score"])
    summary = folder.summary()
    report_restart(config.name, attempts)
    return RunOutcome(config.name, "trained", summary["val_score"], "", summary)


def discard(attempt_dir: Path, target: Path) -> None:
    """Move a losing attempt's folder to `target`, without its checkpoints (any depth)."""
    for checkpoints in sorted(attempt_dir.rglob(RunFolder.at(attempt_dir).checkpoints.name)):
        shutil.rmtree(checkpoints, ignore_errors=True)
    shutil.rmtree(attempt_dir / DISCARDED, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)  # an older attempt with the same seed
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(attempt_dir, target)


def report_restart(run: str, attempts: list[dict]) -> None:
    """One line: which seed's attempt the run keeps, and what the others scored."""
    described = [
        f"seed {a['seed']} "
        + (f"failed ({a['failed']})" if "failed" in a else f"val {a['val_score']:.4g}")
        + (" (kept)" if a["kept"] else "")
        for a in attempts
    ]
    tqdm.write(f"{run}: attempts {', '.join(described)}")


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
    elif full_disk(error):
        where = f"{error.filename}: " if error.filename else ""
        text = f"{where}{full_disk(error)}"
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
        where = ""
        if run_dir.is_dir():
            try:
                folder.write_error(trace or reason + "\n")
                where = f" (details in {log})"
            except (InputError, OSError) as error:  # a full disk: the failure stays in memory
                where = f" ({log} not written: {_unwritten(error)})"
        tqdm.write(f"{run_dir.name}: FAILED: {reason}{where}; going on with the next run")
        return RunOutcome(run_dir.name, "failed", reason=reason)
    log.unlink(missing_ok=True)
    report(summary, resumed)
    warnings = "; ".join(summary.get("warnings", []))
    return RunOutcome(run_dir.name, "trained", summary["val_score"], warnings, summary)


def _unwritten(error: InputError | OSError) -> str:
    """Why a file could not be written, in a few words."""
    if isinstance(error, InputError):
        return error.problem
    return full_disk(error) or error.strerror or str(error)


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
        for done in process_pool(jobs, return_as="generator_unordered")(tasks):
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
