"""Benchmark `ens blend`: full-size submissions, ours against the plain pandas blend.

Writes `--submissions` synthetic submissions of `--rows` rows x 60 values in a temp folder,
then times (median of `--repeats`) `ensemble.blend.blend_submissions` and the plain pandas
blend (read_csv each, weighted sum, round, to_csv) on the same files, checks that both give
identical numbers, and measures the peak memory (max RSS) of one blend in a fresh process.

    .venv/bin/python benchmarks/bench_blend.py                # 10 x 99,819 rows
    .venv/bin/python benchmarks/bench_blend.py --rows 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.blend import blend_submissions
from ensemble.blend.combine import weighted_mean
from ensemble.io.submission import write_submission
from ensemble.io.submission_set import SubmissionSet

K = 30


def make_submissions(folder: Path, count: int, rows: int, seed: int = 0) -> list[Path]:
    """`count` submissions sharing file names: a common face plus per-model noise, 4 decimals."""
    rng = np.random.default_rng(seed)
    names = [f"{i:08x}.jpg" for i in rng.permutation(4 * rows)[:rows]]
    base = rng.uniform(100, 1200, size=(2 * K, rows))
    paths = []
    for number in range(count):
        path = folder / f"sub{number}.csv"
        write_submission(path, names, (base + rng.normal(0, 3, size=base.shape)).T)
        paths.append(path)
    return paths


def pandas_blend(paths: list[Path], weights: np.ndarray, output: Path) -> None:
    """The plain pandas blend: read_csv each, weighted sum (in order), round, to_csv."""
    frames = [pd.read_csv(path) for path in paths]
    total = frames[0].iloc[:, 1:] * weights[0]
    for frame, weight in zip(frames[1:], weights[1:], strict=True):
        total = total + frame.iloc[:, 1:] * weight
    total = total.round(4)
    total.insert(0, "file_name", frames[0]["file_name"])
    total.to_csv(output, index=False)


def _timed(function, repeats: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def _peak_memory(paths: list[Path], output: Path) -> tuple[float, float]:
    """Peak RSS (VmHWM, MiB) of a fresh process after imports, and after one blend."""
    code = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from ensemble.blend import blend_submissions\n"
        "def hwm():\n"
        "    text = Path('/proc/self/status').read_text()\n"
        "    return re.search(r'VmHWM:\\s+(\\d+)', text).group(1)\n"
        "base = hwm()\n"
        "blend_submissions([Path(p) for p in sys.argv[2:]], None, sys.argv[1])\n"
        "print(base, hwm())\n"
    )
    args = [sys.executable, "-c", code, str(output), *map(str, paths)]
    before, after = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()
    return int(before) / 1024, int(after) / 1024


def _cli_walls(paths: list[Path], output: Path, repeats: int) -> list[float]:
    """Wall times of `ens blend PATHS -o OUTPUT` as a user runs it: a fresh process each time."""
    from bench_start import wall_times  # beside this file

    command = [sys.executable, "-m", "ensemble", "blend", *map(str, paths), "-o", str(output)]
    return wall_times(command, repeats)


def main() -> None:
    """Run the benchmark and print the numbers and the reproducing command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pandas-repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_blend_") as tmp:
        folder = Path(tmp)
        paths = make_submissions(folder, args.submissions, args.rows)
        size = sum(p.stat().st_size for p in paths) / 2**20
        weights = np.arange(1, args.submissions + 1, dtype=np.float64)
        weights /= weights.sum()
        ours_out, pandas_out = folder / "ours.csv", folder / "pandas.csv"
        ours, ours_cpu = _timed(lambda: blend_submissions(paths, weights, ours_out), args.repeats)
        reading, _ = _timed(
            lambda: weighted_mean((i.values for i in SubmissionSet(paths).iter_values()), weights),
            args.repeats,
        )
        result = blend_submissions(paths, weights)
        writing, _ = _timed(
            lambda: write_submission(folder / "write.csv", result.file_names, result.columns.T),
            args.repeats,
        )
        plain, _ = _timed(lambda: pandas_blend(paths, weights, pandas_out), args.pandas_repeats)
        a, b = pd.read_csv(ours_out), pd.read_csv(pandas_out)
        identical = (
            list(a.columns) == list(b.columns)
            and a["file_name"].equals(b["file_name"])
            and np.array_equal(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy())
        )
        base_rss, peak_rss = _peak_memory(paths, folder / "memory.csv")
        cli = _cli_walls(paths, folder / "cli.csv", 3)
    ours_median, plain_median = statistics.median(ours), statistics.median(plain)
    print(
        f"inputs: {args.submissions} submissions x {args.rows:,} rows x {2 * K} values "
        f"({size:.0f} MiB of CSV); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"ours   : median {ours_median:.3f} s wall, best {min(ours):.3f} s (runs: "
        f"{', '.join(f'{t:.2f}' for t in ours)}), median CPU {statistics.median(ours_cpu):.2f} s"
    )
    print(
        f"  of which: read + validate + sum all inputs {statistics.median(reading):.3f} s, "
        f"write the blend {statistics.median(writing):.3f} s (medians, timed separately)"
    )
    print(
        f"pandas : median {plain_median:.3f} s wall (runs: {', '.join(f'{t:.2f}' for t in plain)})"
    )
    print(f"speed-up: {plain_median / ours_median:.1f}x; identical numbers: {identical}")
    print(
        f"ens blend (fresh process: interpreter and imports included): "
        f"median {statistics.median(cli):.3f} s wall (runs: {', '.join(f'{t:.2f}' for t in cli)})"
    )
    print(
        f"peak memory of one blend (VmHWM, fresh process): {peak_rss:.0f} MiB "
        f"({peak_rss - base_rss:.0f} MiB above the {base_rss:.0f} MiB after imports)"
    )
    print(
        "reproduce: .venv/bin/python benchmarks/bench_blend.py "
        f"--rows {args.rows} --submissions {args.submissions} --repeats {args.repeats}"
    )
    if not identical:
        sys.exit("the two blends differ")


if __name__ == "__main__":
    main()
