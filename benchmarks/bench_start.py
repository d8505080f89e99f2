"""Benchmark whole commands as a user waits for them: a fresh process each time.

Times (median of `--repeats`, wall clock) `python -c pass` as the reference, `ens --help`, and
`ens analyze uniformity --test-points FILE` on a full-size test_points.csv (99,819 rows of 30
indices, written to a temp folder), each as a subprocess in the same run.

    .venv/bin/python benchmarks/bench_start.py
    .venv/bin/python benchmarks/bench_start.py --rows 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ensemble.formats import write_test_points
from ensemble.subsets import draw_point_subsets

ENS = str(Path(sys.executable).with_name("ens"))


def wall_times(command: list[str], repeats: int) -> list[float]:
    """Wall seconds of `command` run `repeats` times, each in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print the median whole-process time of each command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        test_points = Path(folder) / "test_points.csv"
        rng = np.random.default_rng(0)
        names = [f"{i:08d}.jpg" for i in range(args.rows)]
        write_test_points(test_points, names, draw_point_subsets(rng, args.rows, 971, 30))
        commands = {
            "python -c pass (reference)": [sys.executable, "-c", "pass"],
            "ens --help": [ENS, "--help"],
            f"ens analyze uniformity ({args.rows:,} rows)": [
                ENS,
                "analyze",
                "uniformity",
                "--test-points",
                str(test_points),
            ],
        }
        wall_times(commands["ens --help"], 1)  # warm the file cache
        for label, command in commands.items():
            times = wall_times(command, args.repeats)
            print(
                f"{label:40s} median {statistics.median(times):.3f} s "
                f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeats} runs)"
            )


if __name__ == "__main__":
    main()
