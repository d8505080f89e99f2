"""Benchmark: the seed spread of every run of a config (median, worst and best test MSE).

Each run of the config is trained with several seeds (`seed = s` in [defaults]) by
`ens train-all`, on one or more demo data sets, and scored on the demo's hidden test truth: the
MSE over every landmark of every test image (original pixels), from RUN/test_predictions.npz.
The mean-shape baseline on the same test images and the fitted blend of each seed's runs
(`ens blend --fit`) are scored the same way. Data sets:

- `default`: `ens make-demo` with its defaults (2,000 train / 500 test, 1% label errors, 1% crowd)
- `p98`: the same images cut to 98 of the 971 points (every 10th), without a layout file: the
  generic layout (twins matched on the mean shape, bbox NME)
- `mid`: the regression case: 1,000 train images, 3% label errors, 3% crowd
- `hard`: 500 train images, 5% label errors, 5% crowd (too little for 6 CPU epochs: every
  recipe stays near the mean shape)

`--set KEY=VALUE` overrides a [defaults] key of the config (TOML values: `--set restarts=0`,
`--set stages.lr=0.003` in every stage, `--set augment.blur=1.5`). Results go to
WORK/LABEL/results.json (one record per run, seed and data set) and a Markdown table on stdout.
Runs already trained are reused, so an interrupted benchmark continues where it stopped.

    .venv/bin/python benchmarks/bench_seeds.py --work /tmp/bench_seeds --label shipped \
        --data default p98 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.competition.baseline import mean_shape_points  # noqa: E402
from ensemble.io.data_folder import DataFolder  # noqa: E402
from ensemble.io.images import image_sizes  # noqa: E402
from ensemble.io.landmarks import read_landmarks, write_landmarks  # noqa: E402
from ensemble.io.predictions import load_predictions  # noqa: E402
from ensemble.io.test_points import read_test_points, write_test_points  # noqa: E402
from models.config import to_toml  # noqa: E402

ENS = str(Path(sys.executable).with_name("ens"))
DATASETS = {
    "default": ("default", []),
    "p98": ("default", None),
    "mid": ("mid", ["--train", "1000", "--label-errors", "0.03", "--crowd", "0.03"]),
    "hard": ("hard", ["--train", "500", "--label-errors", "0.05", "--crowd", "0.05"]),
}
KEEP_EVERY = 10  # p98: points 0, 10, ..., 970


def ens(*args: str, cwd: Path | None = None) -> str:
    """Run one `ens` command; its output (stops the benchmark on failure)."""
    result = subprocess.run([ENS, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"ens {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def make_data(work: Path, name: str) -> Path:
    """The data set `name` under WORK/data/ (made once)."""
    source, options = DATASETS[name]
    folder = work / "data" / name
    if folder.is_dir():
        return folder
    if options is not None:
        ens("make-demo", str(folder), *options)
        return folder
    cut_points(make_data(work, source), folder)
    return folder


def cut_points(source: Path, target: Path) -> None:
    """A copy of a demo data set with every KEEP_EVERY-th point and no layout file."""
    keep = np.arange(0, 971, KEEP_EVERY)
    staging = target.with_name(target.name + ".partial")
    for split in ("train", "test"):
        (staging / split).mkdir(parents=True, exist_ok=True)
        (staging / split / "images").symlink_to((source / split / "images").resolve())
        labels = read_landmarks(source / split / "landmarks.csv")
        write_landmarks(
            staging / split / "landmarks.csv", labels.file_names, labels.points[:, keep], True
        )
    test_points = read_test_points(source / "test" / "test_points.csv")
    rng = np.random.default_rng(0)
    indices = np.stack([rng.choice(len(keep), 30, replace=False) for _ in test_points.file_names])
    write_test_points(staging / "test" / "test_points.csv", test_points.file_names, indices)
    staging.rename(target)


def config_for(base: Path, seed: int, overrides: list[str], out: Path) -> Path:
    """The config with `seed` (and the overrides) in [defaults], written to `out`."""
    document = tomllib.loads(base.read_text())
    defaults = document.setdefault("defaults", {})
    defaults["seed"] = seed
    for item in overrides:
        key, _, value = item.partition("=")
        parsed = tomllib.loads(f"v = {value}")["v"]
        if key.startswith("stages."):  # every stage of [defaults]
            for stage in defaults["stages"]:
                stage[key.split(".", 1)[1]] = parsed
        elif key.startswith("augment."):
            defaults.setdefault("augment", {})[key.split(".", 1)[1]] = parsed
        else:
            defaults[key] = parsed
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_toml(document))
    return out


def test_mse(points: np.ndarray, truth: np.ndarray) -> float:
    """MSE over every landmark coordinate of every test image (original pixels)."""
    return float(np.mean((points.astype(np.float64) - truth) ** 2))


def truth_for(data: Path, names: np.ndarray) -> np.ndarray:
    """The hidden test truth, in the order of `names`."""
    labels = read_landmarks(data / "test" / "landmarks.csv")
    index = {name: row for row, name in enumerate(labels.file_names)}
    return labels.points[[index[name] for name in names]].astype(np.float64)


def mean_shape_mse(data: Path) -> float:
    """Test MSE of the mean-shape baseline (`ens baseline`'s points, scaled to each image)."""
    train = read_landmarks(data / "train" / "landmarks.csv")
    test = read_landmarks(data / "test" / "landmarks.csv")
    folder = DataFolder.at(data)
    sizes = image_sizes(folder.images("train"), train.file_names)
    test_sizes = image_sizes(folder.images("test"), test.file_names)
    return test_mse(mean_shape_points(train.points, sizes, test_sizes), test.points)


def train_seed(
    work: Path, label: str, data: Path, dataset: str, config: Path, seed: int, overrides: list
) -> list[dict]:
    """Train every run of the config with one seed; one record per run plus baseline and blend."""
    out = work / label / dataset / f"seed{seed}"
    seeded = config_for(config, seed, overrides, out / "config.toml")
    start = time.perf_counter()
    result = subprocess.run(
        [ENS, "train-all", "--data", str(data), "--config", str(seeded), "--out", str(out)]
        + ["--quiet"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    records = []
    runs = [r["name"] for r in tomllib.loads(seeded.read_text())["run"]]
    for run in runs:
        summary_path = out / run / "summary.json"
        if not summary_path.is_file():
            records.append({"run": run, "status": "failed", "test_mse": None})
            continue
        summary = json.loads(summary_path.read_text())
        predicted = load_predictions(out / run / "test_predictions.npz")
        truth = truth_for(data, predicted.file_names)
        records.append(
            {
                "run": run,
                "status": summary.get("health", {}).get("status", "trained"),
                "val_score": summary["val_score"],
                "baseline_val_score": summary.get("baseline_val_score"),
                "test_mse": test_mse(predicted.points, truth),
                "spikes": len(summary.get("spikes", [])),
                "rollbacks": len(summary.get("rollbacks", [])),
                "restarts": len(summary.get("restarts", [])),
                "seconds": summary.get("total_seconds"),
            }
        )
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
    trained = [r["run"] for r in records if r["test_mse"] is not None]
    if len(trained) > 1:
        blend = out / "blend_fit.csv"
        if not blend.is_file():
            ens("blend", "--fit", str(out), "--data", str(data), "-o", str(blend))
        names = load_predictions(out / trained[0] / "test_predictions.npz").file_names
        stacked = np.stack(
            [load_predictions(out / run / "test_predictions.npz").points for run in trained]
        )
        weights = json.loads(blend.with_suffix(".weights.json").read_text())
        w = np.array([weights["weights"][run] for run in trained])
        fused = np.tensordot(w, stacked.astype(np.float64), axes=1)
        records.append(
            {"run": "blend: fitted", "test_mse": test_mse(fused, truth_for(data, names))}
        )
    records.append({"run": "mean shape", "test_mse": mean_shape_mse(data)})
    for record in records:
        record.update(dataset=dataset, seed=seed, command_seconds=seconds)
    return records


def table(records: list[dict]) -> str:
    """Median, worst and best test MSE per data set and run, with worst/median."""
    lines = [
        "| data | run | seeds | median | worst | best | worst / median | poor | spikes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = dict.fromkeys((r["dataset"], r["run"]) for r in records)
    for dataset, run in keys:
        rows = [r for r in records if (r["dataset"], r["run"]) == (dataset, run)]
        scores = [r["test_mse"] for r in rows if r["test_mse"] is not None]
        if not scores:
            continue
        median = statistics.median(scores)
        poor = sum(r.get("status") == "poor" for r in rows)
        spikes = sum(r.get("spikes", 0) for r in rows)
        lines.append(
            f"| {dataset} | {run} | {len(scores)} | {median:.2f} | {max(scores):.2f} | "
            f"{min(scores):.2f} | {max(scores) / median:.2f} | {poor} | {spikes} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Train every (data set, seed), score, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_seeds"))
    parser.add_argument("--label", default="shipped", help="results go to WORK/LABEL/")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.toml")
    parser.add_argument("--data", nargs="+", default=["default", "p98"], choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="KEY=VALUE in [defaults] (stages.KEY sets it in every stage, augment.KEY too)",
    )
    parser.add_argument(
        "--report", action="store_true", help="print the table of WORK/LABEL/ only, train nothing"
    )
    args = parser.parse_args()
    results_path = args.work / args.label / "results.json"
    records = json.loads(results_path.read_text()) if results_path.is_file() else []
    done = {(r["dataset"], r["seed"]) for r in records}
    for dataset in [] if args.report else args.data:
        data = make_data(args.work, dataset)
        for seed in args.seeds:
            if (dataset, seed) in done:
                continue
            records += train_seed(
                args.work, args.label, data, dataset, args.config, seed, args.overrides
            )
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(records, indent=1))
            print(f"{args.label} {dataset} seed {seed} done", file=sys.stderr, flush=True)
    chosen = [r for r in records if r["dataset"] in args.data and r["seed"] in args.seeds]
    print(f"## {args.label}: {args.config.name} {' '.join(args.overrides)}")
    print(table(chosen))


if __name__ == "__main__":
    main()
