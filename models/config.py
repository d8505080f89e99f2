"""Run configurations: a TOML file with `[defaults]` and one `[[run]]` per model.

Every key is validated: an unknown key or a bad value raises InputError naming the file, the run,
the key and what is allowed. `config_reference()` lists every key with its default.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ensemble.errors import InputError

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "radam")
SCHEDULER_NAMES = ("cosine-warm-restarts", "step", "plateau", "onecycle", "none")
LOSS_NAMES = ("mse", "smooth_l1", "l1", "wing")
DEVICES = ("auto", "cpu", "cuda")
SHARED_KEYS = ("val_fraction", "split_seed")  # one validation split for the whole train-all


@dataclass(frozen=True)
class StageConfig:
    """One training stage: epochs with one optimizer and one learning-rate schedule."""

    epochs: int = 5
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    t0: int = 1
    t_mult: int = 2
    eta_min: float = 0.0
    step_size: int = 1
    gamma: float = 0.1
    plateau_patience: int = 1
    plateau_factor: float = 0.1
    pct_start: float = 0.3
    freeze: str | int = ""  # "" keeps the run's `freeze`; else re-freeze at the stage start


@dataclass(frozen=True)
class AugmentConfig:
    """Batched on-device augmentation of training images (0 switches an item off)."""

    flip: bool = True
    rotation: float = 10.0
    scale: float = 0.1
    shift: float = 0.05
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, after defaults are merged in."""

    name: str
    arch: str
    crop_size: int = 128
    batch_size: int = 32
    pretrained: bool = False
    weights_path: str = ""
    freeze: str | int = "none"
    head_hidden: tuple[int, ...] = ()
    head_dropout: float = 0.0
    in_channels: int = 3
    bn_momentum: float = 0.1
    loss: str = "mse"
    smooth_l1_beta: float = 0.01
    wing_w: float = 0.05
    wing_epsilon: float = 0.01
    grad_clip: float = 0.0
    patience: int = 0
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    tta: bool = True
    device: str = "auto"
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    checkpoint_every: int = 0  # also save checkpoints/last.pt every this many steps (0: off)
    divergence_factor: float = 10.0  # loss > factor x recent mean: a spike (0: off)
    divergence_window: int = 20  # accepted steps in the recent mean
    divergence_patience: int = 5  # spikes in a row that count as divergence
    rollback_lr_factor: float = 0.5  # lr multiplier after each rollback
    max_rollbacks: int = 3
    stages: tuple[StageConfig, ...] = (StageConfig(),)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        """Plain dict (lists, nested dicts) for config.toml and checkpoints."""
        out = dataclasses.asdict(self)
        out["head_hidden"] = list(self.head_hidden)
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return out


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


def _hidden(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError("a list of positive integers (hidden layer sizes), e.g. [1024]")
    return tuple(value)


STAGE_KEYS: dict[str, Callable[[Any], Any]] = {
    "epochs": _integer(1),
    "optimizer": _choice(OPTIMIZER_NAMES),
    "lr": _number(0, open_low=True),
    "weight_decay": _number(0),
    "momentum": _number(0, 1),
    "scheduler": _choice(SCHEDULER_NAMES),
    "t0": _integer(1),
    "t_mult": _integer(1),
    "eta_min": _number(0),
    "step_size": _integer(1),
    "gamma": _number(0, 1, open_low=True),
    "plateau_patience": _integer(0),
    "plateau_factor": _number(0, 1, open_low=True),
    "pct_start": _number(0, 1, open_low=True),
    "freeze": _freeze,
}

AUGMENT_KEYS: dict[str, Callable[[Any], Any]] = {
    "flip": _boolean,
    "rotation": _number(0, 180),
    "scale": _number(0, 0.9),
    "shift": _number(0, 0.5),
    "brightness": _number(0, 1),
    "contrast": _number(0, 1),
    "saturation": _number(0, 1),
}

RUN_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": _string,
    "arch": _string,
    "crop_size": _integer(16, 2048),
    "batch_size": _integer(1),
    "pretrained": _boolean,
    "weights_path": _string,
    "freeze": _freeze,
    "head_hidden": _hidden,
    "head_dropout": _number(0, 0.99),
    "in_channels": _choice((1, 3)),
    "bn_momentum": _number(0, 1),
    "loss": _choice(LOSS_NAMES),
    "smooth_l1_beta": _number(0, open_low=True),
    "wing_w": _number(0, open_low=True),
    "wing_epsilon": _number(0, open_low=True),
    "grad_clip": _number(0),
    "patience": _integer(0),
    "val_fraction": _number(0, 0.9, open_low=True),
    "split_seed": _integer(0),
    "seed": _integer(0),
    "tta": _boolean,
    "device": _choice(DEVICES),
    "bf16": _boolean,
    "channels_last": _boolean,
    "compile": _boolean,
    "checkpoint_every": _integer(0),
    "divergence_factor": _divergence_factor,
    "divergence_window": _integer(1),
    "divergence_patience": _integer(1),
    "rollback_lr_factor": _number(0, 1, open_low=True),
    "max_rollbacks": _integer(0),
    "stages": None,  # list of stage tables, checked by _stages
    "augment": None,  # table, checked by _augment
}


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
                f"{_where(run)}: unknown key '{context}{key}'; allowed: {sorted(keys)}",
            )
        out[key] = _checked(path, run, f"{context}{key}", keys[key], value)
    return out


def _checked(path: Path, run: str | None, key: str, check: Callable, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as error:
        raise ConfigError(
            path, f"{_where(run)}: bad value {value!r} for '{key}'; allowed: {error}"
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
    unknown = sorted(set(document) - {"defaults", "run"})
    if unknown:
        raise ConfigError(path, f"unknown top-level key(s) {unknown}; allowed: ['defaults', 'run']")
    defaults_table = document.get("defaults", {})
    if "name" in defaults_table:
        raise ConfigError(path, "[defaults]: 'name' belongs in each [[run]]")
    defaults = _run_values(path, None, defaults_table)
    runs = document.get("run", [])
    if not isinstance(runs, list) or not runs:
        raise ConfigError(path, "no [[run]] table: add one per model to train")
    allowed_arch = sorted(architectures)
    seen: set[str] = set()
    configs = []
    for position, table in enumerate(runs, start=1):
        name = table.get("name") if isinstance(table, dict) else None
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ConfigError(path, f"[[run]] number {position}: needs a 'name' (a folder name)")
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
        merged["augment"] = AugmentConfig(
            **{**defaults.get("augment", {}), **values.get("augment", {})}
        )
        if "arch" not in merged:
            raise ConfigError(path, f"[[run]] '{name}': missing 'arch'")
        if allowed_arch and merged["arch"] not in allowed_arch:
            raise ConfigError(
                path,
                f"[[run]] '{name}': bad value {merged['arch']!r} for 'arch'; allowed: "
                f"{', '.join(allowed_arch)}",
            )
        configs.append(RunConfig(**merged))
    return configs


def load_config(path: str | Path, architectures: Iterable[str] = ()) -> list[RunConfig]:
    """Read and validate a train-all TOML file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    return parse_config(path.read_text(encoding="utf-8"), path, architectures)


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
    """Every key with its default, as Markdown (for `ens train-all --help-config` and docs)."""
    rows = ["| key | default | allowed |", "|---|---|---|"]
    run_defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for key in RUN_KEYS:
        if key in ("stages", "augment"):
            continue
        default = run_defaults.get(key)
        shown = "(required)" if default is dataclasses.MISSING else repr(default)
        rows.append(f"| {key} | {shown} | {_describe(RUN_KEYS[key])} |")
    for key, check in STAGE_KEYS.items():
        rows.append(f"| stages[].{key} | {getattr(StageConfig(), key)!r} | {_describe(check)} |")
    for key, check in AUGMENT_KEYS.items():
        rows.append(f"| augment.{key} | {getattr(AugmentConfig(), key)!r} | {_describe(check)} |")
    return "\n".join(rows)


def _describe(check: Callable) -> str:
    try:
        check(object())
    except ValueError as error:
        return str(error)
    return "any"
