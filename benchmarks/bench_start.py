"""Benchmark whole commands as a user waits for them: a fresh process each time.

Times (wall clock, median of `--repeats`, the commands taking turns within each repeat) in one
run, each as a subprocess: `python -c pass` as the reference; `ens --help`; `ens analyze
uniformity --test-points FILE` on a full-size test_points.csv (99,819 rows of 30 indices);
`ens blend` of ten full-size submissions (99,819 rows x 60 values, as benchmarks/bench_blend.py
writes them) and, beside it, the plain pandas script (read_csv each, weighted sum in order,
round, to_csv) as a process, with a check that both wrote identical numbers; and `ens score`
of one full-size submission against a full-size demo truth (benchmarks/bench_score.py: 734 MB
of test/landmarks.csv), with a check of the scores, beside the pandas way of scoring as a
process (read_csv the truth, test_points.csv and the submission, pick the requested points,
the mean squared error of each half).

    .venv/bin/python benchmarks/bench_start.py
    .venv/bin/python benchmarks/bench_start.py --rows 20000 --repeats 5 --no-score
"""

from __future__ import annotations

import argparse
import os
import resource
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
PANDAS_SCORE = """
import sys
import numpy as np
import pandas as pd
from ensemble.competition.metric import public_mask
submission, data = sys.argv[1], sys.argv[2]
truth = pd.read_csv(data + "/test/landmarks.csv", sep="\\t", index_col="file_name")
points = pd.read_csv(data + "/test/test_points.csv", sep="\\t")
names = points["file_name"]
lists = points["point_index_list"].str.strip("[]").str.split(",")
indices = np.array([[int(i) for i in row] for row in lists])
true = truth.loc[names].to_numpy().reshape(len(names), -1, 2)
picked = np.take_along_axis(true, indices[:, :, None], axis=1)
values = pd.read_csv(submission, index_col="file_name").loc[names].to_numpy()
per_row = ((values.reshape(picked.shape) - picked) ** 2).mean(axis=(1, 2))
public = public_mask(names.to_numpy())
print(f"{per_row[public].mean():.4f} {per_row[~public].mean():.4f}")
"""


CPU_SECONDS: dict[tuple[str, ...], list[float]] = {}  # command -> CPU seconds of each run


def wall_times(command: list[str], repeats: int) -> list[float]:
    """Wall seconds of `command` run `repeats` times, each in a fresh process.

    The CPU seconds (user + system) of each run go to CPU_SECONDS: on a machine shared with
    other jobs they vary less than the wall time.
    """
    times = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        CPU_SECONDS.setdefault(tuple(command), []).append(cpu)
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
    """Print the median whole-process time of each command, and the checks.

    Every repeat runs each command once, and the pandas scripts in the first `--pandas-repeats`
    repeats, so that the ratios compare runs made under the same load.
    """
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
        score_script = folder / "pandas_score.py"
        score_script.write_text(PANDAS_SCORE)
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
        pandas = [sys.executable, str(script), str(theirs), *subs]
        references = {"pandas blend": pandas}
        if not args.no_score:
            score_data = str(folder / "score")
            references["pandas score"] = [
                sys.executable,
                str(score_script),
                str(submission),
                score_data,
            ]
        for command in [*commands.values(), *references.values()]:
            wall_times(command, 1)  # warm the file cache
        times: dict[str, list[float]] = {label: [] for label in [*commands, *references]}
        load_at_start = os.getloadavg()[0]
        for repeat in range(args.repeats):  # the commands take turns: the same load for each
            for label, command in commands.items():
                times[label] += wall_times(command, 1)
            if repeat < args.pandas_repeats:
                for label, command in references.items():
                    times[label] += wall_times(command, 1)
        if not args.no_score:
            pandas_scored = subprocess.run(
                references["pandas score"], check=True, capture_output=True, text=True
            )
            pandas_got = [float(v) for v in pandas_scored.stdout.split()]
        identical = same_numbers(ours, theirs)
        if not args.no_score:
            output = subprocess.run(score, check=True, capture_output=True, text=True).stdout
            got = [float(v) for v in output.strip().splitlines()[-1].split()[-2:]]
            want = expected_scores(submission, truth, folder / "score")
            scores_ok = np.allclose(got, want, atol=1e-4, rtol=0)
            scores_ok &= np.allclose(pandas_got, want, atol=1e-4, rtol=0)
    print(
        f"{os.cpu_count()} CPUs, load average {load_at_start:.2f} at the start of the timing, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    by_label = {**commands, **references}
    wall = {label: statistics.median(values) for label, values in times.items()}
    cpu = {label: statistics.median(CPU_SECONDS[tuple(by_label[label])]) for label in times}
    for label, values in times.items():
        print(
            f"{label:40s} median {wall[label]:.3f} s (min {min(values):.3f}, "
            f"max {max(values):.3f}, {len(values)} runs), CPU {cpu[label]:.3f} s"
        )
    pairs = [("pandas blend", f"ens blend ({args.submissions} files)")]
    if not args.no_score:
        pairs.append(("pandas score", f"ens score ({args.rows:,} rows)"))
    for reference, ours_label in pairs:
        ratio_wall = wall[reference] / wall[ours_label]
        ratio_cpu = cpu[reference] / cpu[ours_label]
        print(
            f"{ours_label} against the {reference} script: {ratio_wall:.1f}x in wall time, "
            f"{ratio_cpu:.1f}x in CPU time"
        )
    print(f"blend: identical numbers: {identical}")
    if not args.no_score:
        print(
            f"ens score printed {got}, pandas {pandas_got}, numpy gives "
            f"{[round(v, 4) for v in want]}: {scores_ok}"
        )
    if not identical or (not args.no_score and not scores_ok):
        sys.exit("a check failed")


if __name__ == "__main__":
    main()
