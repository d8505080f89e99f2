"""Run configurations: a TOML file with `[defaults]` and one `[[run]]` per model.

Every key is validated: an unknown key or a bad value raises InputError naming the file, the run,
the key and what is allowed. Each key is declared once (`key`: default, check, meaning), and
`config_reference()` makes the table of `ens train-all --config-keys` and the README from it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ensemble.errors import TOO_DEEP, TOO_MANY_DIGITS, InputError
from ensemble.io.checks import decode_utf8, literal, quoted
from ensemble.io.file_kind import require_file
from ensemble.io.run_folder import run_name_problem

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "radam")
SCHEDULER_NAMES = ("cosine", "cosine-warm-restarts", "step", "plateau", "onecycle", "none")
LOSS_NAMES = ("mse", "smooth_l1", "l1", "wing")
DEVICES = ("auto", "cpu", "cuda")
UNCERTAINTY_NAMES = ("none", "gaussian", "laplace")
SHARED_KEYS = ("val_fraction", "split_seed", "folds")  # one split for the whole train-all


# ----------------------------------------------------------------------------------------------
# value checks: each returns the converted value or raises ValueError with what is allowed


def _integer(low: int, high: float = math.inf) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            bound = f"<= {high}" if high != math.inf else ""
            raise ValueError(f"an integer >= {low} {bound}".strip())
        return value

    return check


def _number(low: float, high: float = math.inf, open_low: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value <= high
        ok = ok and (value > low if open_low else value >= low)
        if not ok:
            sign = ">" if open_low else ">="
            upper = f" and <= {high}" if high != math.inf else ""
            raise ValueError(f"a number {sign} {low}{upper}")
        return float(value)

    return check


def _choice(options: Iterable) -> Callable[[Any], Any]:
    options = tuple(options)

    def check(value: Any) -> Any:
        if value not in options or isinstance(value, bool):
            raise ValueError(f"one of {list(options)}")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _freeze(value: Any) -> str | int:
    if value in ("none", "all") or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ):
        return value
    raise ValueError("'none', 'all' or the number of leading backbone stages to freeze (>= 0)")


def _divergence_factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("0 (off) or a number > 1")
    if value != 0 and not (math.isfinite(value) and value > 1):
        raise ValueError("0 (off) or a number > 1")
    return float(value)


def _folds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 1 or value < 0:
        raise ValueError("0 (one validation split) or an integer K >= 2")
    return value


def _hidden(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError("a list of positive integers (hidden layer sizes), e.g. [1024]")
    return tuple(value)


def key(default: Any, check: Callable[[Any], Any] | None, meaning: str) -> Any:
    """A config key, declared once: its default (dataclasses.MISSING: required), its check
    (None: a table checked by its own reader) and what it means, for `--config-keys`."""
    return field(default=default, metadata={"check": check, "meaning": meaning})


@dataclass(frozen=True)
class StageConfig:
    """One training stage: epochs with one optimizer and one learning-rate schedule."""

    epochs: int = key(5, _integer(1), "epochs of the stage")
    optimizer: str = key("adam", _choice(OPTIMIZER_NAMES), "the stage's optimizer")
    lr: float = key(1e-3, _number(0, open_low=True), "learning rate")
    weight_decay: float = key(0.0, _number(0), "weight decay")
    momentum: float = key(0.9, _number(0, 1), "SGD momentum")
    scheduler: str = key("none", _choice(SCHEDULER_NAMES), "learning-rate schedule")
    t0: int = key(1, _integer(1), "cosine-warm-restarts: epochs of the first cycle")
    t_mult: int = key(2, _integer(1), "cosine-warm-restarts: cycle length factor")
    eta_min: float = key(0.0, _number(0), "cosine, cosine-warm-restarts: lowest lr")
    step_size: int = key(1, _integer(1), "step: epochs between lr cuts")
    gamma: float = key(0.1, _number(0, 1, open_low=True), "step: lr factor per cut")
    plateau_patience: int = key(1, _integer(0), "plateau: epochs without gain before a cut")
    plateau_factor: float = key(0.1, _number(0, 1, open_low=True), "plateau: lr factor per cut")
    pct_start: float = key(0.3, _number(0, 1, open_low=True), "onecycle: share of warm-up")
    warmup_epochs: float = key(
        1.0,
        _number(0),
        "linear warm-up at the start of the stage, epochs (a fraction allowed; 0 = off): the "
        "schedule's lr is multiplied by (step + 1) / warm-up steps until it reaches 1",
    )
    freeze: str | int = key("", _freeze, "'' keeps the run's `freeze`; else re-freeze at start")


@dataclass(frozen=True)
class AugmentConfig:
    """Batched on-device augmentation of training images (0 switches an item off)."""

    flip: bool = key(True, _boolean, "horizontal flip with the layout's left/right permutation")
    rotation: float = key(10.0, _number(0, 180), "random rotation, degrees")
    scale: float = key(0.1, _number(0, 0.9), "random scale, fraction")
    shift: float = key(0.05, _number(0, 0.5), "random shift, fraction of the crop")
    brightness: float = key(0.2, _number(0, 1), "colour jitter")
    contrast: float = key(0.2, _number(0, 1), "colour jitter")
    saturation: float = key(0.2, _number(0, 1), "colour jitter")
    occlusion: float = key(
        0.0,
        _number(0, 1),
        "probability that an image gets one random box (2-20% of the crop, aspect 1:3 to 3:1) "
        "filled with noise; the landmarks under it are kept",
    )
    blur: float = key(
        0.0,
        _number(0, 8),
        "largest Gaussian blur sigma, crop pixels (half of the images, sigma uniform up to it)",
    )
    noise: float = key(
        0.0,
        _number(0, 1),
        "largest per-image std of Gaussian pixel noise, as a share of the 0-255 range",
    )


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, after defaults are merged in."""

    name: str = key(
        dataclasses.MISSING,
        _string,
        "the run's folder name, in each [[run]]: 1 to 100 letters, digits, '.', '_' or '-', not "
        "starting with '.'",
    )
    arch: str = key(
        dataclasses.MISSING,
        _string,
        "any torchvision classification model (resnet18..resnet152, resnext50_32x4d, "
        "densenet121, efficientnet_b0, convnext_tiny, ...) or small_cnn_{basic,wider,deeper,"
        "residual}",
    )
    crop_size: int = key(128, _integer(16, 2048), "letterboxed square crop, pixels")
    batch_size: int = key(32, _integer(1), "images per step (per process under torchrun)")
    pretrained: bool = key(False, _boolean, "torchvision weights (needs the download once)")
    weights_path: str = key("", _string, "a state_dict file to start from")
    freeze: str | int = key("none", _freeze, "frozen backbone: none, all, or leading stages")
    head_hidden: tuple[int, ...] = key((), _hidden, "MLP head hidden sizes")
    head_dropout: float = key(0.0, _number(0, 0.99), "MLP head dropout")
    in_channels: int = key(3, _choice((1, 3)), "1 (grayscale) or 3")
    bn_momentum: float = key(0.1, _number(0, 1), "batch-norm momentum (0 keeps the model's)")
    loss: str = key("mse", _choice(LOSS_NAMES), "training loss")
    uncertainty: str = key(
        "none",
        _choice(UNCERTAINTY_NAMES),
        "the head also predicts each point's isotropic scale sigma, trained by negative "
        "log-likelihood on detached errors (the locations train as without); sigma, calibrated "
        "on validation, goes into the prediction files",
    )
    smooth_l1_beta: float = key(0.01, _number(0, open_low=True), "smooth_l1: beta")
    wing_w: float = key(0.05, _number(0, open_low=True), "wing: w")
    wing_epsilon: float = key(0.01, _number(0, open_low=True), "wing: epsilon")
    grad_clip: float = key(1.0, _number(0), "clip the gradient's global norm to this (0 = off)")
    ema_decay: float = key(
        0.999,
        _number(0, 1 - 1e-9),
        "exponential moving average of the weights per step (0 = off); validation, best.pt, "
        "predictions and the submission use the averaged weights",
    )
    restarts: int = key(
        1,
        _integer(0),
        "a run judged poor (its val score not under half the mean-shape baseline's, or over "
        "twice its siblings' median) is trained again with the next seed, up to this many "
        "times; the better attempt is kept",
    )
    patience: int = key(0, _integer(0), "early-stopping patience, epochs (0 = off)")
    val_fraction: float = key(
        0.1, _number(0, 0.9, open_low=True), "[defaults] only: share of images validated"
    )
    split_seed: int = key(0, _integer(0), "[defaults] only: seed of the validation split")
    folds: int = key(
        0,
        _folds,
        "[defaults] only: K >= 2 trains K models per run, fold k held out from model k "
        "(replaces val_fraction; val_predictions.npz then holds every train image, out of fold)",
    )
    exclude: str = key(
        "",
        _string,
        "CSV of images left out of training and validation scoring (a file_name column; with "
        "a suspect column only rows with suspect = 1); relative to the config file",
    )
    seed: int = key(0, _integer(0), "the run's seed")
    tta: bool = key(True, _boolean, "horizontal-flip test-time augmentation")
    device: str = key("auto", _choice(DEVICES), "auto: CUDA when there is one")
    bf16: bool = key(True, _boolean, "CUDA: bf16 autocast")
    channels_last: bool = key(True, _boolean, "CUDA: channels-last memory format")
    compile: bool = key(False, _boolean, "torch.compile the model")
    checkpoint_every: int = key(0, _integer(0), "also save last.pt every M steps (0 = off)")
    divergence_factor: float = key(
        10.0,
        _divergence_factor,
        "a loss above factor x the recent mean of accepted losses is a spike: logged, its "
        "update skipped (0 = off)",
    )
    divergence_window: int = key(20, _integer(1), "accepted steps in the recent mean")
    divergence_patience: int = key(
        5, _integer(1), "spikes in a row (or one non-finite loss) that are a divergence: roll back"
    )
    rollback_lr_factor: float = key(
        0.5, _number(0, 1, open_low=True), "learning-rate factor per rollback"
    )
    max_rollbacks: int = key(3, _integer(0), "rollbacks before the run ends on its best checkpoint")
    stages: tuple[StageConfig, ...] = key((StageConfig(),), None, "list of stage tables (below)")
    augment: AugmentConfig = key(AugmentConfig(), None, "augmentation table (below)")

    def to_dict(self) -> dict:
        """Plain dict (lists, nested dicts) for config.toml and checkpoints."""
        out = dataclasses.asdict(self)
        out["head_hidden"] = list(self.head_hidden)
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return out


def _checks(record: type) -> dict[str, Callable[[Any], Any] | None]:
    return {f.name: f.metadata["check"] for f in dataclasses.fields(record)}


STAGE_KEYS = _checks(StageConfig)
AUGMENT_KEYS = _checks(AugmentConfig)
RUN_KEYS = _checks(RunConfig)  # stages and augment: None, checked by _stages and _augment


class ConfigError(InputError):
    """A bad run configuration (file, run, key, what is allowed)."""


def _where(run: str | None) -> str:
    return f"[[run]] '{run}'" if run else "[defaults]"


def _check_table(path: Path, run: str | None, table: Any, keys: dict, context: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(path, f"{_where(run)}: '{context}' must be a table")
    out = {}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(
                path,
                f"{_where(run)}: unknown key {quoted(context + key)}; allowed: {sorted(keys)}",
            )
        out[key] = _checked(path, run, f"{context}{key}", keys[key], value)
    return out


def _checked(path: Path, run: str | None, key: str, check: Callable, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as error:
        raise ConfigError(
            path, f"{_where(run)}: bad value {literal(value)} for '{key}'; allowed: {error}"
        ) from None


def _stages(path: Path, run: str | None, value: Any) -> tuple[StageConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"{_where(run)}: 'stages' must be a non-empty list of tables")
    return tuple(
        StageConfig(**_check_table(path, run, stage, STAGE_KEYS, f"stages[{i}]."))
        for i, stage in enumerate(value)
    )


def _run_values(path: Path, run: str | None, table: dict) -> dict:
    """Checked values of one [defaults] or [[run]] table (stages and augment kept raw-merged)."""
    plain = {k: v for k, v in table.items() if k not in ("stages", "augment")}
    out = _check_table(path, run, plain, RUN_KEYS, "")
    if "stages" in table:
        out["stages"] = _stages(path, run, table["stages"])
    if "augment" in table:
        out["augment"] = _check_table(path, run, table["augment"], AUGMENT_KEYS, "augment.")
    return out


def parse_config(
    text: str, path: str | Path = "<config>", architectures: Iterable[str] = ()
) -> list[RunConfig]:
    """Parse and validate a train-all TOML; `architectures` lists the allowed `arch` values."""
    path = Path(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, f"not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(path, TOO_DEEP) from None
    except ValueError:  # the one other error tomllib raises: an integer over Python's limit
        raise ConfigError(path, TOO_MANY_DIGITS) from None
    unknown = sorted(set(document) - {"defaults", "run"})
    if unknown:
        raise ConfigError(
            path, f"unknown top-level key(s) {literal(unknown)}; allowed: ['defaults', 'run']"
        )
    defaults_table = document.get("defaults", {})
    if "name" in defaults_table:
        raise ConfigError(path, "[defaults]: 'name' belongs in each [[run]]")
    defaults = _run_values(path, None, defaults_table)
    if defaults.get("folds") and "val_fraction" in defaults:
        raise ConfigError(
            path, "[defaults]: 'folds' replaces 'val_fraction' (every fold validates once): set one"
        )
    runs = document.get("run", [])
    if not isinstance(runs, list) or not runs:
        raise ConfigError(path, "no [[run]] table: add one per model to train")
    allowed_arch = sorted(architectures)
    seen: set[str] = set()
    configs = []
    for position, table in enumerate(runs, start=1):
        name = table.get("name") if isinstance(table, dict) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(path, f"[[run]] number {position}: needs a 'name' (a folder name)")
        problem = run_name_problem(name)
        if problem is not None:
            raise ConfigError(path, f"[[run]] number {position}: name {quoted(name)} {problem}")
        if name in seen:
            raise ConfigError(path, f"[[run]] '{name}': duplicate run name")
        seen.add(name)
        values = _run_values(path, name, table)
        shared = [k for k in SHARED_KEYS if k in table]
        if shared:
            raise ConfigError(
                path,
                f"[[run]] '{name}': '{shared[0]}' must be set in [defaults] "
                "(every run shares one validation split)",
            )
        merged = {**defaults, **values}
        if merged.get("exclude"):
            merged["exclude"] = str((path.parent / merged["exclude"]).resolve())
        merged["augment"] = AugmentConfig(
            **{**defaults.get("augment", {}), **values.get("augment", {})}
        )
        if "arch" not in merged:
            raise ConfigError(path, f"[[run]] '{name}': missing 'arch'")
        if allowed_arch and merged["arch"] not in allowed_arch:
            raise ConfigError(
                path,
                f"[[run]] '{name}': bad value {literal(merged['arch'])} for 'arch'; allowed: "
                f"{', '.join(allowed_arch)}",
            )
        configs.append(RunConfig(**merged))
    return configs


def load_config(path: str | Path, architectures: Iterable[str] = ()) -> list[RunConfig]:
    """Read and validate a train-all TOML file."""
    path = Path(path)
    require_file(path, "config file not found")  # a FIFO would hang the read
    return parse_config(decode_utf8(path, path.read_bytes()), path, architectures)


def run_from_dict(values: dict) -> RunConfig:
    """Rebuild a RunConfig from `RunConfig.to_dict()` (as stored in config.toml)."""
    values = {k: v for k, v in values.items() if k in RUN_KEYS}
    values["head_hidden"] = tuple(values.get("head_hidden", ()))
    values["stages"] = tuple(StageConfig(**s) for s in values.get("stages", ()))
    values["augment"] = AugmentConfig(**values.get("augment", {}))
    return RunConfig(**values)


def to_toml(values: dict) -> str:
    """Serialise a dict of scalars, lists, tables and lists of tables as TOML."""
    lines: list[str] = []
    _emit(lines, values, [])
    return "\n".join(lines) + "\n"


def _emit(lines: list[str], table: dict, prefix: list[str]) -> None:
    nested = {}
    for key, value in table.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        ):
            nested[key] = value
        else:
            lines.append(f"{key} = {_scalar(value)}")
    for key, value in nested.items():
        name = ".".join([*prefix, key])
        if isinstance(value, dict):
            lines += ["", f"[{name}]"]
            _emit(lines, value, [*prefix, key])
        else:
            for item in value:
                lines += ["", f"[[{name}]]"]
                _emit(lines, item, [*prefix, key])


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def config_reference() -> str:
    """Every key with its default, what it allows and means, as Markdown (`--config-keys`)."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    records = (("", RunConfig), ("stages[].", StageConfig), ("augment.", AugmentConfig))
    for prefix, record in records:
        for item in dataclasses.fields(record):
            check = item.metadata["check"]
            if check is None:
                continue
            missing = item.default is dataclasses.MISSING
            default = "(required)" if missing else f"`{_scalar(item.default)}`"
            meaning = item.metadata["meaning"]
            rows.append(f"| {prefix}{item.name} | {default} | {_describe(check)} | {meaning} |")
    return "\n".join(rows)


def _describe(check: Callable) -> str:
    try:
        check(object())
    except ValueError as error:
        return str(error)
    return "any"
