"""Benchmark whole commands as a user waits for them: a fresh process each time.

Times (wall clock, median of `--repeats`, the commands taking turns within each repeat) in one
run, each as a subprocess: `python -c pass` as the reference; `ens --help`; `ens analyze
uniformity --test-points FILE` on a full-size test_points.csv (99,819 rows of 30 indices);
`ens blend` of ten full-size submissions (99,819 rows x 60 values, as benchmarks/bench_blend.py
writes them) and, beside it, the plain pandas script (read_csv each, weighted sum in order,
round, to_csv) as a process, with a check that both wrote identical numbers; and `ens score`
of one full-size submission against a full-size demo truth (benchmarks/bench_score.py: 734 MB
of test/landmarks.csv), with a check of the scores.

    .venv/bin/python benchmarks/bench_start.py
    .venv/bin/python benchmarks/bench_start.py --rows 20000 --repeats 5 --no-score
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

from ensemble.competition.subsets import draw_point_subsets
from ensemble.io.test_points import write_test_points

ENS = str(Path(sys.executable).with_name("ens"))
PANDAS_BLEND = """
import sys
import pandas as pd
output, paths = sys.argv[1], sys.argv[2:]
frames = [pd.read_csv(path) for path in paths]
weight = 1 / len(paths)
total = frames[0].iloc[:, 1:] * weight
for frame in frames[1:]:
    total = total + frame.iloc[:, 1:] * weight
total = total.round(4)
total.insert(0, "file_name", frames[0]["file_name"])
total.to_csv(output, index=False)
"""


def wall_times(command: list[str], repeats: int) -> list[float]:
    """Wall seconds of `command` run `repeats` times, each in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def same_numbers(a: Path, b: Path) -> bool:
    """Whether two submissions hold the same header, names and values (read back by pandas)."""
    import pandas as pd

    x, y = pd.read_csv(a), pd.read_csv(b)
    return (
        list(x.columns) == list(y.columns)
        and x["file_name"].equals(y["file_name"])
        and np.array_equal(x.iloc[:, 1:].to_numpy(), y.iloc[:, 1:].to_numpy())
    )


def main() -> None:
    """Print the median whole-process time of each command, and the checks."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_blend import make_submissions
    from bench_score import expected_scores, make_score_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pandas-repeats", type=int, default=3)
    parser.add_argument("--no-score", action="store_true", help="Skip `ens score` (734 MB).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_start_") as tmp:
        folder = Path(tmp)
        test_points = folder / "test_points.csv"
        rng = np.random.default_rng(0)
        names = [f"{i:08d}.jpg" for i in range(args.rows)]
        write_test_points(test_points, names, draw_point_subsets(rng, args.rows, 971, 30))
        (folder / "subs").mkdir()
        subs = [str(p) for p in make_submissions(folder / "subs", args.submissions, args.rows)]
        script = folder / "pandas_blend.py"
        script.write_text(PANDAS_BLEND)
        ours, theirs = folder / "ours.csv", folder / "pandas.csv"
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
            f"ens blend ({args.submissions} files)": [ENS, "blend", *subs, "-o", str(ours)],
        }
        if not args.no_score:
            submission, truth = make_score_data(folder / "score", args.rows)
            score = [ENS, "score", str(submission), "--data", str(folder / "score")]
            commands[f"ens score ({args.rows:,} rows)"] = score
        for command in commands.values():
            wall_times(command, 1)  # warm the file cache (and build the C library if needed)
        pandas = [sys.executable, str(script), str(theirs), *subs]
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.repeats):  # the commands take turns: the same load for each
            for label, command in commands.items():
                times[label] += wall_times(command, 1)
        pandas_times = wall_times(pandas, args.pandas_repeats)
        identical = same_numbers(ours, theirs)
        if not args.no_score:
            output = subprocess.run(score, check=True, capture_output=True, text=True).stdout
            got = [float(v) for v in output.strip().splitlines()[-1].split()[-2:]]
            want = expected_scores(submission, truth, folder / "score")
            scores_ok = np.allclose(got, want, atol=1e-4, rtol=0)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    for label, values in times.items():
        print(
            f"{label:40s} median {statistics.median(values):.3f} s "
            f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} runs)"
        )
    blend = statistics.median(times[f"ens blend ({args.submissions} files)"])
    plain = statistics.median(pandas_times)
    print(
        f"{'pandas blend script (process)':40s} median {plain:.3f} s "
        f"(min {min(pandas_times):.3f}, max {max(pandas_times):.3f}, {len(pandas_times)} runs)"
    )
    print(f"ens blend is {plain / blend:.1f}x the pandas script; identical numbers: {identical}")
    if not args.no_score:
        print(f"ens score printed {got}, numpy gives {[round(v, 4) for v in want]}: {scores_ok}")
    if not identical or (not args.no_score and not scores_ok):
        sys.exit("a check failed")


if __name__ == "__main__":
    main()
