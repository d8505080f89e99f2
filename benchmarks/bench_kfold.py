"""Benchmark: label errors found by K-fold out-of-fold predictions, and trained out with `exclude`.

On the default-size demo with `--label-errors 0.02` (40 planted errors in 2,000 train images):
one small_cnn_deeper run with `folds = 5`; `ens analyze errors` flags suspect labels from its
out-of-fold predictions (spread from its flip views, one run alone); precision and recall of
`suspect = 1` against train/label_errors.csv; the same run retrained with `exclude`; the
private MSE of both submissions (`ens score`), and a single-split run of the same model for the
cost of K-fold. About 12 minutes on two CPU cores.

    .venv/bin/python benchmarks/bench_kfold.py --work /tmp/bench_kfold
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ENS = str(Path(sys.executable).with_name("ens"))
ROOT = Path(__file__).resolve().parents[1]


def ens(*args: str, cwd: Path) -> str:
    """Run one `ens` command in `cwd`; its output (stops the benchmark on failure)."""
    result = subprocess.run([ENS, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"ens {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def runs_file(work: Path, name: str, split: str, exclude: str = "") -> Path:
    """The demo config with one small_cnn_deeper run and the given split (and exclude)."""
    text = (ROOT / "configs" / "demo.toml").read_text()
    text = re.sub(
        r"^val_fraction = .*$",
        split + (f'\nexclude = "{exclude}"' if exclude else ""),
        text,
        flags=re.M,
    )
    text = text[: text.index("[[run]]")]
    text += f'[[run]]\nname = "{name}"\narch = "small_cnn_deeper"\nin_channels = 1\n'
    path = work / f"{name}.toml"
    path.write_text(text)
    return path


def train(work: Path, name: str, split: str, exclude: str = "") -> float:
    """Train one run into work/RUNS; its wall-clock seconds."""
    start = time.perf_counter()
    config = runs_file(work, name, split, exclude)
    ens(
        "train-all", "--data", "demo", "--config", str(config), "--out", "RUNS", "--quiet", cwd=work
    )
    return time.perf_counter() - start


def private(work: Path, run: str) -> float:
    """Private MSE of a run's submission on the demo's hidden test truth."""
    out = ens("score", "--data", "demo", f"RUNS/{run}/submission.csv", cwd=work)
    return float(out.strip().splitlines()[-1].split()[-1])


def csv_rows(path: Path) -> list[dict]:
    """The rows of a CSV file with a header."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    """Make the data, train, flag, retrain, score; print the table for BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_kfold"))
    work = parser.parse_args().work
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "demo").is_dir():
        ens("make-demo", "demo", "--label-errors", "0.02", cwd=work)
    seconds = {"single": train(work, "deeper_single", "val_fraction = 0.1")}
    seconds["folds"] = train(work, "deeper_k5", "folds = 5")
    (work / "K5").mkdir(exist_ok=True)
    link = work / "K5" / "deeper_k5"
    if not link.exists():
        link.symlink_to(work / "RUNS" / "deeper_k5")
    ens("analyze", "errors", "--runs", "K5", "--data", "demo", "-o", "report", cwd=work)
    planted = {r["file_name"] for r in csv_rows(work / "demo/train/label_errors.csv")}
    rows = csv_rows(work / "report" / "suspect_labels.csv")
    flagged = {r["file_name"] for r in rows if r["suspect"] == "1"}
    found = len(flagged & planted)
    ranks = [i + 1 for i, r in enumerate(rows) if r["file_name"] in planted]
    seconds["excluded"] = train(work, "deeper_k5_excl", "folds = 5", "report/suspect_labels.csv")
    summary = json.loads((work / "RUNS/deeper_k5/summary.json").read_text())
    print(
        f"planted {len(planted)}, flagged {len(flagged)}, found {found}: precision "
        f"{found / max(len(flagged), 1):.3f}, recall {found / len(planted):.3f}; planted ranks "
        f"{min(ranks)}..{max(ranks)}"
    )
    print(
        f"fold val scores {[round(s, 1) for s in summary['fold_val_scores']]}, out-of-fold "
        f"{summary['val_score']:.1f}"
    )
    for run in ("deeper_single", "deeper_k5", "deeper_k5_excl"):
        key = {"deeper_single": "single", "deeper_k5": "folds", "deeper_k5_excl": "excluded"}[run]
        print(f"{run:16s} private MSE {private(work, run):8.3f}   {seconds[key]:6.0f} s")


if __name__ == "__main__":
    main()
